"""The shared fast state: a real Redis at ``IDP_REDIS_URL``, or an in-process fakeredis.

Everything kept here expires (login transactions, SSO sessions, single-use markers), so
every write sets a TTL. The embedded store is one process only: ``Settings.warnings()``
says so when it would be used behind several workers.

``IDP_REDIS_URL`` names one server (``redis://``, ``rediss://``, ``unix://``) or the primary
that Redis Sentinel watches::

    redis+sentinel://[user:password@]host[:port][,host[:port]...]/service[/db]
        [?sentinel_password=...&sentinel_username=...]

With Sentinel every connection asks the sentinels for the current primary, so after a
failover the workers write to the promoted replica without a restart; the password is the
data nodes', ``sentinel_password`` the sentinels' own if they have one.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import fakeredis
import redis
from flask import Flask, current_app
from redis.sentinel import Sentinel

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme: TLS
SENTINEL_PORT = 26379
TIMEOUT = 5  # seconds for a command on a data node
SENTINEL_TIMEOUT = 1  # seconds for a sentinel to say where the primary is


class BadRedisURL(ValueError):
    pass


def connect(url: str | None) -> redis.Redis:
    if not url:
        return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    if url.partition("://")[0] in SENTINEL_SCHEMES:
        return _sentinel(url)
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=TIMEOUT)


def _sentinel(url: str) -> redis.Redis:
    parts = urlsplit(url)
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    sentinels = []
    for item in hostlist.split(","):
        try:
            one = urlsplit("//" + item.strip())
            sentinels.append((one.hostname, one.port or SENTINEL_PORT))
        except ValueError:
            one = None
        if one is None or not one.hostname:
            raise BadRedisURL(f"IDP_REDIS_URL: {item!r} is not a sentinel host[:port]")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise BadRedisURL("IDP_REDIS_URL: a sentinel URL ends in /service or /service/db, "
                          "e.g. redis+sentinel://sentinel-1,sentinel-2/idp/0")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    tls = {"ssl": True} if SENTINEL_SCHEMES[parts.scheme] else {}
    watchers = Sentinel(
        sentinels, socket_timeout=SENTINEL_TIMEOUT,
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT,
                         "username": query.get("sentinel_username"),
                         "password": query.get("sentinel_password"), **tls})
    return watchers.master_for(
        path[0], db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(user) or None, password=unquote(password) or None,
        decode_responses=True, socket_timeout=TIMEOUT, **tls)


def get() -> redis.Redis:
    return current_app.extensions["idp.store"]


def init_app(app: Flask) -> None:
    app.extensions["idp.store"] = connect(app.config["IDP"].redis_url)
