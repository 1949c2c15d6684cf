"""``wsgi:app`` with a meter: the CPU, SQL statements and Redis round trips of each request.

    granian --interface wsgi ... measured_wsgi:app     (benchmarks/ on PYTHONPATH)

Used by ``benchmarks/signin_cost.py`` only, never in production. Per request route (method
and URL rule, so ``/t/<tenant>/login``), it adds up:

- the request thread's CPU (``time.thread_time``: what this request ran, not what other
  threads ran meanwhile; an argon2id verify runs in the hash pool's thread and is not in it);
- the wall time;
- SQL statements sent (SQLAlchemy's ``before_cursor_execute``) and commits;
- Redis round trips (one per command sent, one per pipeline), on request threads only (the
  cache-generation watcher's pings are not a request's).

Every second, and at exit, the totals go as JSON to ``$BENCH_METER_FILE``.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time

import redis.connection
from sqlalchemy import event
from sqlalchemy.engine import Engine

from wsgi import app as _app

_OUT = os.environ.get("BENCH_METER_FILE", "meter.json")
_lock = threading.Lock()
_totals: dict[str, dict[str, float]] = {}
_here = threading.local()


def _count(what: str) -> None:
    counts = getattr(_here, "counts", None)
    if counts is not None:
        counts[what] = counts.get(what, 0) + 1


@event.listens_for(Engine, "before_cursor_execute")
def _statement(*_args) -> None:
    _count("sql")


@event.listens_for(Engine, "commit")
def _commit(*_args) -> None:
    _count("commits")


_send = redis.connection.AbstractConnection.send_packed_command


def _send_counted(self, command, check_health=True):
    _count("redis")
    return _send(self, command, check_health)


redis.connection.AbstractConnection.send_packed_command = _send_counted


def _route(environ) -> str:
    adapter = _app.url_map.bind_to_environ(environ)
    try:
        rule, _ = adapter.match(return_rule=True)
        path = rule.rule
    except Exception:  # a 404 or a method not allowed: the raw path says enough
        path = environ.get("PATH_INFO", "")
    return f"{environ.get('REQUEST_METHOD', '?')} {path}"


def app(environ, start_response):
    _here.counts = {}
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        return list(_app(environ, start_response))
    finally:
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        counts, _here.counts = _here.counts, None
        key = _route(environ)
        with _lock:
            row = _totals.setdefault(key, {"n": 0, "cpu_s": 0.0, "wall_s": 0.0, "sql": 0,
                                           "commits": 0, "redis": 0})
            row["n"] += 1
            row["cpu_s"] += cpu
            row["wall_s"] += wall
            for k, v in counts.items():
                row[k] += v


def _dump() -> None:
    with _lock:
        text = json.dumps(_totals)
    tmp = _OUT + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, _OUT)


def _every_second() -> None:
    while True:
        time.sleep(1)
        _dump()


atexit.register(_dump)
threading.Thread(target=_every_second, name="bench-meter", daemon=True).start()
