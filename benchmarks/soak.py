"""A soak: a mixed load held for minutes on two worker processes; errors, p99 drift, memory.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--warmup 120] [--json soak.json]

On PostgreSQL and Redis (the same defaults as ``run.py``: a scratch database beside
``--database-url``, dropped at the end), granian with ``--workers 2`` serves the IdP while
threads of this process keep up, at fixed rates:

- full sign-ins with TOTP (``signin_load.Client``: authorize, password, TOTP, code, token);
- refresh grants with rotation, each thread carrying its family forward;
- userinfo with the access tokens the refreshes return;
- wrong TOTP codes on a set of victim accounts until they lock (their 400s and 429s are the
  expected answers; the tenant's CAPTCHA threshold is raised so that guesses reach the lock).

The same load runs for ``--warmup`` seconds first, opened by three bursts of eight
simultaneous sign-ins (pools filled, every hash thread's argon2 memory taken, code paths
imported): errors count from the start, the figures from its end.
Every minute it notes, per kind, the operations done and their p99, and every 10 s the RSS of
each worker. Printed at the end: errors (anything not the expected answer; the target is 0),
the p99 drift per kind (last minute against the first), and each worker's memory growth: the
peak RSS of the last minute against that of the first measured minute (the target is under
10%), with the range of every sample. Exit status 0 whatever the figures;
2 when the run cannot be made.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: setup, server environment, cleanup)
import signin_load  # noqa: E402

RATES = {"signin": 2.0, "refresh": 40.0, "userinfo": 40.0, "wrong_code": 1.0}  # per second
THREADS = {"signin": 4, "refresh": 8, "userinfo": 4, "wrong_code": 2}
WARM_BURSTS, WARM_BURST_SIZE = 3, 8  # two workers, each at most 2 hashing and 4 queued


class Recorder:
    def __init__(self, started: float):
        self.started = started
        self.lock = threading.Lock()
        self.minutes: dict[int, dict[str, list[float]]] = {}
        self.errors: list[str] = []
        self.error_count = 0

    def ok(self, kind: str, seconds: float) -> None:
        elapsed = time.monotonic() - self.started
        if elapsed < 0:
            return  # still warming up
        minute = int(elapsed // 60)
        with self.lock:
            self.minutes.setdefault(minute, {}).setdefault(kind, []).append(seconds * 1000)

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.error_count += 1
            if len(self.errors) < 20:
                self.errors.append(f"{kind}: {what}"[:300])


def paced(rate: float, threads: int, deadline: float, stop: threading.Event):
    """Yield when this thread's next operation is due (each thread takes rate/threads)."""
    interval = threads / rate
    due = time.monotonic() + secrets.randbelow(1000) / 1000 * interval
    while not stop.is_set() and due < deadline:
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        yield
        due += interval


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1)


def worker_pids(master: int) -> list[int]:
    return run.descendants(master)


def rss_kib(pid: int) -> int | None:
    try:
        return run.kib(run.proc_status(pid), "VmRSS")
    except (OSError, KeyError, ValueError):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=120.0,
                        help="seconds of the same load before the measured minutes")
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--json", type=Path)
    opts = parser.parse_args(argv)
    run.defaults_only()
    accounts_needed = int(RATES["signin"] * 30 * 1.5) + 50
    args = run.parse_args(["--only", "signin", "--stacks", "granian", "--no-peer",
                           "--database-url", opts.database_url, "--redis-url", opts.redis_url,
                           "--signin-accounts", str(accounts_needed)])
    problem = run.stack_available("granian")
    if problem:
        print(problem)
        return 2
    run.fresh_store(args.redis_url)
    with tempfile.TemporaryDirectory(prefix="idp-soak-") as tmp:
        scratch = Path(tmp)
        ours = run.setup_ours(args, scratch, ["signin"])
        _raise_captcha_threshold(ours.database_url, ours.secret_key)
        accounts, extra = signin_load.load_accounts(str(ours.accounts_file))
        victims, accounts = accounts[:40], accounts[40:]
        port = run.free_port()
        base = f"http://127.0.0.1:{port}"
        cmd = [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi",
               "--workers", "2", "--blocking-threads", "8", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "wsgi:app"]
        log_path = scratch / "server.log"
        with log_path.open("wb") as out:
            # Every simulated user comes from 127.0.0.1: the per-address throttle would take
            # the victims' guesses for an attack on everyone (as it should, from one address).
            env = {**ours.server_env(base),
                   "IDP_IP_FAILURES_PER_10_MINUTES": "100000"}
            server = subprocess.Popen(cmd, cwd=run.ROOT, env=env,
                                      stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        run.CLEANUP.add("stop granian", lambda: run.stop_group(server))
        issuer = f"{base}/t/{run.TENANT}"
        try:
            run.wait_until_answering(server, f"{base}/health/ready", "granian", log_path)
        except RuntimeError as problem:
            print(problem)
            return 2
        refresh_pool = ours.mint_refresh(THREADS["refresh"] * 2)
        result = soak(opts.minutes, opts.warmup, issuer, extra, accounts, victims, ours,
                      refresh_pool, server.pid)
        run.stop_group(server)
    run.CLEANUP.run()
    report(result)
    if opts.json:
        opts.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {opts.json}")
    return 0


def _raise_captcha_threshold(database_url: str, secret_key: str) -> None:
    """Guesses in this soak are meant to reach the lock, not stop at the CAPTCHA."""
    from sqlalchemy.orm import Session

    from idp import admin, db as idp_db, directory

    engine = idp_db.make_engine(database_url)
    with Session(engine) as session:
        admin.set_policy(session, directory.get_tenant(session, run.TENANT), "soak",
                         captcha_after=100, lock_after=5)
        session.commit()
    engine.dispose()


def soak(minutes, warmup, issuer, extra, accounts, victims, ours, refresh_pool,
         master) -> dict:
    started = time.monotonic() + warmup  # the measured minutes start after the warm-up
    deadline = started + minutes * 60
    rec = Recorder(started)
    stop = threading.Event()
    pool = signin_load.Accounts(accounts)
    access_tokens: list[str] = []
    token_url = f"{issuer}/token"
    rt_auth = (ours.rt_client_id, ours.rt_secret)

    def signin():
        client = signin_load.Client(issuer, extra["client_id"], extra["client_secret"],
                                    extra["redirect_uri"])
        for _ in paced(RATES["signin"], THREADS["signin"], deadline, stop):
            taken = pool.take(deadline)
            if taken is None:
                return
            t0 = time.monotonic()
            try:
                client.sign_in(*taken)
                rec.ok("signin", time.monotonic() - t0)
            except signin_load.RetryLater as e:
                rec.ok("signin_shed", time.monotonic() - t0)
                time.sleep(e.seconds)
            except Exception as e:  # noqa: BLE001  counted, the soak goes on
                rec.error("signin", f"{type(e).__name__}: {e}")
                client.close()

    def refresh(slot: int):
        http = requests.Session()
        mine = [refresh_pool[slot * 2], refresh_pool[slot * 2 + 1]]
        turn = 0
        for _ in paced(RATES["refresh"], THREADS["refresh"], deadline, stop):
            turn ^= 1
            t0 = time.monotonic()
            try:
                r = http.post(token_url, data={"grant_type": "refresh_token",
                                               "refresh_token": mine[turn]},
                              auth=rt_auth, timeout=30)
            except requests.RequestException as e:
                rec.error("refresh", str(e))
                continue
            if r.status_code == 200:
                body = r.json()
                mine[turn] = body["refresh_token"]
                with rec.lock:
                    access_tokens.append(body["access_token"])
                    del access_tokens[:-200]
                rec.ok("refresh", time.monotonic() - t0)
            else:
                rec.error("refresh", f"{r.status_code} {r.text[:120]}")

    def userinfo():
        http = requests.Session()
        for _ in paced(RATES["userinfo"], THREADS["userinfo"], deadline, stop):
            with rec.lock:
                token = access_tokens[-1] if access_tokens else None
            if token is None:
                continue
            t0 = time.monotonic()
            try:
                r = http.get(f"{issuer}/userinfo", headers={"Authorization": f"Bearer {token}"},
                             timeout=30)
            except requests.RequestException as e:
                rec.error("userinfo", str(e))
                continue
            if r.status_code == 200:
                rec.ok("userinfo", time.monotonic() - t0)
            else:
                rec.error("userinfo", f"{r.status_code} {r.text[:120]}")

    def wrong_code(index: int):
        client = signin_load.Client(issuer, extra["client_id"], extra["client_secret"],
                                    extra["redirect_uri"])
        mine = victims[index::THREADS["wrong_code"]]
        turn = 0
        for _ in paced(RATES["wrong_code"], THREADS["wrong_code"], deadline, stop):
            victim = mine[turn % len(mine)]
            turn += 1
            t0 = time.monotonic()
            try:
                client.sign_in(victim, "000000")
                rec.error("wrong_code", "a wrong code signed in")
            except signin_load.FlowError as e:
                if "gave 400" in str(e) or "gave 429" in str(e):  # refused, then locked
                    rec.ok("wrong_code", time.monotonic() - t0)
                else:
                    rec.error("wrong_code", str(e))
            except Exception as e:  # noqa: BLE001
                rec.error("wrong_code", f"{type(e).__name__}: {e}")
                client.close()

    def warm_every_hash_thread():
        """Bursts of simultaneous sign-ins, so that each worker's argon2id threads (one per
        usable CPU) have each hashed once and hold the 19 MiB glibc keeps for the next: a
        step every worker takes once, whenever its first simultaneous sign-ins come."""
        def one():
            client = signin_load.Client(issuer, extra["client_id"], extra["client_secret"],
                                        extra["redirect_uri"])
            try:
                client.sign_in(*pool.take(deadline))
            except signin_load.RetryLater:
                pass
            except Exception as e:  # noqa: BLE001
                rec.error("signin", f"warm-up: {type(e).__name__}: {e}")
            finally:
                client.close()

        for _ in range(WARM_BURSTS):
            burst = [threading.Thread(target=one) for _ in range(WARM_BURST_SIZE)]
            for t in burst:
                t.start()
            for t in burst:
                t.join(60)

    memory: list[dict] = [{"at_s": round(time.monotonic() - started),
                           "rss_kib": {str(p): rss_kib(p) for p in worker_pids(master)}}]
    if warmup:
        warm_every_hash_thread()
    threads = ([threading.Thread(target=signin) for _ in range(THREADS["signin"])]
               + [threading.Thread(target=refresh, args=(i,)) for i in range(THREADS["refresh"])]
               + [threading.Thread(target=userinfo) for _ in range(THREADS["userinfo"])]
               + [threading.Thread(target=wrong_code, args=(i,))
                  for i in range(THREADS["wrong_code"])])
    for t in threads:
        t.daemon = True
        t.start()
    database = DatabaseWatch(ours.database_url)
    cpu = [{"at_s": memory[0]["at_s"], **cpu_now(master)}]
    while time.monotonic() < deadline:
        time.sleep(min(10, max(0.0, deadline - time.monotonic())))
        at = round(time.monotonic() - started)
        memory.append({"at_s": at,
                       "rss_kib": {str(p): rss_kib(p) for p in worker_pids(master)}})
        if len(memory) % 6 == 0:
            database.sample(at)
            cpu.append({"at_s": at, **cpu_now(master)})
    database.close()
    stop.set()
    for t in threads:
        t.join(60)
    per_minute = []
    for minute in sorted(rec.minutes):
        kinds = rec.minutes[minute]
        per_minute.append({"minute": minute + 1, **{
            kind: {"count": len(v), "p99_ms": p99(v)} for kind, v in sorted(kinds.items())}})
    return {"minutes": minutes, "warmup_s": warmup, "rates_per_s": RATES, "errors": rec.error_count,
            "error_samples": rec.errors, "per_minute": per_minute, "memory": memory,
            "database": database.samples, "analyze_each_minute": database.stand_in,
            "cpu": cpu_per_minute(cpu)}


def cpu_now(master: int) -> dict:
    """CPU seconds so far: the workers, PostgreSQL and Redis (every process of theirs), and
    what the hypervisor took from this machine (steal, every CPU)."""
    used = run.cpu_seconds(master)
    steal = 0.0
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("cpu "):
            steal = int(line.split()[8]) / run.CLOCK_TICK
    return {"workers": used["server"], "services": used["db"], "steal": steal}


def cpu_per_minute(samples: list[dict]) -> list[dict]:
    """CPU seconds spent between samples (about a minute apart). The load is the same every
    minute, so work per request that grows shows as seconds that grow."""
    out = []
    for before, after in zip(samples, samples[1:]):
        services = run.services_seconds(before["services"], after["services"])
        out.append({"until_s": after["at_s"],
                    "workers_s": round(after["workers"] - before["workers"], 1),
                    "postgresql_redis_s": round(services, 1),
                    "steal_s": round(after["steal"] - before["steal"], 1)})
    return out


class DatabaseWatch:
    """Once a minute, what PostgreSQL says of the tokens table (rows, dead row versions,
    size, vacuums) and of checkpoints: what a rising refresh tail would come from.

    A server with autovacuum off (CI's PostgreSQL here turns it off to speed up tests) never
    refreshes the planner's statistics: the tokens table keeps looking as small as when it was
    seeded, and the refresh claim is planned as a scan of the tenant's rows, slower with every
    row. Production keeps autovacuum on, so then this ANALYZEs once a minute in its place."""

    def __init__(self, url: str):
        import sqlalchemy as sa

        from idp import db as idp_db

        self.sa = sa
        self.base = idp_db.make_engine(url)
        self.engine = self.base.execution_options(isolation_level="AUTOCOMMIT")
        self.samples: list[dict] = []
        with self.engine.connect() as c:
            self.stand_in = c.execute(sa.text("SHOW autovacuum")).scalar() != "on"
        if self.stand_in:
            print("autovacuum is off on this PostgreSQL: ANALYZE once a minute in its place")

    def sample(self, at: int) -> None:
        if self.stand_in:
            with self.engine.connect() as c:
                c.exec_driver_sql("ANALYZE")
        query = self.sa.text(
            "SELECT n_live_tup, n_dead_tup, autovacuum_count, autoanalyze_count,"
            " pg_total_relation_size('tokens'), (SELECT checkpoints_timed + checkpoints_req"
            " FROM pg_stat_bgwriter) FROM pg_stat_user_tables WHERE relname = 'tokens'")
        try:
            with self.engine.connect() as c:
                row = c.execute(query).one()
        except Exception as exc:  # noqa: BLE001  a figure missing, not a failed soak
            self.samples.append({"at_s": at, "error": type(exc).__name__})
            return
        self.samples.append({"at_s": at, "tokens_live": row[0], "tokens_dead": row[1],
                             "autovacuums": row[2], "autoanalyzes": row[3],
                             "tokens_mib": round(row[4] / 2**20, 1), "checkpoints": row[5]})

    def close(self) -> None:
        self.base.dispose()


def report(result: dict) -> None:
    rows = result["per_minute"]
    kinds = sorted({k for row in rows for k in row if k != "minute"})
    print(f"\nsoak: {result['minutes']:g} min, rates/s {result['rates_per_s']}, two granian "
          "workers")
    print("minute  " + "  ".join(f"{k + ' n/p99 ms':>24s}" for k in kinds))
    for row in rows:
        cells = [f"{row[k]['count']:>10d} / {row[k]['p99_ms']:>9}" if k in row else " " * 22
                 for k in kinds]
        print(f"{row['minute']:>6d}  " + "  ".join(f"{c:>24s}" for c in cells))
    print(f"errors: {result['errors']} (target 0) {result['error_samples'][:5]}")
    full = [row for row in rows if row["minute"] <= result["minutes"]]
    if len(full) >= 2:
        for kind in kinds:
            first = next((r[kind]["p99_ms"] for r in full if kind in r), None)
            last = next((r[kind]["p99_ms"] for r in reversed(full) if kind in r), None)
            if first and last:
                print(f"p99 drift {kind}: {first} -> {last} ms ({last / first:.2f}x)", end="")
            head, tail = middle(full[:3], kind), middle(full[-3:], kind)
            if len(full) >= 6 and head and tail:
                # One minute's p99 of a slow kind is nearly its slowest operation: a single
                # stall moves it. The median of three minutes' p99 shows a trend, not a stall.
                print(f"; median of the first three minutes' p99 -> the last three: {head} -> "
                      f"{tail} ms ({tail / head:.2f}x)", end="")
            print()
    for row in result.get("database", []):
        print("database at {at_s} s: tokens {tokens_live} live / {tokens_dead} dead, "
              "{tokens_mib} MiB, {autovacuums} autovacuums, {checkpoints} checkpoints"
              .format_map(row) if "error" not in row else f"database at {row['at_s']} s: ?")
    for row in result.get("cpu", []):
        print("CPU until {until_s} s: workers {workers_s} s, PostgreSQL and Redis "
              "{postgresql_redis_s} s, stolen {steal_s} s".format_map(row))
    for pid, line in memory_growth(result["memory"], result["minutes"]).items():
        print(f"worker {pid}: peak RSS {line['first_minute_mib']} MiB in the first measured "
              f"minute, {line['last_minute_mib']} MiB in the last ({line['growth']:+.1%}; "
              f"target < 10%); samples {line['low_mib']}-{line['high_mib']} MiB, "
              f"{line['cold_mib']} MiB before the warm-up")


def middle(rows: list[dict], kind: str) -> float | None:
    values = sorted(r[kind]["p99_ms"] for r in rows if kind in r and r[kind]["p99_ms"])
    return values[len(values) // 2] if values else None


def memory_growth(memory: list[dict], minutes: float) -> dict[str, dict]:
    """Per worker, the peak RSS of the first measured minute against that of the last. A
    worker's RSS moves by one argon2id buffer (19 MiB) as glibc keeps or returns it between
    hashes, so single samples are compared like with like: peak with peak."""
    end = minutes * 60
    growth = {}
    for pid in memory[-1]["rss_kib"] if memory else []:
        def peak(lo, hi):
            values = [m["rss_kib"].get(pid) for m in memory if lo <= m["at_s"] <= hi]
            values = [v for v in values if v]
            return max(values) if values else None

        first, last = peak(0, 60), peak(end - 60, end)
        every = [m["rss_kib"].get(pid) for m in memory if m["rss_kib"].get(pid)]
        if first and last:
            growth[pid] = {"first_minute_mib": round(first / 1024, 1),
                           "last_minute_mib": round(last / 1024, 1),
                           "growth": (last - first) / first,
                           "low_mib": round(min(every) / 1024, 1),
                           "high_mib": round(max(every) / 1024, 1),
                           "cold_mib": round(every[0] / 1024, 1)}
    return growth

if __name__ == "__main__":
    sys.exit(main())
