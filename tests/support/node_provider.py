"""panva's oidc-provider (Node.js) as the upstream: a standards-conformant provider we did not
write, configured as corporate ones are (``tests/support/oidc_provider/provider.mjs``).

It is installed with ``npm ci`` from the committed package-lock.json into ``.cache/oidc-provider``
at the repository root (git-ignored, reused between runs, installed again when the lock file
changes). Without node or npm the test FAILS with what to install: skipping would let the
journey against a real provider go untested unnoticed.
"""

from __future__ import annotations

import fcntl
import filecmp
import json
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.node import tool
from tests.support.paths import ROOT
from tests.support.ports import free_port

SOURCE = Path(__file__).resolve().parent / "oidc_provider"
CACHE = ROOT / ".cache" / "oidc-provider"
FILES = ("package.json", "package-lock.json", "provider.mjs")
START_TIMEOUT = 30  # seconds for node to answer discovery


def _tool(name: str) -> str:
    return tool(name, "the federation tests run panva's oidc-provider")


def install() -> Path:
    """The provider script in the cache folder, with its node_modules from the lock file."""
    node, npm = _tool("node"), _tool("npm")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".install.lock", "w") as lock:  # two test sessions may start together
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = CACHE / ".installed-lock.json"
        installed = stamp.exists() and (CACHE / "node_modules").is_dir() and \
            filecmp.cmp(stamp, SOURCE / "package-lock.json", shallow=False)
        for name in FILES:
            shutil.copyfile(SOURCE / name, CACHE / name)
        if not installed:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                  cwd=CACHE, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.fail(f"npm ci of oidc-provider in {CACHE} failed:\n{done.stdout}\n"
                            f"{done.stderr}", pytrace=False)
            shutil.copyfile(SOURCE / "package-lock.json", stamp)
    return Path(node)


@dataclass
class NodeProvider:
    """One oidc-provider process with one client (us) and one account."""

    issuer: str
    client_id: str
    client_secret: str
    account: dict
    process: subprocess.Popen
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(redirect_uri: str, account: dict, log: Path) -> NodeProvider:
    """oidc-provider on a free loopback port, with ``redirect_uri`` registered for its client.
    ``account``: sub, email, password, name, and email_verified (left out when absent)."""
    node = install()
    port = free_port()
    client_id, client_secret = f"idp-{secrets.token_hex(4)}", secrets.token_urlsafe(32)
    env = {**os.environ, "PORT": str(port), "CLIENT_ID": client_id,
           "CLIENT_SECRET": client_secret, "REDIRECT_URI": redirect_uri,
           "ACCOUNT": json.dumps(account), "NODE_ENV": "test"}
    out = open(log, "w")
    process = subprocess.Popen([str(node), str(CACHE / "provider.mjs")], cwd=CACHE, env=env,
                               stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    issuer = f"http://127.0.0.1:{port}"
    provider = NodeProvider(issuer, client_id, client_secret, account, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=2).ok:
                return provider
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            provider.stop()
            raise RuntimeError(f"oidc-provider did not start:\n{provider.output()}")
        time.sleep(0.1)
