"""The IdP's throughput and latency on one core, side by side with panva's oidc-provider.

    .venv/bin/python benchmarks/run.py [--duration 10] \\
        [--only cc,refresh,signin,discovery,jwks,hash] \\
        [--stacks gunicorn-sync,gunicorn-gthread,granian] [--no-peer] \\
        [--json out.json] [--markdown out.md]

On loopback, with the server pinned to core 0 (``taskset -c 0``: the master and its workers,
or granian and its worker) and the load generators (wrk, the sign-in generator) pinned to
core 1, it measures for ``--duration`` seconds each:

- ``hash``: argon2id verifies/s on core 0 with the app's default parameters (the ceiling of
  sign-ins on one core);
- ``cc``: client-credentials grants/s (confidential client, HTTP Basic, ES256 JWT access
  token), with keep-alive connections and with a new connection per request
  (``Connection: close``);
- ``cc-signed``: the same grant as a FAPI 2.0 client makes it: authenticated with
  ``private_key_jwt`` (an ES256 assertion, RFC 7523) and the token bound to a DPoP key (an ES256
  proof, RFC 9449); each request carries an assertion and a proof of its own, made beforehand
  (both are single use), so the server verifies two signatures and records two ``jti`` per grant;
- ``refresh``: refresh grants/s with rotation (each response's refresh token replaces the one
  used), both connection modes;
- ``discovery``, ``jwks``: GET req/s, keep-alive;
- ``signin``: full sign-in flows/s (authorize, password, TOTP, code, token; default argon2id)
  with ``benchmarks/signin_load.py``, also as a fraction of the ``hash`` ceiling;
- ``burst``: client credentials at a fixed 200/s alone, then again while 32 sign-ins at once
  (each an argon2id verify) hit the same worker: the rate and p99 the token endpoint keeps;

each first closed-loop (the peak), then paced at ~70% of the keep-alive peak for p50/p99,
and the peak RSS (VmHWM) of each worker. The server runs under each of ``--stacks`` in
turn (one worker: the server has one core). Unless ``--no-peer``, the same cc, cc-signed,
refresh, discovery and JWKS loads go to oidc-provider (``benchmarks/peer.py``, installed from npm
into ``benchmarks/.peer/``; for cc-signed a client of its own with the same JWKS, and its
``dPoP`` feature on), with its memory adapter and with its Redis adapter, and the table shows
ours/theirs. Exit status 0 whatever the figures (a measurement), 2 when the run
itself could not be made. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

WRK_DIR = HERE / "wrk"
REDIRECT_URI = "https://rp.example/cb"
TENANT = "bench"
ALL_CASES = ("hash", "cc", "cc-signed", "refresh", "signin", "burst", "discovery", "jwks")
ALL_STACKS = ("gunicorn-sync", "gunicorn-gthread", "granian")
TOKEN_CASES = ("cc", "cc-signed", "refresh")
LOAD = 0.70  # the paced runs aim here, as a fraction of the keep-alive peak
LOAD_BAND = (0.65, 0.75)
BURST_SIGNINS = 32  # sign-ins in flight at once during the burst
BURST_CC_RATE = 200.0  # client-credentials grants/s asked for meanwhile (4 connections)
BURST_KEEP = 0.9  # the token endpoint must keep this share of that rate

# The targets, per core.
TARGET_CC = 1000.0
TARGET_REFRESH = 800.0
TARGET_SIGNIN_FRACTION = 0.8
TARGET_P99_MS = 10.0
TARGET_PEER_RATIO = 1.0


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------- cleanup
class Cleanup:
    """Undo steps, run once in reverse order: at the end of main, at exit, on SIGTERM."""

    def __init__(self):
        self.steps: list[tuple[str, Callable[[], None]]] = []
        atexit.register(self.run)

    def add(self, what: str, fn: Callable[[], None]) -> None:
        self.steps.append((what, fn))

    def run(self) -> None:
        while self.steps:
            what, fn = self.steps.pop()
            try:
                fn()
            except Exception as exc:  # keep cleaning
                print(f"cleanup: {what}: {type(exc).__name__}: {exc}", file=sys.stderr)


CLEANUP = Cleanup()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)  # unwinds through the finally blocks


def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group we started (its leader is ``proc``), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    try:  # workers left behind by a leader that died
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# --------------------------------------------------------------------------- /proc helpers
def passive_opens() -> int:
    """TCP connections accepted so far in this network namespace (/proc/net/snmp)."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Tcp:")]
    return int(lines[1][lines[0].index("PassiveOpens")])


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime + stime


def cpu_seconds(root: int | None) -> dict[str, float]:
    """CPU time used so far by the server (``root`` and its descendants) and by PostgreSQL and
    Redis (every process of those names: shared services, so other users count too)."""
    out: dict = {"server": 0.0, "db": {pid: _cpu_seconds(pid) for pid in service_pids()}}
    if root:
        out["server"] = sum(_cpu_seconds(p) for p in [root] + descendants(root))
    return out


def core_times(cpu: int) -> tuple[float, float]:
    """(busy, steal) seconds of one CPU so far, from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            v = [int(x) for x in line.split()[1:]]
            # user nice system idle iowait irq softirq steal ...: processes' time only (the
            # kernel's packet work in softirq is not charged to any process, ours included)
            return (v[0] + v[1] + v[2]) / CLOCK_TICK, v[7] / CLOCK_TICK
    return 0.0, 0.0


def cpu_snapshot(root: int | None, cpu: int) -> dict:
    snap = cpu_seconds(root)
    snap["core_busy"], snap["core_steal"] = core_times(cpu)
    return snap


def cpu_detail(before: dict, after: dict, seconds: float, done: int) -> dict:
    """Where the CPU went during a run: the server's share of its core and its CPU per
    request, PostgreSQL's and Redis's, and what *other* processes (or the hypervisor) took
    from the server's core: a run where that is large was disturbed."""
    server = after["server"] - before["server"]
    db = services_seconds(before["db"], after["db"])
    others = (after["core_busy"] - before["core_busy"]) - server
    steal = after["core_steal"] - before["core_steal"]
    return {"server_cpu_share": round(server / seconds, 3) if seconds else None,
            "server_cpu_ms_per_request": round(server / done * 1000, 3) if done else None,
            "db_cpu_ms_per_request": round(db / done * 1000, 3) if done else None,
            "server_core_others_share": round(max(0.0, others) / seconds, 3) if seconds else None,
            "server_core_steal_share": round(steal / seconds, 3) if seconds else None}


def services_seconds(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds PostgreSQL's and Redis's processes used between two ``cpu_seconds``. Per
    process: a backend that ended meanwhile takes its time with it, one that started counts
    from zero (a reused pid whose count went down, likewise)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items()
               if t >= before.get(pid, 0.0))


def service_pids() -> list[int]:
    """PostgreSQL's and Redis's processes (postmaster, backends, redis-server)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in ("postgres", "redis-server") or comm.startswith("postgres:"):
                out.append(int(entry.name))
    return out


def pin_services(cpu: int) -> None:
    """Opt-in (--pin-services): move PostgreSQL and Redis to the load generator's CPU for
    the run (new backends inherit it from the postmaster), and put every one of them back
    on its former CPUs at the end (backends forked meanwhile on the postmaster's)."""
    former: dict[int, set[int]] = {}
    for pid in service_pids():
        try:
            former[pid] = os.sched_getaffinity(pid)
            os.sched_setaffinity(pid, {cpu})
        except OSError:
            continue
    default = set(range(os.cpu_count() or 1))

    def restore() -> None:
        for pid in service_pids():
            try:
                if os.sched_getaffinity(pid) == {cpu}:
                    os.sched_setaffinity(pid, former.get(pid, default))
            except OSError:
                continue

    CLEANUP.add("give PostgreSQL and Redis their CPUs back", restore)
    log(f"pinned {len(former)} PostgreSQL/Redis processes to CPU {cpu} for the run")


def proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def proc_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return " ".join(a.decode(errors="replace") for a in argv if a)[:120]
    except OSError:
        return "?"


def kib(status: dict[str, str], key: str) -> int:
    try:
        return int(status[key].split()[0])
    except (KeyError, ValueError, IndexError):
        return 0


# --------------------------------------------------------------------------- wrk
@dataclass
class Run:
    """One load run: wrk or the sign-in generator."""

    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    connections: int  # wrk -c, or the sign-in generator's concurrency
    detail: dict = field(default_factory=dict)  # error breakdown, samples, new TCP conns
    target_rate: float | None = None  # paced runs


def wrk_path() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    return found


def run_wrk(args, url: str, script: str, env_extra: dict, *, connections: int,
            duration: int, close: bool = False, think_ms: float = 0.0,
            server_pid: int | None = None) -> Run:
    env = dict(os.environ)
    env.update(env_extra)
    env.update({"BENCH_THREADS": "1", "BENCH_CLOSE": "1" if close else "0",
                "BENCH_THINK_MS": f"{think_ms:.3f}"})
    cmd = ["taskset", "-c", str(args.client_cpu), wrk_path(), "-t1", f"-c{connections}",
           f"-d{duration}s", "--timeout", "10s", "-s", str(WRK_DIR / script), url]
    before, cpu0 = passive_opens(), cpu_snapshot(server_pid, args.server_cpu)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    opened, cpu1 = passive_opens() - before, cpu_snapshot(server_pid, args.server_cpu)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {' '.join(cmd)}\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    data = json.loads(line[len("BENCH_JSON "):])
    seconds = data["duration_us"] / 1e6
    e = data["errors"]
    socket_errors = e["connect"] + e["read"] + e["write"] + e["timeout"]
    lat = data["latency_us"]
    detail = {"wrk_errors": e, "bad": data["bad"], "empty_pool": data["empty"],
              "new_connections": opened,
              # less the -c connections of the start: ~0 with keep-alive, ~1 when every
              # request opens one (the -c in flight when wrk stops are not counted requests)
              "connections_per_request": round(max(0, opened - connections) / data["requests"], 3)
              if data["requests"] else None,
              "p90_ms": lat["p90"] / 1000, "p999_ms": lat["p999"] / 1000,
              "mean_ms": round(lat["mean"] / 1000, 3), "max_ms": lat["max"] / 1000,
              "think_ms": round(think_ms, 3), "close": close,
              **cpu_detail(cpu0, cpu1, seconds, data["requests"])}
    if data["sample"]:
        detail["sample"] = data["sample"]
    return Run(requests=data["requests"], seconds=round(seconds, 3),
               rate=round(data["requests"] / seconds, 1) if seconds else 0.0,
               p50_ms=lat["p50"] / 1000, p99_ms=lat["p99"] / 1000,
               errors=socket_errors + data["bad"] + data["empty"], connections=connections,
               detail=detail)


# --------------------------------------------------------------------------- targets
@dataclass
class Target:
    """A server under load: ours under one stack, or the peer with one adapter."""

    label: str
    side: str  # "ours" | "peer"
    issuer: str
    token_url: str
    discovery_url: str
    jwks_url: str
    cc_basic: str
    cc_body: str
    refresh_basic: str
    mint_refresh: Callable[[int], list[str]]
    server_pid: int  # the server's root process (CPU accounting)
    mint_signed: Callable[[int], list[str]] | None = None  # cc-signed: "assertion proof" lines
    log_path: Path | None = None
    notes: list[str] = field(default_factory=list)


def basic(client_id: str, secret: str) -> str:
    from urllib.parse import quote  # RFC 6749 2.3.1: form-encode, then Basic

    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return base64.b64encode(raw.encode()).decode()


def _jwt_header(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _jwt_claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class SignedClient:
    """The cc-signed client's two ES256 keys (one authenticates it, one binds its tokens) and
    what it sends: an assertion (RFC 7523) and a DPoP proof (RFC 9449), each with a fresh jti."""

    def __init__(self):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.auth_key = ec.generate_private_key(ec.SECP256R1())
        self.dpop_key = ec.generate_private_key(ec.SECP256R1())
        self.kid = "bench-" + secrets.token_hex(4)
        self.client_id = ""

    @staticmethod
    def public_jwk(key) -> dict:
        numbers = key.public_key().public_numbers()

        def b64(n: int) -> str:
            return base64.urlsafe_b64encode(n.to_bytes(32, "big")).rstrip(b"=").decode()

        return {"kty": "EC", "crv": "P-256", "x": b64(numbers.x), "y": b64(numbers.y)}

    def jwks(self) -> dict:
        return {"keys": [{**self.public_jwk(self.auth_key), "kid": self.kid, "use": "sig",
                          "alg": "ES256"}]}

    def pairs(self, token_url: str, n: int) -> list[str]:
        from idp.oidc.tokens import sign_es256

        dpop_header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public_jwk(self.dpop_key)}
        auth_header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        now = int(time.time())
        out = []
        for _ in range(n):
            assertion = sign_es256(auth_header, {
                "iss": self.client_id, "sub": self.client_id, "aud": token_url,
                "jti": secrets.token_urlsafe(16), "iat": now, "exp": now + 300},
                self.auth_key)
            proof = sign_es256(dpop_header, {"jti": secrets.token_urlsafe(16), "htm": "POST",
                                             "htu": token_url, "iat": now}, self.dpop_key)
            out.append(f"{assertion} {proof}")
        return out


def sanity(target: Target, cases: list[str]) -> None:
    """One request of each case before any load: the work really is what we think it is."""
    s = requests.Session()
    form = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if "cc" in cases:
        r = s.post(target.token_url, data=target.cc_body, timeout=10,
                   headers={**form, "Authorization": "Basic " + target.cc_basic})
        if r.status_code != 200 or "access_token" not in r.json():
            raise RuntimeError(f"{target.label}: client_credentials gave {r.status_code}: "
                               f"{r.text[:500]}")
        header = _jwt_header(r.json()["access_token"])
        if header.get("alg") != "ES256":
            raise RuntimeError(f"{target.label}: the access token is not ES256: {header}")
        target.notes.append(f"cc: {r.status_code}, access token header {header}, "
                            f"scope {r.json().get('scope')!r}, {len(r.content)} bytes")
    if "cc-signed" in cases and target.mint_signed is not None:
        pair = target.mint_signed(1)[0]
        assertion, proof = pair.split(" ")
        body = ("grant_type=client_credentials&scope=api&client_assertion_type=urn%3Aietf%3A"
                "params%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" + assertion)
        r = s.post(target.token_url, data=body, timeout=10, headers={**form, "DPoP": proof})
        if r.status_code != 200 or r.json().get("token_type") != "DPoP":
            raise RuntimeError(f"{target.label}: signed client_credentials gave "
                               f"{r.status_code}: {r.text[:500]}")
        claims = _jwt_claims(r.json()["access_token"])
        if not (claims.get("cnf") or {}).get("jkt"):
            raise RuntimeError(f"{target.label}: the DPoP access token has no cnf.jkt: {claims}")
        again = s.post(target.token_url, data=body, timeout=10, headers={**form, "DPoP": proof})
        if again.status_code < 400:
            raise RuntimeError(f"{target.label}: a replayed assertion and proof gave "
                               f"{again.status_code}")
        target.notes.append(f"cc-signed: {r.status_code}, token_type DPoP, cnf.jkt "
                            f"{claims['cnf']['jkt'][:12]}..., replay refused ({again.status_code})")
    if "refresh" in cases:
        (first,) = target.mint_refresh(1)
        r = s.post(target.token_url, timeout=10,
                   data=f"grant_type=refresh_token&refresh_token={first}",
                   headers={**form, "Authorization": "Basic " + target.refresh_basic})
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        if r.status_code != 200 or not body.get("refresh_token") or body["refresh_token"] == first:
            raise RuntimeError(f"{target.label}: refresh gave {r.status_code}: {r.text[:500]}")
        again = s.post(target.token_url, timeout=10,
                       data=f"grant_type=refresh_token&refresh_token={first}",
                       headers={**form, "Authorization": "Basic " + target.refresh_basic})
        if again.status_code != 400:
            raise RuntimeError(f"{target.label}: a reused refresh token gave {again.status_code}")
        target.notes.append(
            f"refresh: {r.status_code}, rotated, reuse refused ({again.status_code}); "
            f"response keys {sorted(body)}, access token alg "
            f"{_jwt_header(body['access_token']).get('alg')}, {len(r.content)} bytes")
    for case, url in (("discovery", target.discovery_url), ("jwks", target.jwks_url)):
        if case in cases:
            r = s.get(url, timeout=10)
            if r.status_code != 200:
                raise RuntimeError(f"{target.label}: {case} gave {r.status_code}")
            target.notes.append(f"{case}: {r.status_code}, {len(r.content)} bytes")
    s.close()


def write_tokens(tokens: list[str], folder: Path) -> Path:
    bad = [t for t in tokens if not re.fullmatch(r"[A-Za-z0-9_\-]+", t)]
    if bad:
        raise RuntimeError(f"refresh tokens need form-encoding, e.g. {bad[0]!r}")
    path = folder / f"tokens-{secrets.token_hex(4)}.txt"
    path.write_text("\n".join(tokens) + "\n")
    return path


class Bench:
    """Runs the cases against one target and keeps the results."""

    def __init__(self, args, scratch: Path):
        self.args = args
        self.scratch = scratch
        self.rows: list[dict] = []

    # -- one wrk case -------------------------------------------------------------------
    def _case(self, target: Target, case: str):
        """(url, script, env-builder) for a wrk case; the builder makes fresh state per run."""
        if case == "cc":
            env = {"BENCH_BASIC": target.cc_basic, "BENCH_BODY": target.cc_body}
            return target.token_url, "cc.lua", lambda c: env
        if case == "cc-signed":
            def signed_env(connections: int) -> dict:
                path = self.scratch / f"pairs-{secrets.token_hex(4)}.txt"
                n = self.args.signed_pool or 3000 * self.args.duration
                path.write_text("\n".join(target.mint_signed(n)) + "\n")
                return {"BENCH_PAIRS": str(path)}
            return target.token_url, "cc_signed.lua", signed_env
        if case == "refresh":
            def refresh_env(connections: int) -> dict:
                n = max(self.args.refresh_pool, 8 * connections)
                path = write_tokens(target.mint_refresh(n), self.scratch)
                return {"BENCH_BASIC": target.refresh_basic, "BENCH_TOKENS": str(path)}
            return target.token_url, "refresh.lua", refresh_env
        if case == "discovery":
            return target.discovery_url, "get.lua", lambda c: {"BENCH_EXPECT": '"issuer"'}
        if case == "jwks":
            return target.jwks_url, "get.lua", lambda c: {"BENCH_EXPECT": '"keys"'}
        raise ValueError(case)

    def wrk_case(self, target: Target, case: str, *, connections: int, duration: int,
                 close: bool = False, think_ms: float = 0.0) -> Run:
        url, script, env = self._case(target, case)
        return run_wrk(self.args, url, script, env(connections), connections=connections,
                       duration=duration, close=close, think_ms=think_ms,
                       server_pid=target.server_pid)

    def paced(self, target: Target, case: str, peak: Run) -> Run:
        """Closed loop with think time (wrk's delay()) so the rate lands at ~70% of the
        keep-alive peak: think = c / target - latency; one or two corrections from the
        measured latency if it lands outside 65-75%."""
        c = self.args.paced_connections
        goal = LOAD * peak.rate
        service_ms = 1000.0 / peak.rate if peak.rate else 1.0
        think = max(0.0, c / goal * 1000.0 - service_ms)
        run, attempts = None, []
        for _attempt in range(3):
            run = self.wrk_case(target, case, connections=c, duration=self.args.duration,
                                think_ms=think)
            run.target_rate = round(goal, 1)
            frac = run.rate / peak.rate if peak.rate else 0.0
            attempts.append({"think_ms": round(think, 2), "rate": run.rate,
                             "load_fraction": round(frac, 3), "p99_ms": run.p99_ms})
            run.detail["load_fraction"] = round(frac, 3)
            run.detail["attempts"] = attempts
            if LOAD_BAND[0] <= frac <= LOAD_BAND[1] or not run.rate:
                break
            # rate = c / (think + latency): the latency seen at this load, and think again.
            latency = max(0.0, c / run.rate * 1000.0 - think)
            think = max(0.0, c / goal * 1000.0 - latency)
        return run

    def record(self, target: Target, case: str, conn: str, peak: Run,
               paced: Run | None = None) -> dict:
        row = {"target": target.label, "side": target.side, "case": case, "conn": conn,
               "connections": peak.connections, "peak": asdict(peak),
               "paced": asdict(paced) if paced else None,
               "errors": peak.errors + (paced.errors if paced else 0)}
        self.rows.append(row)
        say = (f"  {case:<9} {conn:<10} c={peak.connections:<3} peak {peak.rate:9.1f}/s "
               f"(p50 {peak.p50_ms:.2f} p99 {peak.p99_ms:.2f} ms)")
        cpr = peak.detail.get("connections_per_request")
        if cpr is not None:
            say += f" new conns/req {cpr:.2f}"
        if peak.detail.get("server_cpu_ms_per_request") is not None:
            say += (f" server CPU {peak.detail['server_cpu_share']:.0%}, "
                    f"{peak.detail['server_cpu_ms_per_request']:.2f} ms/req (PG+Redis "
                    f"{peak.detail['db_cpu_ms_per_request']:.2f})")
        if paced:
            say += (f" | paced c={paced.connections} {paced.rate:.1f}/s = "
                    f"{paced.detail.get('load_fraction', 0):.0%}"
                    f" of peak: p50 {paced.p50_ms:.2f} p99 {paced.p99_ms:.2f} ms")
        say += f" | errors {row['errors']}"
        disturbed = [f"{name} {r.detail['server_core_others_share']:.0%}"
                     for name, r in (("peak", peak), ("paced", paced))
                     if r and (r.detail.get("server_core_others_share") or 0) > 0.05]
        if disturbed:
            row["disturbed"] = True
            say += (f" | DISTURBED: other processes took {', '.join(disturbed)} of the "
                    "server's CPU")
        log(say)
        for run in (peak, paced):
            if run and run.errors:
                shown = {k: v for k, v in run.detail.items()
                         if k in ("wrk_errors", "bad", "empty_pool", "sample", "error_samples")}
                log(f"      errors: {json.dumps(shown)}")
        return row

    # -- everything for one target ------------------------------------------------------
    def probe_connections(self, target: Target, case: str) -> int:
        probe_s = max(1, min(3, self.args.duration // 4))
        best, best_rate, seen = None, -1.0, []
        for c in self.args.connections:
            run = self.wrk_case(target, case, connections=c, duration=probe_s)
            seen.append(f"c={c}: {run.rate:.0f}/s"
                        + (f" ({run.errors} errors)" if run.errors else ""))
            if run.rate > best_rate:
                best, best_rate = c, run.rate
        log(f"  connections probe ({case}, keep-alive, {probe_s} s each): {', '.join(seen)}"
            f" -> c={best}")
        return best

    def run_target(self, target: Target, cases: list[str]) -> int:
        wrk_cases = [c for c in ("cc", "cc-signed", "refresh", "discovery", "jwks") if c in cases]
        if not wrk_cases:
            return self.args.connections[0]
        c = self.probe_connections(target, wrk_cases[0])
        for case in wrk_cases:
            peak = self.wrk_case(target, case, connections=c, duration=self.args.duration)
            paced = self.paced(target, case, peak) if peak.rate else None
            self.record(target, case, "keep-alive", peak, paced)
            if case in TOKEN_CASES:
                closed = self.wrk_case(target, case, connections=c,
                                       duration=self.args.duration, close=True)
                self.record(target, case, "close", closed)
        return c


# --------------------------------------------------------------------------- our server
@dataclass
class Ours:
    database_url: str
    redis_url: str
    keys_dir: Path
    secret_key: str
    engine: sa.Engine
    tenant_id: int
    cc_client_id: str
    cc_secret: str
    rt_client_pk: int
    rt_client_id: str
    rt_secret: str
    user_id: int
    accounts_file: Path | None = None
    signed: SignedClient | None = None

    def mint_refresh(self, n: int) -> list[str]:
        """n refresh tokens for the refresh client's user: the rows a code exchange with
        scope ``openid offline_access`` leaves (idp.oidc.issue.save_token), each its own
        family, inserted in bulk."""
        from idp.models import Token
        from idp.models.base import utcnow
        from idp import hashing

        now = utcnow()
        tokens, rows = [], []
        for _ in range(n):
            token = secrets.token_urlsafe(32)
            tokens.append(token)
            rows.append({
                "tenant_id": self.tenant_id, "client_pk": self.rt_client_pk,
                "user_id": self.user_id, "code_id": None, "family": secrets.token_urlsafe(16),
                "jti": secrets.token_urlsafe(24),
                "refresh_token_hash": hashing.digest("refresh-token", token),
                "scope": "openid offline_access", "auth_time": int(now.timestamp()) - 60,
                "acr": "mfa", "amr": ["pwd", "otp"], "sid": None, "issued_at": now,
                "access_expires_at": now + dt.timedelta(hours=1),
                "refresh_expires_at": now + dt.timedelta(days=30),
            })
        with self.engine.begin() as conn:
            for start in range(0, n, 5000):
                conn.execute(sa.insert(Token.__table__), rows[start:start + 5000])
        # What autovacuum does after a bulk insert (CI's PostgreSQL has it off): statistics,
        # without which the planner takes the table for as small as when it was last analyzed.
        from idp import db as idp_db

        idp_db.analyze(self.database_url)
        return tokens

    def server_env(self, base_url: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update({"IDP_BASE_URL": base_url, "IDP_DATABASE_URL": self.database_url,
                    "IDP_REDIS_URL": self.redis_url, "IDP_KEYS_DIR": str(self.keys_dir),
                    "IDP_SECRET_KEY": self.secret_key})
        return env


def setup_ours(args, scratch: Path, cases: list[str]) -> Ours:
    from sqlalchemy.orm import Session

    from idp import db as idp_db, directory
    from idp.config import Settings
    from idp.password import Passwords
    from idp.oidc import keys
    from tests.support.databases import scratch_database

    started = time.monotonic()
    url, drop = scratch_database(args.database_url, "idp_bench")
    CLEANUP.add(f"drop the scratch database {url.rsplit('/', 1)[-1]}", drop)
    idp_db.upgrade(url)
    keys_dir = scratch / "keys"
    secret_key = secrets.token_urlsafe(48)
    defaults = Settings()
    engine = idp_db.make_engine(url)
    CLEANUP.add("dispose the seeding engine", engine.dispose)
    with Session(engine, expire_on_commit=False) as s:
        tenant = directory.create_tenant(s, TENANT, "Benchmark")
        cc = directory.create_client(s, tenant, "bench client-credentials", [],
                                     grant_types=["client_credentials"], actor="bench")
        cc.client.scope = "api"  # the same scope as the peer's client
        rt = directory.create_client(s, tenant, "bench refresh", [REDIRECT_URI],
                                     grant_types=["authorization_code", "refresh_token"],
                                     actor="bench")
        signed = SignedClient()
        sc = directory.create_client(s, tenant, "bench private_key_jwt + DPoP", [],
                                     grant_types=["client_credentials"], actor="bench",
                                     auth_method="private_key_jwt", jwks=signed.jwks(),
                                     dpop_bound_access_tokens=True)
        sc.client.scope = "api"
        signed.client_id = sc.client.client_id
        passwords = Passwords(defaults.argon2_memory_kib, defaults.argon2_time_cost,
                              defaults.argon2_parallelism)
        user = directory.create_user(s, passwords, tenant, "refresh@bench.example",
                                     "bench-" + secrets.token_urlsafe(12), name="Refresh Bench")
        s.commit()
        keys.provision(keys_dir, tenant.id, grace=0)  # its keyring, before the first request
        ours = Ours(url, args.redis_url, keys_dir, secret_key, engine, tenant.id,
                    cc.client.client_id, cc.secret, rt.client.id, rt.client.client_id, rt.secret,
                    user.id, signed=signed)
    if "signin" in cases or "burst" in cases:
        import signin_load

        client_id, client_secret, accounts = signin_load.seed_accounts(
            url, TENANT, args.signin_accounts, REDIRECT_URI, secret_key=secret_key,
            migrate=False)
        path = scratch / "accounts.json"
        path.write_text(json.dumps({"tenant": TENANT, "client_id": client_id,
                                    "client_secret": client_secret, "redirect_uri": REDIRECT_URI,
                                    "accounts": [asdict(a) for a in accounts]}))
        ours.accounts_file = path
    log(f"seeded {url.rsplit('/', 1)[-1]}: tenant {TENANT}, a client-credentials client, a "
        f"code+refresh client and its user"
        + (f", {args.signin_accounts} sign-in accounts with TOTP"
           if "signin" in cases or "burst" in cases else "")
        + f" ({time.monotonic() - started:.1f} s)")
    return ours


def stack_command(args, stack: str, port: int | str, app: str = "wsgi:app") -> list[str]:
    bindir = Path(sys.executable).parent
    if stack in ("gunicorn-sync", "gunicorn-gthread"):
        gunicorn = bindir / "gunicorn"
        cmd = [str(gunicorn), "--workers", "1", "--bind", f"127.0.0.1:{port}",
               "--backlog", "2048", "--log-level", "warning"]
        if stack == "gunicorn-sync":
            # --threads 1: gunicorn.conf.py sets 8, and gunicorn turns a sync worker with
            # threads into a gthread one
            cmd += ["--worker-class", "sync", "--threads", "1"]
        else:
            cmd += ["--worker-class", "gthread", "--threads", str(args.threads)]
        return cmd + [app]
    if stack == "granian":
        granian = bindir / "granian"
        return [str(granian), "--interface", "wsgi", "--workers", "1",
                "--blocking-threads", str(args.threads), "--runtime-threads", "1",
                "--http", "1", "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", app]
    raise ValueError(stack)


def stack_available(stack: str) -> str | None:
    """None when the stack can run, else what to do about it."""
    bindir = Path(sys.executable).parent
    if stack.startswith("gunicorn") and not (bindir / "gunicorn").exists():
        return f"gunicorn is not installed in {bindir}: {sys.executable} -m pip install gunicorn"
    if stack == "granian" and not (bindir / "granian").exists():
        return (f"granian is not installed: {sys.executable} -m pip install granian "
                "(a dependency of the project: make .venv/.installed)")
    return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ours(args, ours: Ours, stack: str, scratch: Path, *, app: str = "wsgi:app",
               env: dict | None = None) -> tuple[subprocess.Popen, str, Path]:
    """Our server under ``stack``, pinned to ``--server-cpu``, serving ``app`` with the
    scratch database's settings (and ``env`` on top)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = scratch / f"server-{stack}.log"
    cmd = ["taskset", "-c", str(args.server_cpu)] + stack_command(args, stack, port, app)
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**ours.server_env(base), **(env or {})},
                                stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    CLEANUP.add(f"stop {stack} (pid {proc.pid})", lambda: stop_group(proc))
    wait_until_answering(proc, f"{base}/t/{TENANT}/.well-known/openid-configuration",
                         stack, log_path)
    return proc, base, log_path


def wait_until_answering(proc: subprocess.Popen, url: str, name: str, log_path: Path,
                         timeout: float = 60) -> None:
    """Return once ``url`` answers 200; RuntimeError with the log's tail if ``proc`` exits or
    ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} while starting:\n"
                               f"{tail(log_path)}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not answer within {timeout:.0f} s:\n"
                               f"{tail(log_path)}")
        time.sleep(0.2)


def defaults_only() -> None:
    """Forget every IDP_ variable of the caller's shell: the benchmarks measure the defaults
    (the argon2id parameters above all), nothing inherited."""
    for var in [k for k in os.environ if k.startswith("IDP_")]:
        del os.environ[var]


def fresh_store(redis_url: str) -> None:
    """Empty the benchmark's Redis database now and again on the way out."""
    import redis

    store = redis.Redis.from_url(redis_url)
    store.flushdb()
    CLEANUP.add(f"FLUSHDB {redis_url}", store.flushdb)


def tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def server_problems(path: Path) -> list[str]:
    """Lines of a server log that say something went wrong (tracebacks, errors)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    pattern = re.compile(r"Traceback|\bERROR\b|\[CRITICAL\]|Exception|Error:|WORKER TIMEOUT")
    return [line for line in lines if pattern.search(line)]


def process_report(pid: int, cpu: int) -> tuple[dict, list[str]]:
    """VmHWM of the process and its descendants, and a check that all run on ``cpu``."""
    out, problems = {}, []
    for p in [pid] + descendants(pid):
        status = proc_status(p)
        if not status:
            continue
        try:
            affinity = sorted(os.sched_getaffinity(p))
        except OSError:
            affinity = []
        if affinity != [cpu]:
            problems.append(f"pid {p} runs on CPUs {affinity}, not [{cpu}]")
        out[p] = {"role": "master" if p == pid else "child", "cmd": proc_name(p),
                  "vm_hwm_kib": kib(status, "VmHWM"), "vm_rss_kib": kib(status, "VmRSS"),
                  "threads": int(status.get("Threads", "0") or 0), "cpus": affinity}
    return out, problems


def run_signin(args, issuer: str, accounts_file: Path, *, concurrency: int,
               rate: float | None = None, server_pid: int | None = None) -> Run:
    cmd = ["taskset", "-c", str(args.client_cpu), sys.executable, str(HERE / "signin_load.py"),
           "--issuer", issuer, "--accounts", str(accounts_file),
           "--duration", str(args.duration), "--concurrency", str(concurrency),
           "--steps-file", str(accounts_file) + ".steps.json"]
    if rate:
        cmd += ["--rate", f"{rate:.2f}"]
    cpu0 = cpu_snapshot(server_pid, args.server_cpu)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=args.duration + 180)
    cpu1 = cpu_snapshot(server_pid, args.server_cpu)
    if proc.returncode != 0 or "{" not in proc.stdout:
        raise RuntimeError(f"signin_load failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")
    res = json.loads(proc.stdout[proc.stdout.index("{"):])
    detail = {k: res[k] for k in ("error_samples", "client_cpu_ms_per_flow", "client_cpu_share",
                                  "account_wait_s", "late_starts", "retry_later") if k in res}
    detail.update(cpu_detail(cpu0, cpu1, res["seconds"], res["flows"] + res["errors"]))
    if proc.stderr.strip():
        detail["stderr"] = proc.stderr.strip()[-500:]
    return Run(requests=res["flows"], seconds=res["seconds"], rate=res["rate"],
               p50_ms=res["p50_ms"], p99_ms=res["p99_ms"], errors=res["errors"],
               connections=concurrency, detail=detail,
               target_rate=round(rate, 2) if rate else None)


def bench_ours(args, bench: Bench, ours: Ours, stack: str, cases: list[str],
               scratch: Path, results: dict) -> None:
    log(f"\n== ours under {stack} (pinned to CPU {args.server_cpu}) ==")
    proc, base, log_path = start_ours(args, ours, stack, scratch)
    issuer = f"{base}/t/{TENANT}"
    target = Target(
        label=stack, side="ours", issuer=issuer, token_url=f"{issuer}/token",
        discovery_url=f"{issuer}/.well-known/openid-configuration", jwks_url=f"{issuer}/jwks",
        cc_basic=basic(ours.cc_client_id, ours.cc_secret),
        cc_body="grant_type=client_credentials&scope=api",
        refresh_basic=basic(ours.rt_client_id, ours.rt_secret),
        mint_refresh=ours.mint_refresh, server_pid=proc.pid, log_path=log_path,
        mint_signed=lambda n: ours.signed.pairs(f"{issuer}/token", n))
    info = {"command": " ".join(stack_command(args, stack, "PORT")), "log": str(log_path)}
    results["stacks"][stack] = info
    try:
        procs, problems = process_report(proc.pid, args.server_cpu)
        info["pinning"] = problems or "all on CPU %d" % args.server_cpu
        log(f"  started pid {proc.pid} ({len(procs)} processes); pinning: {info['pinning']}")
        sanity(target, cases)
        for note in target.notes:
            log(f"  check {note}")
        info["checks"] = target.notes
        bench.run_target(target, cases)
        if "signin" in cases:
            peak = run_signin(args, issuer, ours.accounts_file,
                              concurrency=args.signin_concurrency, server_pid=proc.pid)
            paced = (run_signin(args, issuer, ours.accounts_file,
                                concurrency=max(args.signin_concurrency, 8),
                                rate=LOAD * peak.rate, server_pid=proc.pid)
                     if peak.rate else None)
            if paced and peak.rate:
                paced.detail["load_fraction"] = round(paced.rate / peak.rate, 3)
            bench.record(target, "signin", "keep-alive", peak, paced)
            hash_rate = results.get("hash", {}).get("rate")
            hash_cpu = results.get("hash", {}).get("cpu_ms_per_verify")
            flow_cpu = peak.detail.get("server_cpu_ms_per_request")
            if hash_cpu and flow_cpu:
                log(f"  sign-ins, by CPU: one argon2id verify is {hash_cpu:.1f} ms of CPU, a whole "
                    f"flow {flow_cpu:.1f} ms of the server's CPU: {hash_cpu / flow_cpu:.2f} of "
                    "the ceiling whatever else ran on the machine")
            if hash_rate:
                log(f"  sign-ins: {peak.rate:.1f}/s = {peak.rate / hash_rate:.2f} of the argon2id "
                    f"ceiling ({hash_rate:.1f} verifies/s); generator CPU "
                    f"{peak.detail.get('client_cpu_ms_per_flow')} ms/flow")
        if "burst" in cases:
            results.setdefault("burst", {})[stack] = burst(args, bench, target, ours)
        procs, problems = process_report(proc.pid, args.server_cpu)
        info["processes"] = {str(k): v for k, v in procs.items()}
        workers = [v for v in procs.values() if v["role"] == "child"] or list(procs.values())
        info["worker_peak_rss_kib"] = max(v["vm_hwm_kib"] for v in workers) if workers else None
        info["master_peak_rss_kib"] = procs.get(proc.pid, {}).get("vm_hwm_kib")
        for pid, v in procs.items():
            log(f"  pid {pid} {v['role']}: peak RSS {v['vm_hwm_kib'] / 1024:.1f} MiB, "
                f"{v['threads']} threads, CPUs {v['cpus']}: {v['cmd'][:70]}")
        bad = server_problems(log_path)
        info["log_problems"] = bad[:50]
        if bad:
            log(f"  server log: {len(bad)} problem lines, first: {bad[:5]}")
    except Exception as exc:
        info["failed"] = f"{type(exc).__name__}: {exc}"
        log(f"  FAILED: {info['failed']}\n{tail(log_path)}")
    finally:
        stop_group(proc)


def burst(args, bench: Bench, target: Target, ours: Ours) -> dict:
    """Can a burst of sign-ins starve the token endpoint? Client credentials paced at
    ``BURST_CC_RATE`` (4 connections, wrk's think time), alone and then while
    ``BURST_SIGNINS`` sign-in flows run at once against the same worker."""
    import threading

    c = 4
    think = c / BURST_CC_RATE * 1000.0
    alone = bench.wrk_case(target, "cc", connections=c, duration=args.duration, think_ms=think)
    box: dict = {}

    def sign_ins():
        try:
            box["signin"] = run_signin(args, target.issuer, ours.accounts_file,
                                       concurrency=BURST_SIGNINS)
        except Exception as exc:  # noqa: BLE001  reported below
            box["error"] = f"{type(exc).__name__}: {exc}"

    thread = threading.Thread(target=sign_ins)
    thread.start()
    time.sleep(2.0)  # the sign-ins are under way
    during = bench.wrk_case(target, "cc", connections=c, duration=max(2, args.duration - 4),
                            think_ms=think)
    thread.join()
    signin = box.get("signin")
    out = {"asked_rate": BURST_CC_RATE, "signins_at_once": BURST_SIGNINS,
           "alone": asdict(alone), "during": asdict(during),
           "signin": asdict(signin) if signin else None, "signin_error": box.get("error"),
           "kept": round(during.rate / alone.rate, 3) if alone.rate else None}
    log(f"  burst: client credentials alone {alone.rate:.1f}/s p99 {alone.p99_ms:.2f} ms; "
        f"during {BURST_SIGNINS} concurrent sign-ins {during.rate:.1f}/s p99 "
        f"{during.p99_ms:.2f} ms, errors {during.errors}; sign-ins meanwhile "
        + (f"{signin.rate:.1f}/s, errors {signin.errors}, shed with a 503 to retry "
           f"{signin.detail.get('retry_later')}" if signin else box.get("error", "?")))
    return out


# --------------------------------------------------------------------------- the peer
def bench_peer(args, bench: Bench, cases: list[str], scratch: Path, results: dict) -> None:
    import peer

    peer_cases = [c for c in ("cc", "cc-signed", "refresh", "discovery", "jwks") if c in cases]
    if not peer_cases:
        return
    t0 = time.monotonic()
    try:
        peer.install(args.peer_scratch)
    except RuntimeError as exc:
        log(f"\n== oidc-provider: cannot install it, skipped ==\n{exc}")
        results["peer"] = {"failed": str(exc)}
        return
    log(f"\noidc-provider {peer.PEER_VERSION} in {args.peer_scratch} "
        f"({time.monotonic() - t0:.1f} s)")
    results["peer"] = {"version": peer.PEER_VERSION, "adapters": {}}
    for adapter in args.peer_adapters:
        label = f"oidc-provider/{adapter}"
        log(f"\n== {label} (pinned to CPU {args.server_cpu}) ==")
        info: dict = {}
        results["peer"]["adapters"][adapter] = info
        try:
            signed = SignedClient()
            signed.client_id = peer.SIGNED_CLIENT_ID
            p = peer.start(args.peer_scratch, 0, cpu=args.server_cpu, adapter=adapter,
                           redis_url=args.redis_url if adapter == "redis" else None,
                           signed_jwks=signed.jwks() if "cc-signed" in peer_cases else None)
        except RuntimeError as exc:
            info["failed"] = str(exc)
            log(f"  FAILED to start: {exc}")
            continue
        CLEANUP.add(f"stop {label}", p.stop)
        try:
            procs, problems = process_report(p.process.pid, args.server_cpu)
            info["pinning"] = problems or "all on CPU %d" % args.server_cpu
            log(f"  started pid {p.process.pid}; pinning: {info['pinning']}")
            target = Target(
                label=label, side="peer", issuer=p.issuer, token_url=p.token_url,
                discovery_url=p.discovery_url, jwks_url=p.jwks_url,
                cc_basic=basic(p.client_id, p.client_secret),
                cc_body="grant_type=client_credentials&scope=api",
                refresh_basic=basic(p.client_id, p.client_secret),
                mint_refresh=p.refresh_tokens, server_pid=p.process.pid,
                mint_signed=lambda n, signed=signed, url=p.token_url: signed.pairs(url, n))
            sanity(target, peer_cases)
            for note in target.notes:
                log(f"  check {note}")
            info["checks"] = target.notes
            bench.run_target(target, peer_cases)
            procs, _ = process_report(p.process.pid, args.server_cpu)
            info["peak_rss_kib"] = max((v["vm_hwm_kib"] for v in procs.values()), default=None)
            info["stats"] = p.stats()
            log(f"  peak RSS {info['peak_rss_kib'] / 1024:.1f} MiB; provider error counters "
                f"{info['stats']}")
        except Exception as exc:
            info["failed"] = f"{type(exc).__name__}: {exc}"
            log(f"  FAILED: {info['failed']}\n{p.logs()}")
        finally:
            p.stop()


# --------------------------------------------------------------------------- hash baseline
HASH_CODE = r"""
import json, sys, time
from idp.config import Settings
from idp.password import Passwords
s = Settings()
p = Passwords(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)
password = "bench-password-not-secret"
stored = p.hash(password)
assert p.verify(stored, password).ok and not p.verify(stored, "wrong-password").ok  # warm
duration = float(sys.argv[1])
n, t0, c0 = 0, time.perf_counter(), time.process_time()
while time.perf_counter() - t0 < duration:
    if not p.verify(stored, password).ok:
        raise SystemExit("verify failed")
    n += 1
seconds = time.perf_counter() - t0
print(json.dumps({"verifies": n, "seconds": round(seconds, 3), "rate": round(n / seconds, 2),
                  "ms_per_verify": round(seconds / n * 1000, 2),
                  "cpu_ms_per_verify": round((time.process_time() - c0) / n * 1000, 2),
                  "cpu_share": round((time.process_time() - c0) / seconds, 3),
                  "params": {"memory_kib": s.argon2_memory_kib, "time_cost": s.argon2_time_cost,
                             "parallelism": s.argon2_parallelism},
                  "hash_prefix": stored.split("$")[1:4]}))
"""


def hash_baseline(args) -> dict:
    cmd = ["taskset", "-c", str(args.server_cpu), sys.executable, "-c", HASH_CODE,
           str(args.duration)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=args.duration + 120)
    if proc.returncode != 0:
        raise RuntimeError(f"hash baseline failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- report
def machine_facts(args) -> dict:
    def first_line(cmd: list[str]) -> str | None:
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        text = (p.stdout or p.stderr).strip()
        return text.splitlines()[0] if text else None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    bindir = Path(sys.executable).parent
    facts = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
        "python": platform.python_version(),
        "node": first_line(["node", "--version"]),
        "wrk": (first_line([shutil.which("wrk") or "wrk", "-v"]) or "").split(" Copyright")[0],
        "gunicorn": first_line([str(bindir / "gunicorn"), "--version"]),
        "granian": first_line([str(bindir / "granian"), "--version"])
        if (bindir / "granian").exists() else None,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "git": first_line(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
    }
    try:
        engine = sa.create_engine(args.database_url.replace("postgresql://",
                                                            "postgresql+psycopg://", 1))
        with engine.connect() as c:
            facts["postgresql"] = c.execute(sa.text("SHOW server_version")).scalar()
        engine.dispose()
    except Exception as exc:
        facts["postgresql"] = f"? ({type(exc).__name__})"
    try:
        import redis

        facts["redis"] = redis.Redis.from_url(args.redis_url).info("server")["redis_version"]
    except Exception as exc:
        facts["redis"] = f"? ({type(exc).__name__})"
    try:
        from importlib.metadata import version

        facts["oidc_provider"] = __import__("peer").PEER_VERSION
        facts["authlib"] = version("authlib")
        facts["argon2_cffi"] = version("argon2-cffi")
    except Exception:
        pass
    return facts


def fmt(x, spec: str = ".1f", none: str = "-") -> str:
    return none if x is None else format(x, spec)


def peer_rate(rows: list[dict], adapter: str, case: str, conn: str) -> float | None:
    for row in rows:
        if row["target"] == f"oidc-provider/{adapter}" and row["case"] == case \
                and row["conn"] == conn:
            return row["peak"]["rate"]
    return None


def table(rows: list[dict], adapters: list[str]) -> tuple[list[str], list[list[str]]]:
    head = ["case", "stack", "conn", "c", "peak /s", "new conns/req", "server CPU ms/req",
            "p50 ms", "p99 ms", "@ rate /s (load)", "errors"] + [f"x {a}" for a in adapters]
    body = []
    for row in rows:
        peak, paced = row["peak"], row["paced"]
        cpr = peak["detail"].get("connections_per_request")
        at = (f"{paced['rate']:.1f} ({paced['detail'].get('load_fraction', 0):.0%})"
              if paced else "-")
        line = [row["case"] + ("*" if row.get("disturbed") else ""), row["target"], row["conn"],
                str(row["connections"]),
                fmt(peak["rate"]), fmt(cpr, ".2f"),
                fmt(peak["detail"].get("server_cpu_ms_per_request"), ".2f")
                + (f" ({peak['detail']['server_cpu_share']:.0%})"
                   if peak["detail"].get("server_cpu_share") is not None else ""),
                fmt(paced["p50_ms"], ".2f") if paced else "-",
                fmt(paced["p99_ms"], ".2f") if paced else "-", at, str(row["errors"])]
        for a in adapters:
            theirs = peer_rate(rows, a, row["case"], row["conn"])
            line.append(f"{peak['rate'] / theirs:.2f}" if row["side"] == "ours" and theirs
                        else "-")
        body.append(line)
    return head, body


def print_table(head: list[str], body: list[list[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in body)) if body else len(h)
              for i, h in enumerate(head)]
    log("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    log("  ".join("-" * w for w in widths))
    for r in body:
        log("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def evaluate(results: dict, adapters: list[str]) -> dict:
    """The issue's targets, per stack: (figures, PASS/FAIL/None when not measured)."""
    rows = results["rows"]
    fair = "redis" if "redis" in adapters else (adapters[0] if adapters else None)
    hash_rate = results.get("hash", {}).get("rate")
    out: dict = {}
    for stack in results["stacks"]:
        mine = {(r["case"], r["conn"]): r for r in rows if r["target"] == stack}

        def rate(case, conn):
            r = mine.get((case, conn))
            return r["peak"]["rate"] if r else None

        checks = []

        def check(name, values: dict, ok):
            checks.append({"target": name, "values": values, "pass": ok})

        for case, floor in (("cc", TARGET_CC), ("cc-signed", TARGET_CC),
                            ("refresh", TARGET_REFRESH)):
            vals = {conn: rate(case, conn) for conn in ("keep-alive", "close")}
            got = [v for v in vals.values() if v is not None]
            check(f"{case} >= {floor:,.0f}/s (both modes)", vals,
                  all(v >= floor for v in got) if got else None)
        if fair:
            for case in ("cc", "cc-signed"):
                vals, oks = {}, []
                for conn in ("keep-alive", "close"):
                    ours, theirs = rate(case, conn), peer_rate(rows, fair, case, conn)
                    if ours and theirs:
                        vals[conn] = round(ours / theirs, 2)
                        oks.append(ours / theirs >= TARGET_PEER_RATIO)
                        other = [a for a in adapters if a != fair]
                        for a in other:
                            t2 = peer_rate(rows, a, case, conn)
                            if t2:
                                vals[f"{conn} vs {a}"] = round(ours / t2, 2)
                check(f"{case} >= {TARGET_PEER_RATIO:.1f}x oidc-provider/{fair} (both modes)",
                      vals, all(oks) if oks else None)
        s = mine.get(("signin", "keep-alive"))
        if s and hash_rate:
            frac = s["peak"]["rate"] / hash_rate
            vals = {"flows/s": s["peak"]["rate"], "ceiling": hash_rate,
                    "fraction": round(frac, 3)}
            hash_cpu = results["hash"].get("cpu_ms_per_verify")
            flow_cpu = s["peak"]["detail"].get("server_cpu_ms_per_request")
            if hash_cpu and flow_cpu:
                vals["by CPU (verify ms / flow ms)"] = round(hash_cpu / flow_cpu, 3)
            check(f"sign-ins >= {TARGET_SIGNIN_FRACTION} of the argon2id ceiling", vals,
                  frac >= TARGET_SIGNIN_FRACTION)
        else:
            check(f"sign-ins >= {TARGET_SIGNIN_FRACTION} of the argon2id ceiling", {}, None)
        vals, oks = {}, []
        for case in TOKEN_CASES:
            r = mine.get((case, "keep-alive"))
            if r and r["paced"]:
                vals[case] = r["paced"]["p99_ms"]
                oks.append(r["paced"]["p99_ms"] <= TARGET_P99_MS)
        check(f"p99 <= {TARGET_P99_MS:.0f} ms at ~70% of peak (token endpoints)", vals,
              all(oks) if oks else None)
        b = results.get("burst", {}).get(stack)
        if b:
            vals = {"alone /s": b["alone"]["rate"], "during /s": b["during"]["rate"],
                    "p99 alone ms": b["alone"]["p99_ms"], "p99 during ms": b["during"]["p99_ms"],
                    "errors": b["during"]["errors"],
                    "sign-ins /s meanwhile": (b["signin"] or {}).get("rate"),
                    "sign-ins shed (503, retried after Retry-After)":
                        ((b["signin"] or {}).get("detail") or {}).get("retry_later")}
            check(f"a burst of {BURST_SIGNINS} sign-ins leaves the token endpoint "
                  f">= {BURST_KEEP:.0%} of its rate, no errors", vals,
                  b["kept"] is not None and b["kept"] >= BURST_KEEP
                  and b["during"]["errors"] == 0)
        errors = sum(r["errors"] for r in mine.values())
        failed = results["stacks"][stack].get("failed")
        check("no errors under load", {"errors": errors, **({"failed": failed} if failed else {})},
              errors == 0 and not failed if mine or failed else None)
        out[stack] = checks
    return out


def print_targets(targets: dict) -> None:
    for stack, checks in targets.items():
        log(f"\n{stack}:")
        for c in checks:
            verdict = {True: "PASS", False: "FAIL", None: "n/a "}[c["pass"]]
            vals = ", ".join(f"{k} {v}" for k, v in c["values"].items())
            log(f"  {verdict}  {c['target']}: {vals}")


def stack_summary(results: dict) -> tuple[list[str], list[list[str]]]:
    """Our stacks side by side: the figures the default is chosen on."""
    rows = results["rows"]
    head = ["stack", "cc keep-alive /s", "cc close /s", "refresh keep-alive /s",
            "refresh close /s", "cc p99 ms", "refresh p99 ms", "sign-ins /s",
            "worker peak RSS MiB", "errors"]
    body = []
    for stack, info in results["stacks"].items():
        mine = {(r["case"], r["conn"]): r for r in rows if r["target"] == stack}

        def peak(case, conn):
            r = mine.get((case, conn))
            return fmt(r["peak"]["rate"]) if r else "-"

        def p99(case):
            r = mine.get((case, "keep-alive"))
            return fmt(r["paced"]["p99_ms"], ".2f") if r and r["paced"] else "-"

        rss = info.get("worker_peak_rss_kib")
        body.append([stack, peak("cc", "keep-alive"), peak("cc", "close"),
                     peak("refresh", "keep-alive"), peak("refresh", "close"), p99("cc"),
                     p99("refresh"), peak("signin", "keep-alive"),
                     fmt(rss / 1024 if rss else None, ".0f"),
                     str(sum(r["errors"] for r in mine.values()))
                     + (" (failed)" if info.get("failed") else "")])
    return head, body


def md_table(head: list[str], body: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            + ["| " + " | ".join(r) + " |" for r in body])


def markdown(results: dict, head: list[str], body: list[list[str]]) -> str:
    m = results["machine"]
    lines = [f"Run {m['date']} on {m['cores']} × {m['cpu']}, Linux {m['kernel']}, Python "
             f"{m['python']}, {m['gunicorn']}, {m.get('granian') or 'no granian'}, Node "
             f"{m['node']}, {m['wrk']}, PostgreSQL {m.get('postgresql')}, "
             f"Redis {m.get('redis')}, oidc-provider {m.get('oidc_provider')}; "
             f"load average at start {m['loadavg_at_start']}; git {m.get('git')}.",
             "", f"Command: `{results['command']}`", ""]
    if results.get("hash"):
        h = results["hash"]
        lines += [f"argon2id ceiling (one core, m={h['params']['memory_kib']} KiB, "
                  f"t={h['params']['time_cost']}, p={h['params']['parallelism']}): "
                  f"{h['rate']:.1f} verifies/s ({h['ms_per_verify']} ms each, "
                  f"{h.get('cpu_ms_per_verify')} ms of CPU; the process had "
                  f"{h['cpu_share']:.0%} of its core).", ""]
    lines += md_table(head, body)
    if any(r[0].endswith("*") for r in body):
        lines += ["", "\\* other processes took more than 5% of the server's CPU during the "
                  "run (see `server_core_others_share` in the JSON)."]
    s_head, s_body = stack_summary(results)
    if s_body:
        lines += ["", "Stacks side by side (p99 at ~70% of the keep-alive peak):", ""]
        lines += md_table(s_head, s_body)
    rss = []
    for stack, info in results["stacks"].items():
        if info.get("worker_peak_rss_kib"):
            rss.append(f"{stack} {info['worker_peak_rss_kib'] / 1024:.0f} MiB")
    for adapter, info in (results.get("peer") or {}).get("adapters", {}).items():
        if info.get("peak_rss_kib"):
            rss.append(f"oidc-provider/{adapter} {info['peak_rss_kib'] / 1024:.0f} MiB")
    if rss:
        lines += ["", "Peak RSS per worker: " + ", ".join(rss) + "."]
    for stack, checks in results.get("targets", {}).items():
        lines += ["", f"Targets, {stack}:", ""]
        for c in checks:
            verdict = {True: "PASS", False: "FAIL", None: "n/a"}[c["pass"]]
            vals = ", ".join(f"{k} {v}" for k, v in c["values"].items())
            lines.append(f"- {verdict}: {c['target']}: {vals}")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (default 10)")
    parser.add_argument("--only", default=",".join(ALL_CASES),
                        help=f"cases, comma-separated (default {','.join(ALL_CASES)})")
    parser.add_argument("--stacks", default=",".join(ALL_STACKS),
                        help=f"serving stacks (default {','.join(ALL_STACKS)})")
    parser.add_argument("--no-peer", action="store_true", help="skip oidc-provider")
    parser.add_argument("--peer-adapters", default="memory,redis")
    parser.add_argument("--json", type=Path, help="write every figure and the machine here")
    parser.add_argument("--markdown", type=Path, help="write the results table here (README)")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server (a scratch database is made beside it)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5",
                        help="a Redis database of the benchmark's own: FLUSHDB at start and end")
    parser.add_argument("--connections", default="4,16,64",
                        help="wrk -c values tried (short keep-alive cc runs); the best is used")
    parser.add_argument("--paced-connections", type=int, default=16,
                        help="wrk -c of the paced (latency) runs, the same for every server")
    parser.add_argument("--threads", type=int, default=8,
                        help="gthread threads / granian blocking threads of the one worker")
    parser.add_argument("--signin-accounts", type=int, default=1500,
                        help="accounts with TOTP (each signs in once per 30-s step)")
    parser.add_argument("--signin-concurrency", type=int, default=4)
    parser.add_argument("--refresh-pool", type=int, default=1000,
                        help="fresh refresh tokens minted for each refresh run")
    parser.add_argument("--signed-pool", type=int, default=None,
                        help="assertion + DPoP proof pairs made for each cc-signed run (each "
                        "is used once; default 3,000 per second of --duration: more than a "
                        "run sends)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--peer-scratch", type=Path, default=HERE / ".peer")
    parser.add_argument("--pin-services", action="store_true",
                        help="also pin the local PostgreSQL and Redis to --client-cpu during "
                        "the run (restored at the end); off by default: they are shared "
                        "system services")
    args = parser.parse_args(argv)
    args.only = [c.strip() for c in args.only.split(",") if c.strip()]
    args.stacks = [s.strip() for s in args.stacks.split(",") if s.strip()]
    args.peer_adapters = [a.strip() for a in args.peer_adapters.split(",") if a.strip()]
    args.connections = [int(c) for c in args.connections.split(",")]
    for c in args.only:
        if c not in ALL_CASES:
            parser.error(f"unknown case {c!r} (one of {', '.join(ALL_CASES)})")
    for s in args.stacks:
        if s not in ALL_STACKS:
            parser.error(f"unknown stack {s!r} (one of {', '.join(ALL_STACKS)})")
    if args.duration < 1:
        parser.error("--duration is whole seconds, at least 1")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_signal)
    defaults_only()
    if not shutil.which("taskset"):
        log("taskset is missing (util-linux): apt-get install util-linux")
        return 2
    wrk_path()
    if os.cpu_count() and max(args.server_cpu, args.client_cpu) >= os.cpu_count():
        log(f"this machine has {os.cpu_count()} CPUs: --server-cpu/--client-cpu out of range")
        return 2

    fresh_store(args.redis_url)

    results: dict = {"command": " ".join(["benchmarks/run.py"] + (sys.argv[1:] if argv is None
                                                                    else list(argv))),
                     "machine": machine_facts(args), "options": {
                         k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "stacks": {}, "rows": []}
    m = results["machine"]
    log(f"{m['date']}: {m['cores']} × {m['cpu']}, Linux {m['kernel']}, Python {m['python']}, "
        f"{m['wrk']}, node {m['node']}; load average {m['loadavg_at_start']}")
    if m["loadavg_at_start"][0] > 0.5:
        log("warning: the machine is not idle (load average above 0.5): figures will be low "
            "and noisy")
    log(f"server on CPU {args.server_cpu}; wrk and the sign-in generator on CPU "
        f"{args.client_cpu}; PostgreSQL and Redis "
        + ("pinned to it too" if args.pin_services else
           "not pinned (the kernel may run them on either CPU: see 'others' on the server's "
           "CPU per run)"))
    if args.pin_services:
        pin_services(args.client_cpu)

    cases = args.only
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp:
        scratch = Path(tmp)
        bench = Bench(args, scratch)
        results["rows"] = bench.rows
        try:
            if "hash" in cases:
                results["hash"] = hash_baseline(args)
                h = results["hash"]
                log(f"\nargon2id baseline on CPU {args.server_cpu}: {h['rate']:.1f} verifies/s "
                    f"({h['ms_per_verify']} ms each, {h['cpu_ms_per_verify']} ms of CPU, "
                    f"params {h['params']})")
                if h["cpu_share"] < 0.95:
                    log(f"  DISTURBED: the baseline had {h['cpu_share']:.0%} of its core: "
                        "other processes took the rest")
            server_cases = [c for c in cases if c != "hash"]
            if server_cases and args.stacks:
                ours = setup_ours(args, scratch, server_cases)
                for stack in args.stacks:
                    missing = stack_available(stack)
                    if missing:
                        log(f"\n== {stack}: skipped: {missing}")
                        results.setdefault("skipped", {})[stack] = missing
                        continue
                    bench_ours(args, bench, ours, stack, server_cases, scratch, results)
            if not args.no_peer:
                bench_peer(args, bench, cases, scratch, results)
        finally:
            CLEANUP.run()

    adapters = [a for a in args.peer_adapters
                if any(r["target"] == f"oidc-provider/{a}" for r in bench.rows)]
    head, body = table(bench.rows, adapters)
    log(f"\n== results ({args.duration} s runs; p50/p99 at ~70% of the keep-alive peak; "
        f"'x memory'/'x redis' = ours/oidc-provider peak) ==")
    print_table(head, body)
    if any(r[0].endswith("*") for r in body):
        log("* other processes took more than 5% of the server's CPU during the run")
    if results.get("hash"):
        log(f"argon2id ceiling: {results['hash']['rate']:.1f} verifies/s on one core")
    for stack, info in results["stacks"].items():
        if info.get("worker_peak_rss_kib"):
            log(f"peak RSS per worker, {stack}: {info['worker_peak_rss_kib'] / 1024:.1f} MiB "
                f"(master {fmt((info.get('master_peak_rss_kib') or 0) / 1024)} MiB)")
    for adapter, info in (results.get("peer") or {}).get("adapters", {}).items():
        if info.get("peak_rss_kib"):
            log(f"peak RSS, oidc-provider/{adapter}: {info['peak_rss_kib'] / 1024:.1f} MiB")
    s_head, s_body = stack_summary(results)
    if len(s_body) > 1:
        log("\n== our stacks side by side ==")
        print_table(s_head, s_body)
    results["targets"] = evaluate(results, adapters)
    log("\n== targets (per core) ==")
    print_targets(results["targets"])
    total_errors = sum(r["errors"] for r in bench.rows)
    if total_errors:
        log(f"\nERRORS under load: {total_errors} in all (see the rows above)")
    log(f"\ndone in {time.monotonic() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json}")
    if args.markdown:
        args.markdown.write_text(markdown(results, head, body))
        log(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
