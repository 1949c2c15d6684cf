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

Every second, and at exit, the totals go as JSON to ``$BENCH_METER_FILE``. With
``BENCH_TRACE=1`` each route also lists what it sent, per request on average: Redis commands
by name and key family (``GET ltx``), SQL statements by their first words. With
``BENCH_PROFILE=<file>`` the requests run under cProfile (one at a time: signin_cost's flows
are), its statistics written to that file (``python -m pstats <file>``).
"""

from __future__ import annotations

import atexit
import cProfile
import json
import os
import re
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
_TRACE = os.environ.get("BENCH_TRACE") == "1"
_PROFILE_FILE = os.environ.get("BENCH_PROFILE")
# CPU time, not wall time: a request waiting for the database or Redis costs nothing here.
_profile = cProfile.Profile(time.thread_time) if _PROFILE_FILE else None


def _count(what: str, detail: str | None = None) -> None:
    counts = getattr(_here, "counts", None)
    if counts is not None:
        counts[what] = counts.get(what, 0) + 1
        if _TRACE and detail:
            counts[detail] = counts.get(detail, 0) + 1


def _sql_words(statement: str) -> str:
    words = re.sub(r"\s+", " ", statement).strip()
    if words.startswith("SELECT"):
        table = re.search(r" FROM (\w+)", words)
        return f"sql: SELECT … FROM {table.group(1) if table else '?'}"
    return "sql: " + " ".join(words.split(" ")[:3])


@event.listens_for(Engine, "before_cursor_execute")
def _statement(_conn, _cursor, statement, *_args) -> None:
    _count("sql", _sql_words(statement))


@event.listens_for(Engine, "commit")
def _commit(*_args) -> None:
    _count("commits")


_send = redis.connection.AbstractConnection.send_packed_command


def _commands(raw: bytes) -> list[list[bytes]]:
    """The commands in what a connection sends (RESP arrays of bulk strings)."""
    out, i = [], 0
    while i < len(raw) and raw[i:i + 1] == b"*":
        end = raw.index(b"\r\n", i)
        count, i, args = int(raw[i + 1:end]), end + 2, []
        for _ in range(count):
            end = raw.index(b"\r\n", i)
            size = int(raw[i + 1:end])
            args.append(raw[end + 2:end + 2 + size])
            i = end + 4 + size
        out.append(args)
    return out


def _redis_words(command) -> str:
    """``GET ltx`` for a GET of an ``ltx:…`` key (the installation's prefix dropped); a
    pipeline lists its commands."""
    raw = b"".join(command) if isinstance(command, (list, tuple)) else command
    words = []
    for args in _commands(raw):
        name = args[0].decode().upper()
        if name in ("MULTI", "EXEC"):
            continue
        key = args[1].decode(errors="replace") if len(args) > 1 else ""
        family = key.split(":")[1] if key.count(":") > 1 else key.split(":")[0]
        words.append(f"{name} {family}".strip() if name not in ("EVAL", "EVALSHA") else name)
    return "redis: " + (words[0] if len(words) == 1 else "[" + ", ".join(words) + "]")


def _send_counted(self, command, check_health=True):
    _count("redis", _redis_words(command) if _TRACE else None)
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
    if _profile is not None:
        _profile.enable()
    try:
        return list(_app(environ, start_response))
    finally:
        if _profile is not None:
            _profile.disable()
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
                row[k] = row.get(k, 0) + v


def _dump() -> None:
    with _lock:
        text = json.dumps(_totals)
        if _profile is not None:
            _profile.dump_stats(_PROFILE_FILE + ".tmp")
            os.replace(_PROFILE_FILE + ".tmp", _PROFILE_FILE)
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
