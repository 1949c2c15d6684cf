"""What anonymous sign-in requests leave in Redis: 10,000 of them against a real server.

    .venv/bin/python benchmarks/anonymous_requests.py \\
        [--database-url postgresql://postgres@127.0.0.1:5432/test] [--redis-url URL] \\
        [--requests 10000] [--concurrency 4] [--stack granian] [--deadline 600]

Anyone may open a portal's sign-in link, so each anonymous ``GET /authorize`` must cost the
server nothing it keeps (issue 15). This creates a fresh database ``idp_bench_<random>``
beside ``--database-url`` with one tenant and one portal, starts the server (``--stack``, one
worker, on 127.0.0.1) on a Redis of its own (a private ``redis-server`` on a free port, unless
``--redis-url`` names one: its database is flushed before and after), and sends
``--requests`` authorization requests of the portal, each without cookies, as a flood would,
from ``--concurrency`` threads, never following the redirect. It prints Redis's
``used_memory`` and key count before and after, what was added per request, and the length of
the login URL each request was sent to. Exit status 0 whatever the figures, 2 when the run
itself could not be made. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import redis  # noqa: E402
import requests  # noqa: E402

from run import (  # noqa: E402
    CLEANUP, free_port, log, stack_available, stack_command, stop_group, wait_until_answering,
)

TENANT = "bench"
REDIRECT_URI = "https://portal.bench/cb"


def seed(database_url: str) -> tuple[str, Path, str]:
    """(database URL, keys folder, client_id): a migrated scratch database with one tenant
    and one public portal, and a keys folder (the tenant's keyring is made on first use);
    both are removed at the end."""
    from sqlalchemy.orm import Session

    from idp import db as idp_db, directory
    from tests.support.databases import scratch_database

    url, drop = scratch_database(database_url, "idp_bench")
    CLEANUP.add(f"drop the scratch database {url.rsplit('/', 1)[-1]}", drop)
    idp_db.upgrade(url)
    folder = tempfile.TemporaryDirectory()
    CLEANUP.add("remove the keys folder", folder.cleanup)
    engine = idp_db.make_engine(url)
    try:
        with Session(engine) as s:
            tenant = directory.create_tenant(s, TENANT, "Benchmark")
            portal = directory.create_client(s, tenant, "Portal", [REDIRECT_URI], public=True)
            s.commit()
            client_id = portal.client.client_id
    finally:
        engine.dispose()
    return url, Path(folder.name), client_id


def redis_for(args) -> str:
    if args.redis_url:
        return args.redis_url
    from tests.support.redis_server import PrivateRedis

    private = PrivateRedis()
    private.start()
    CLEANUP.add(f"stop the private redis-server (port {private.port})", private.stop)
    return private.url


def figures(store: redis.Redis) -> dict:
    memory = store.info("memory")
    return {"used_memory": memory["used_memory"], "keys": store.dbsize()}


def flood(base: str, client_id: str, n: int, concurrency: int, deadline: float) -> dict:
    """``n`` authorization requests without cookies; the status counts and login URL lengths."""
    statuses: dict[int, int] = {}
    lengths: list[int] = []
    lock = threading.Lock()
    local = threading.local()
    url = f"{base}/t/{TENANT}/authorize"

    def one(i: int) -> None:
        if time.monotonic() > deadline:
            return
        if not hasattr(local, "http"):
            local.http = requests.Session()
        local.http.cookies.clear()  # anonymous: whatever the last answer set is forgotten
        r = local.http.get(url, allow_redirects=False, timeout=30, params={
            "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT_URI,
            "scope": "openid profile email", "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16), "code_challenge": secrets.token_urlsafe(32),
            "code_challenge_method": "S256"})
        with lock:
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 302 and "/login" in urlsplit(r.headers["Location"]).path:
                lengths.append(len(r.headers["Location"]))

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    return {"statuses": statuses, "lengths": lengths}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server (a fresh database is created beside it)")
    parser.add_argument("--redis-url", default=None,
                        help="a Redis database to use and flush (default: a private "
                             "redis-server on a free port)")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--stack", default="granian",
                        choices=["granian", "gunicorn-sync", "gunicorn-gthread"])
    parser.add_argument("--threads", type=int, default=8, help="the server's threads")
    parser.add_argument("--deadline", type=float, default=600,
                        help="seconds after which no more requests are sent")
    args = parser.parse_args(argv)
    problem = stack_available(args.stack)
    if problem:
        log(problem)
        return 2
    try:
        redis_url = redis_for(args)
        store = redis.Redis.from_url(redis_url)
        store.flushdb()
        CLEANUP.add(f"FLUSHDB {redis_url}", store.flushdb)
        database_url, keys_dir, client_id = seed(args.database_url)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        scratch = Path(tempfile.mkdtemp(prefix="idp-anon-"))
        log_path = scratch / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        env.update({"IDP_BASE_URL": base, "IDP_DATABASE_URL": database_url,
                    "IDP_REDIS_URL": redis_url, "IDP_KEYS_DIR": str(keys_dir),
                    "IDP_SECRET_KEY": secrets.token_urlsafe(48),
                    # This tree's idp, whatever the virtualenv has installed (to measure
                    # another checkout, e.g. main's, with this script copied into it).
                    "PYTHONPATH": str(ROOT)})
        with log_path.open("wb") as out:
            proc = subprocess.Popen(stack_command(args, args.stack, port), cwd=ROOT, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        CLEANUP.add(f"stop {args.stack} (pid {proc.pid})", lambda: stop_group(proc))
        wait_until_answering(proc, f"{base}/t/{TENANT}/.well-known/openid-configuration",
                             args.stack, log_path)
    except Exception as e:  # noqa: BLE001  (the run could not be made: say why)
        log(f"setup failed: {type(e).__name__}: {e}")
        CLEANUP.run()
        return 2
    try:
        flood(base, client_id, 20, 1, time.monotonic() + 60)  # warm-up: caches, templates
        store.flushdb()  # what the warm-up left is not the flood's
        before = figures(store)
        started = time.monotonic()
        result = flood(base, client_id, args.requests, args.concurrency, started + args.deadline)
        seconds = time.monotonic() - started
        after = figures(store)
        sent = sum(result["statuses"].values())
        lengths = sorted(result["lengths"]) or [0]
        sample = store.randomkey()
        ttl = store.ttl(sample) if sample else None
        log(f"code at {ROOT}, {args.stack}, Redis {store.info('server')['redis_version']}")
        log(f"{sent:,} anonymous authorization requests in {seconds:.1f} s "
            f"({sent / seconds:.0f}/s), answers {result['statuses']}")
        log(f"login URL length: median {lengths[len(lengths) // 2]}, max {lengths[-1]} characters")
        log(f"Redis keys:        {before['keys']:>12,} -> {after['keys']:>12,}")
        log(f"Redis used_memory: {before['used_memory']:>12,} -> {after['used_memory']:>12,} bytes "
            f"(+{(after['used_memory'] - before['used_memory']) / 2**20:.2f} MiB, "
            f"{(after['used_memory'] - before['used_memory']) / max(sent, 1):.0f} bytes a request)")
        if sample:
            log(f"a stored key: {sample.decode()[:32]}…, {store.memory_usage(sample)} bytes, "
                f"expires in {ttl} s")
    finally:
        CLEANUP.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
