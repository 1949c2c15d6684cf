"""Where a sign-in's CPU goes, request by request, against what its parts cost at the least.

    .venv/bin/python benchmarks/signin_cost.py [--duration 10] [--json cost.json]

``run.py`` measures sign-ins/s as a fraction of the argon2id ceiling. This says why the
fraction is what it is. Same setup as run.py (a scratch PostgreSQL database, Redis, granian
with one worker pinned to ``--server-cpu``, ``signin_load.py`` on ``--client-cpu``), but the
server runs ``benchmarks/measured_wsgi.py``: per route, the request thread's CPU, SQL
statements, commits and Redis round trips. One flow at a time (``--concurrency 1``), so no
request waits for another.

Then, on the same core, in this process, the floors of those parts: a bare Flask request
(one route returning a string, called as WSGI), one ORM read and one Core read in an open
transaction on PostgreSQL, one Redis round trip, an RS256 and an ES256 signature, an
argon2id verify. It prints:

- the table per route: requests per flow, CPU ms, wall ms, statements, commits, Redis;
- the flow's CPU besides the hash, and the budget the issue's target leaves it: at 0.8 of the
  argon2id ceiling, a quarter of one verify;
- the floor of the flow's own composition: its requests at the bare-Flask cost, its
  statements at the ORM (or Core) read cost, its Redis round trips and two signatures. Nothing
  the flow does (templates, CSRF, Authlib's validation, the policy, TOTP) is in the floor.

Exit status 0 (a measurement), 2 when it cannot be made.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (benchmarks/run.py: the setup, the server, the generator)

BUDGET_FRACTION = 0.8  # the target: sign-ins >= 0.8 of the argon2id ceiling


def per_call_ms(fn, n: int) -> float:
    """CPU ms of one call of ``fn`` (after 50 warm-up calls), this thread only."""
    for _ in range(50):
        fn()
    t0 = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - t0) / n * 1000


def floors(database_url: str, redis_url: str, n: int) -> dict[str, float]:
    """CPU ms of the flow's building blocks, measured in this process (pin it first)."""
    import redis
    import sqlalchemy as sa
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from flask import Flask
    from sqlalchemy.orm import Session
    from werkzeug.test import EnvironBuilder

    from idp import db as idp_db
    from idp.models import User

    bare = Flask("bare")
    bare.add_url_rule("/", "index", lambda: "ok")
    environ = EnvironBuilder(path="/", base_url="http://127.0.0.1/").get_environ()

    def flask_request():
        for _ in bare(dict(environ), lambda status, headers, exc_info=None: None):
            pass

    engine = idp_db.make_engine(database_url)
    out = {"bare Flask request": per_call_ms(flask_request, n)}
    try:
        with Session(engine) as session:
            uid = session.scalar(sa.select(User.id).limit(1))
            query = sa.select(User).where(User.id == uid)

            def orm_read():
                session.execute(query).scalar_one()
                session.expunge_all()

            out["ORM read (one row)"] = per_call_ms(orm_read, n)
        with engine.connect() as conn:
            core = sa.select(User.__table__).where(User.__table__.c.id == uid)
            out["Core read (one row)"] = per_call_ms(lambda: conn.execute(core).first(), n)
    finally:
        engine.dispose()
    store = redis.Redis.from_url(redis_url)
    out["Redis round trip (GET)"] = per_call_ms(lambda: store.get("signin-cost"), n)
    store.close()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    data = secrets.token_bytes(300)
    out["RS256 signature"] = per_call_ms(
        lambda: rsa_key.sign(data, padding.PKCS1v15(), hashes.SHA256()), max(50, n // 10))
    out["ES256 signature"] = per_call_ms(lambda: ec_key.sign(data, ec.ECDSA(hashes.SHA256())), n)
    return out


def read_meter(path: Path, wait: float = 3.0) -> dict:
    deadline = time.monotonic() + wait
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return json.loads(path.read_text())


def report(meter: dict, flows: int, hash_ms: float, base: dict[str, float]) -> dict:
    rows = []
    total = {"requests": 0.0, "cpu_ms": 0.0, "wall_ms": 0.0, "sql": 0.0, "commits": 0.0,
             "redis": 0.0}
    for route, m in meter.items():
        if m["n"] < flows / 2:  # discovery at start-up, the sanity checks: not the flow
            continue
        per_flow = m["n"] / flows
        row = {"route": route, "per_flow": round(per_flow, 2),
               "cpu_ms": round(m["cpu_s"] / m["n"] * 1000, 2),
               "wall_ms": round(m["wall_s"] / m["n"] * 1000, 2),
               "sql": round(m["sql"] / m["n"], 2), "commits": round(m["commits"] / m["n"], 2),
               "redis": round(m["redis"] / m["n"], 2),
               # with --trace: what it sent, per request (``measured_wsgi``)
               "sent": {k: round(v / m["n"], 2) for k, v in sorted(m.items())
                        if k.startswith(("redis:", "sql:"))}}
        rows.append(row)
        total["requests"] += per_flow
        for k in ("cpu_ms", "wall_ms", "sql", "commits", "redis"):
            total[k] += row[k] * per_flow
    order = ["GET /t/<tenant>/authorize", "GET /t/<tenant>/login", "POST /t/<tenant>/login",
             "GET /t/<tenant>/login/verify", "POST /t/<tenant>/login/verify",
             "POST /t/<tenant>/token"]
    rows.sort(key=lambda r: order.index(r["route"]) if r["route"] in order else len(order))
    budget = hash_ms * (1 - BUDGET_FRACTION) / BUDGET_FRACTION
    signatures = base["RS256 signature"] + base["ES256 signature"]
    floor_orm = (total["requests"] * base["bare Flask request"]
                 + total["sql"] * base["ORM read (one row)"]
                 + total["redis"] * base["Redis round trip (GET)"] + signatures)
    floor_core = (total["requests"] * base["bare Flask request"]
                  + total["sql"] * base["Core read (one row)"]
                  + total["redis"] * base["Redis round trip (GET)"] + signatures)
    return {"rows": rows, "flow": {k: round(v, 2) for k, v in total.items()},
            "hash_cpu_ms": round(hash_ms, 2), "budget_ms": round(budget, 2),
            "floor_orm_ms": round(floor_orm, 2), "floor_core_ms": round(floor_core, 2),
            "floors": {k: round(v, 3) for k, v in base.items()},
            "fraction_now": round(hash_ms / (hash_ms + total["cpu_ms"]), 3),
            "fraction_at_orm_floor": round(hash_ms / (hash_ms + floor_orm), 3),
            "fraction_at_core_floor": round(hash_ms / (hash_ms + floor_core), 3)}


def print_report(r: dict, flows: int) -> None:
    head = ["route", "per flow", "CPU ms", "wall ms", "SQL", "commits", "Redis"]
    body = [[x["route"], f"{x['per_flow']:g}", f"{x['cpu_ms']:.2f}", f"{x['wall_ms']:.2f}",
             f"{x['sql']:g}", f"{x['commits']:g}", f"{x['redis']:g}"] for x in r["rows"]]
    f = r["flow"]
    body.append(["a whole flow", f"{f['requests']:g}", f"{f['cpu_ms']:.2f}",
                 f"{f['wall_ms']:.2f}", f"{f['sql']:g}", f"{f['commits']:g}", f"{f['redis']:g}"])
    print(f"\n{flows} flows, one at a time; per request (the argon2id verify runs in the hash "
          "pool's thread and is not in these):")
    run.print_table(head, body)
    for x in r["rows"]:
        if x["sent"]:
            print(f"\n{x['route']} sends, per request:")
            for what, n in x["sent"].items():
                print(f"  {n:5g}  {what}")
    print("\nfloors on the server's core, CPU ms per call:")
    for k, v in r["floors"].items():
        print(f"  {k:26s} {v:.3f}")
    print(f"  {'argon2id verify':26s} {r['hash_cpu_ms']:.2f}")
    print(f"\nthe flow besides the hash: {f['cpu_ms']:.1f} ms of CPU -> "
          f"{r['fraction_now']:.2f} of the argon2id ceiling")
    print(f"budget at {BUDGET_FRACTION} of the ceiling: a quarter of one verify = "
          f"{r['budget_ms']:.1f} ms")
    print(f"floor of this flow's composition ({f['requests']:g} requests, {f['sql']:g} "
          f"statements, {f['redis']:g} Redis round trips, RS256 + ES256), doing nothing else:")
    print(f"  with ORM reads  {r['floor_orm_ms']:.1f} ms -> at most "
          f"{r['fraction_at_orm_floor']:.2f} of the ceiling")
    print(f"  with Core reads {r['floor_core_ms']:.1f} ms -> at most "
          f"{r['fraction_at_core_floor']:.2f} of the ceiling")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--accounts", type=int, default=600,
                        help="accounts with TOTP (each signs in once per 30-s step)")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--samples", type=int, default=2000, help="calls per floor")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--trace", action="store_true",
                        help="also list each request's Redis commands and SQL statements")
    parser.add_argument("--profile", type=Path,
                        help="run the requests under cProfile, its statistics to this file "
                             "(the CPU figures then include the profiler's own cost)")
    opts = parser.parse_args(argv)
    run.defaults_only()
    args = run.parse_args([
        "--duration", str(opts.duration), "--only", "signin,hash", "--stacks", "granian",
        "--no-peer", "--database-url", opts.database_url, "--redis-url", opts.redis_url,
        "--signin-accounts", str(opts.accounts), "--server-cpu", str(opts.server_cpu),
        "--client-cpu", str(opts.client_cpu)])
    problem = run.stack_available("granian")
    if problem:
        print(problem)
        return 2
    run.fresh_store(args.redis_url)
    with tempfile.TemporaryDirectory(prefix="idp-cost-") as tmp:
        scratch = Path(tmp)
        meter_file = scratch / "meter.json"
        ours = run.setup_ours(args, scratch, ["signin"])
        pythonpath = os.pathsep.join([str(HERE), str(run.ROOT)]
                                     + ([os.environ["PYTHONPATH"]]
                                        if os.environ.get("PYTHONPATH") else []))
        proc, base, log_path = run.start_ours(
            args, ours, "granian", scratch, app="measured_wsgi:app",
            env={"BENCH_METER_FILE": str(meter_file), "PYTHONPATH": pythonpath,
                 "BENCH_TRACE": "1" if opts.trace else "0",
                 **({"BENCH_PROFILE": str(opts.profile.resolve())} if opts.profile else {})})
        issuer = f"{base}/t/{run.TENANT}"
        # Warm up (first requests compile templates, fill caches), then start the meter afresh.
        run.run_signin(argparse.Namespace(**{**vars(args), "duration": 2}), issuer,
                       ours.accounts_file, concurrency=1, server_pid=proc.pid)
        time.sleep(1.5)
        before = read_meter(meter_file)
        result = run.run_signin(args, issuer, ours.accounts_file, concurrency=1,
                                server_pid=proc.pid)
        time.sleep(1.5)  # the meter writes every second
        after = read_meter(meter_file)
        run.stop_group(proc)
        if result.errors:
            print(f"{result.errors} flows failed: {result.detail.get('error_samples')}")
            return 2
        meter = {}
        for route, m in after.items():
            b = before.get(route, {})
            meter[route] = {k: v - b.get(k, 0) for k, v in m.items()}
        hash_ms = run.hash_baseline(args)["cpu_ms_per_verify"]
        os.sched_setaffinity(0, {args.server_cpu})
        base_costs = floors(ours.database_url, args.redis_url, opts.samples)
        out = report(meter, result.requests, hash_ms, base_costs)
        out["flows_per_s_one_at_a_time"] = result.rate
        out["server_cpu_ms_per_flow"] = result.detail.get("server_cpu_ms_per_request")
        print_report(out, result.requests)
        print(f"(the whole server process, hash included: "
              f"{out['server_cpu_ms_per_flow']} ms of CPU per flow)")
        if opts.json:
            opts.json.write_text(json.dumps(out, indent=2))
            print(f"wrote {opts.json}")
    run.CLEANUP.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
