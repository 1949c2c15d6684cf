"""panva's openid-client (v6, an OpenID-certified relying party for Node.js) as a strict RP
in our tests: ``tests/interop/rp.mjs`` runs under the machine's node and answers JSON lines
(each command and its answer are described there).

openid-client is installed with npm, pinned, into a scratch folder outside the repository
(``~/.cache/idp-tests/openid-client-<version>/``, or under ``IDP_TEST_CACHE``), reused when it
is there, installed under a file lock so that test sessions started together do not race.
Without node or npm, or when npm cannot install it, the test FAILS and says what to do:
skipping would leave the interop with a real RP untested unnoticed.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.node import tool

VERSION = "6.9.1"
SOURCE = Path(__file__).resolve().parents[1] / "interop"
SCRIPTS = ("rp.mjs",)
ANSWER_TIMEOUT = 60  # seconds for one command (discovery, a grant, userinfo)


def cache_dir() -> Path:
    base = Path(os.environ.get("IDP_TEST_CACHE") or Path.home() / ".cache" / "idp-tests")
    return base / f"openid-client-{VERSION}"


def _tool(name: str) -> str:
    return tool(name, f"the interop tests run panva's openid-client {VERSION}")


def _installed(folder: Path) -> bool:
    try:
        found = json.loads((folder / "node_modules" / "openid-client" / "package.json")
                           .read_text())
    except (OSError, ValueError):
        return False
    return found.get("version") == VERSION


def install() -> tuple[str, Path]:
    """(node, the folder holding openid-client and the scripts), installing on first use."""
    node, npm = _tool("node"), _tool("npm")
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _installed(folder):
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix",
                 str(folder), f"openid-client@{VERSION}"],
                cwd=folder, capture_output=True, text=True, timeout=600)
            if done.returncode != 0 or not _installed(folder):
                pytest.fail(f"npm could not install openid-client@{VERSION} into {folder} "
                            f"(is the npm registry reachable?):\n{done.stdout}\n{done.stderr}",
                            pytrace=False)
        # The scripts beside their node_modules (ES modules resolve imports from their own
        # folder); replaced whole, so a running session never reads half a file.
        for name in SCRIPTS:
            source = (SOURCE / name).read_bytes()
            target = folder / name
            if not target.exists() or target.read_bytes() != source:
                partial = folder / f".{name}.{os.getpid()}"
                partial.write_bytes(source)
                os.replace(partial, target)
    return node, folder


class OpenIdClientError(AssertionError):
    """openid-client refused something (``answer``: its message, code and OAuth error)."""

    def __init__(self, op: str, answer: dict):
        self.answer = answer
        super().__init__(f"openid-client {op}: {answer}")


class OpenIdClient:
    """One node process running ``rp.mjs``: one client configuration at a time."""

    def __init__(self, log: Path):
        self.log = log
        self.process: subprocess.Popen | None = None  # started by the first command, so that
        self._err = None  # a missing node or npm fails the test itself, not its setup

    def _start(self) -> None:
        node, folder = install()
        self._err = open(self.log, "w")
        try:
            self.process = subprocess.Popen(
                [node, str(folder / "rp.mjs")], cwd=folder, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._err, text=True, bufsize=1)
        except OSError as error:
            pytest.fail(f"node could not run {folder / 'rp.mjs'}: {error}", pytrace=False)

    def call(self, op: str, **args) -> dict:
        """The answer to one command; OpenIdClientError when openid-client refused."""
        answer = self.try_call(op, **args)
        if not answer.pop("ok"):
            raise OpenIdClientError(op, answer)
        return answer

    def try_call(self, op: str, **args) -> dict:
        """The answer to one command, ``ok`` true or false."""
        if self.process is None:
            self._start()
        try:
            self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pytest.fail(f"node stopped before {op}:\n{self.output()}", pytrace=False)
        line = _read_line(self.process, ANSWER_TIMEOUT)
        if not line:
            pytest.fail(f"node gave no answer to {op}:\n{self.output()}", pytrace=False)
        return json.loads(line)

    def output(self) -> str:
        if self._err is not None:
            self._err.flush()
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        if self.process is None:
            if self._err is not None:
                self._err.close()
            return
        if self.process.stdin and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._err.close()


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    """One line of the process's output; empty when it ends or says nothing for ``timeout``."""
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            return ""
    return process.stdout.readline()
