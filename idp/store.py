"""The shared fast state: a real Redis at ``IDP_REDIS_URL``, or an in-process fakeredis.

Everything kept here expires (login transactions, SSO sessions, single-use markers), so
every write sets a TTL. The embedded store is one process only: ``Settings.warnings()``
says so when it would be used behind several workers.
"""

from __future__ import annotations

import fakeredis
import redis
from flask import Flask, current_app


def connect(url: str | None) -> redis.Redis:
    if url:
        return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def get() -> redis.Redis:
    return current_app.extensions["idp.store"]


def init_app(app: Flask) -> None:
    app.extensions["idp.store"] = connect(app.config["IDP"].redis_url)
