"""The peer for the side-by-side token benchmark: panva's certified ``oidc-provider`` (Node.js).

``install()`` puts ``oidc-provider@PEER_VERSION`` (and ``ioredis`` for the Redis adapter) into a
scratch folder with npm at run time: nothing of it is committed (the default scratch folder,
``benchmarks/.peer/``, is in .gitignore). ``start()`` runs ``benchmarks/peer/server.mjs`` with
``NODE_ENV=production`` on 127.0.0.1:PORT, pinned to one CPU with ``taskset``, and waits for its
discovery document.

What the peer serves (see server.mjs):

- ``POST /token``, HTTP Basic client auth, ``grant_type=client_credentials&scope=api``: a JWT
  access token (header ``typ: at+jwt``, ES256, 300 s, ``aud`` = the default resource
  ``urn:bench:api``; no ``resource`` parameter needed);
- ``POST /token``, ``grant_type=refresh_token&refresh_token=...``: rotation on every use, a new
  ES256 JWT access token and a new refresh token; a used token is refused (and, as
  oidc-provider does, its whole grant is revoked);
- ``GET /.well-known/openid-configuration`` and ``GET /jwks`` (one P-256 and one RSA 2048 key
  generated at start).

Refresh tokens for the benchmark come from ``Peer.refresh_tokens(n)``: a side server on another
port (bearer token from the environment) mints them through the provider's own models, one
Grant per token, for the user ``bench``, scope ``offline_access api`` (no ``openid``, so no ID
token on refresh).

A functional self-check (a few seconds, no load):

    .venv/bin/python benchmarks/peer.py [--scratch DIR] [--redis-url redis://127.0.0.1:6379/9]
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

# oidc-provider, the latest 9.x. All of 9.x prints "Unsupported runtime. Use Node.js v22.x LTS"
# on Node 20 (a support-policy notice only); the token work below runs and is checked on Node 20.
PEER_VERSION = "9.13.3"
IOREDIS_VERSION = "5.11.1"  # for the Redis adapter (modelled on oidc-provider's example)
MIN_NODE_MAJOR = 20

HERE = Path(__file__).resolve().parent
SERVER = HERE / "peer" / "server.mjs"
DEFAULT_SCRATCH = HERE / ".peer"

# The benchmark's client; the secret is random per start.
CLIENT_ID = "bench-client"
# The cc-signed case's client (private_key_jwt with the JWKS ``start`` is given, DPoP-bound tokens).
SIGNED_CLIENT_ID = "bench-signed-client"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _installed_version(root: Path, package: str) -> str | None:
    try:
        data = json.loads((root / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return data.get("version")


def _check_node() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise RuntimeError("the benchmark peer needs Node.js (node and npm on PATH): "
                           f"node={node!r}, npm={npm!r}")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30)
    match = re.match(r"v(\d+)\.", out.stdout.strip())
    if out.returncode != 0 or not match or int(match.group(1)) < MIN_NODE_MAJOR:
        raise RuntimeError(f"the benchmark peer needs Node.js >= {MIN_NODE_MAJOR}, "
                           f"found {out.stdout.strip() or out.stderr.strip()!r}")
    return node, npm


def install(scratch: Path = DEFAULT_SCRATCH) -> Path:
    """Install oidc-provider@PEER_VERSION and ioredis@IOREDIS_VERSION into ``scratch`` with
    npm (skipped when already there at those versions); return the folder holding
    node_modules. Raises RuntimeError when node/npm are missing or the install fails."""
    _node, npm = _check_node()
    root = Path(scratch).resolve()
    wanted = {"oidc-provider": PEER_VERSION, "ioredis": IOREDIS_VERSION}
    if all(_installed_version(root, name) == version for name, version in wanted.items()):
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({
        "name": "idp-benchmark-peer", "private": True,
        "description": "scratch install of the benchmark peer; never committed",
        "dependencies": wanted,
    }, indent=2) + "\n")
    log = root / "npm-install.log"
    cmd = [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--omit=dev",
           "--save-exact", "--loglevel=error"]
    try:
        with log.open("w") as out:
            proc = subprocess.run(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=600)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"npm install timed out after 600 s in {root}:\n{_tail(log)}") from None
    if proc.returncode != 0:
        raise RuntimeError(f"npm install of the peer failed (exit {proc.returncode}) in "
                           f"{root}:\n{_tail(log)}")
    for name, version in wanted.items():
        got = _installed_version(root, name)
        if got != version:
            raise RuntimeError(f"npm installed {name} {got!r}, expected {version} in {root}:\n"
                               f"{_tail(log)}")
    return root


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Peer:
    issuer: str
    token_url: str
    jwks_url: str
    discovery_url: str
    client_id: str
    client_secret: str
    process: subprocess.Popen
    adapter: str = "memory"
    admin_url: str = ""
    admin_token: str = field(default="", repr=False)
    stdout_log: Path | None = None
    stderr_log: Path | None = None

    def _admin(self, path: str, timeout: float = 300) -> object:
        try:
            r = requests.get(self.admin_url + path, timeout=timeout,
                             headers={"Authorization": f"Bearer {self.admin_token}"})
        except requests.RequestException as exc:
            raise RuntimeError(f"peer side endpoint {path} failed: {exc}\n{self.logs()}") from None
        if r.status_code != 200:
            raise RuntimeError(f"peer side endpoint {path} answered {r.status_code}: "
                               f"{r.text[:2000]}\n{self.logs()}")
        return r.json()

    def refresh_tokens(self, n: int) -> list[str]:
        """n fresh refresh tokens for the client, user ``bench``, scope ``offline_access api``,
        each in its own Grant, minted through oidc-provider's own models."""
        tokens: list[str] = []
        while len(tokens) < n:
            chunk = min(20_000, n - len(tokens))
            got = self._admin(f"/__bench/refresh?n={chunk}")
            if not isinstance(got, list) or len(got) != chunk:
                raise RuntimeError(f"peer minted {len(got) if isinstance(got, list) else got!r} "
                                   f"refresh tokens, asked {chunk}")
            tokens.extend(got)
        return tokens

    def stats(self) -> dict:
        """Error counters seen by the provider: server_error (5xx), grant_error (4xx grants)."""
        return self._admin("/__bench/stats", timeout=10)  # type: ignore[return-value]

    def rss_kb(self) -> int:
        """Current resident set size of the node process, in KiB (from /proc)."""
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {self.process.pid}")

    def logs(self) -> str:
        parts = []
        if self.stderr_log:
            parts.append(f"--- peer stderr ({self.stderr_log}) ---\n{_tail(self.stderr_log)}")
        if self.stdout_log:
            parts.append(f"--- peer stdout ({self.stdout_log}) ---\n{_tail(self.stdout_log, 10)}")
        return "\n".join(parts)

    def stop(self) -> None:
        """SIGTERM (the server closes, and the Redis adapter deletes this run's keys), then
        SIGKILL if it has not exited within 10 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start(scratch: Path = DEFAULT_SCRATCH, port: int = 0, *, cpu: int | None = 0,
          adapter: str = "memory", redis_url: str | None = None,
          signed_jwks: dict | None = None, startup_timeout: float = 30.0) -> Peer:
    """Start ``node benchmarks/peer/server.mjs`` (pinned with ``taskset -c CPU`` when cpu is
    not None; node's libuv thread pool, which does the signing, is pinned with it), wait until
    discovery answers, return the Peer. ``port`` 0 picks a free one. With ``signed_jwks`` (a
    public JWKS) the provider also has ``SIGNED_CLIENT_ID``, which authenticates with
    private_key_jwt by those keys, and DPoP on (the cc-signed case)."""
    if adapter not in ("memory", "redis"):
        raise ValueError(f"adapter must be 'memory' or 'redis', not {adapter!r}")
    if adapter == "redis" and not redis_url:
        raise ValueError("the redis adapter needs redis_url")
    root = install(scratch)
    node, _npm = _check_node()
    port = port or _free_port()
    if _port_in_use(port):
        raise RuntimeError(f"port {port} is already in use")
    admin_port = _free_port()
    secret = os.urandom(24).hex()
    admin_token = os.urandom(24).hex()
    issuer = f"http://127.0.0.1:{port}"

    env = dict(os.environ)
    env.update({
        "NODE_ENV": "production",
        "PEER_MODULES": str(root),
        "PEER_HOST": "127.0.0.1",
        "PEER_PORT": str(port),
        "PEER_ADMIN_PORT": str(admin_port),
        "PEER_ADMIN_TOKEN": admin_token,
        "PEER_CLIENT_ID": CLIENT_ID,
        "PEER_CLIENT_SECRET": secret,
        "PEER_ADAPTER": adapter,
    })
    env.pop("PEER_REDIS_URL", None)
    env.pop("PEER_SIGNED_JWKS", None)
    if signed_jwks is not None:
        env["PEER_SIGNED_CLIENT_ID"] = SIGNED_CLIENT_ID
        env["PEER_SIGNED_JWKS"] = json.dumps(signed_jwks)
    if adapter == "redis":
        env["PEER_REDIS_URL"] = str(redis_url)

    cmd = [node, str(SERVER)]
    if cpu is not None:
        taskset = shutil.which("taskset")
        if not taskset:
            raise RuntimeError("taskset not found (util-linux); pass cpu=None to run unpinned")
        cmd = [taskset, "-c", str(cpu)] + cmd

    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    out_log = logs / f"peer-{port}.out.log"
    err_log = logs / f"peer-{port}.err.log"
    with out_log.open("wb") as out, err_log.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)

    peer = Peer(issuer=issuer, token_url=f"{issuer}/token", jwks_url=f"{issuer}/jwks",
                discovery_url=f"{issuer}/.well-known/openid-configuration",
                client_id=CLIENT_ID, client_secret=secret, process=proc, adapter=adapter,
                admin_url=f"http://127.0.0.1:{admin_port}", admin_token=admin_token,
                stdout_log=out_log, stderr_log=err_log)
    atexit.register(peer.stop)  # never leave a node process behind

    deadline = time.monotonic() + startup_timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the peer exited with {proc.returncode} while starting "
                               f"({' '.join(cmd)}):\n{peer.logs()}")
        try:
            r = requests.get(peer.discovery_url, timeout=2)
            if r.status_code == 200 and r.json().get("issuer") == issuer:
                meta = r.json()
                peer.token_url = meta.get("token_endpoint", peer.token_url)
                peer.jwks_url = meta.get("jwks_uri", peer.jwks_url)
                return peer
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except (requests.RequestException, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    peer.stop()
    raise RuntimeError(f"the peer did not answer discovery within {startup_timeout} s "
                       f"({last}):\n{peer.logs()}")


# --------------------------------------------------------------------------- self-check
def _self_check(scratch: Path, redis_url: str) -> None:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    auth_body = {"grant_type": "client_credentials", "scope": "api"}
    for adapter in ("memory", "redis"):
        t0 = time.monotonic()
        peer = start(scratch, 0, cpu=0, adapter=adapter,
                     redis_url=redis_url if adapter == "redis" else None)
        try:
            print(f"[{adapter}] started {peer.issuer} pid {peer.process.pid} in "
                  f"{time.monotonic() - t0:.2f} s, rss {peer.rss_kb()} KiB")
            s = requests.Session()
            s.auth = (peer.client_id, peer.client_secret)

            meta = s.get(peer.discovery_url, timeout=5).json()
            keys = KeySet.import_key_set(s.get(peer.jwks_url, timeout=5).json())
            print(f"[{adapter}] discovery token_endpoint={meta['token_endpoint']} "
                  f"jwks kty={[k.key_type for k in keys.keys]}")

            def check_at(resp: dict, sub: str) -> None:
                token = jwt.decode(resp["access_token"], keys, algorithms=["ES256"])
                assert token.header["alg"] == "ES256", token.header
                assert token.claims["iss"] == peer.issuer, token.claims
                assert token.claims["sub"] == sub, token.claims
                assert token.claims["scope"] == "api", token.claims
                assert "id_token" not in resp, resp
                print(f"[{adapter}]   header={token.header} claims={sorted(token.claims)}")

            r = s.post(peer.token_url, data=auth_body, timeout=5)
            assert r.status_code == 200, r.text
            check_at(r.json(), peer.client_id)

            first, spare = peer.refresh_tokens(2)
            r1 = s.post(peer.token_url, timeout=5,
                        data={"grant_type": "refresh_token", "refresh_token": first})
            assert r1.status_code == 200, r1.text
            check_at(r1.json(), "bench")
            rotated = r1.json()["refresh_token"]
            assert rotated != first
            r2 = s.post(peer.token_url, timeout=5,
                        data={"grant_type": "refresh_token", "refresh_token": rotated})
            assert r2.status_code == 200, r2.text
            check_at(r2.json(), "bench")
            again = s.post(peer.token_url, timeout=5,
                           data={"grant_type": "refresh_token", "refresh_token": first})
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
            print(f"[{adapter}]   reuse of the first refresh token: {again.status_code} "
                  f"{again.json()}")
            r3 = s.post(peer.token_url, timeout=5,
                        data={"grant_type": "refresh_token", "refresh_token": spare})
            assert r3.status_code == 200, r3.text

            n = 2000
            t0 = time.monotonic()
            many = peer.refresh_tokens(n)
            dt = time.monotonic() - t0
            ok = sum(s.post(peer.token_url, timeout=5, data={
                "grant_type": "refresh_token", "refresh_token": rt}).status_code == 200
                for rt in (many[0], many[n // 2], many[-1]))
            assert ok == 3, ok
            print(f"[{adapter}] minted {n} refresh tokens in {dt:.2f} s; stats {peer.stats()}; "
                  f"rss {peer.rss_kb()} KiB")
        finally:
            peer.stop()
        assert peer.process.poll() is not None
        assert not Path(f"/proc/{peer.process.pid}").exists() or \
            "zombie" in Path(f"/proc/{peer.process.pid}/status").read_text()
        print(f"[{adapter}] stopped (exit {peer.process.returncode})")
    print("peer self-check OK")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", type=Path, default=DEFAULT_SCRATCH)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    args = parser.parse_args()
    _self_check(args.scratch, args.redis_url)
