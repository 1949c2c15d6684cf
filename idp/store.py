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

Every key and channel name is prefixed with the installation's ``IDP_REDIS_PREFIX`` (by
default derived from the database, ``Settings.redis_namespace``) here, in the client, so the
rest of the package names keys as if it had Redis to itself: another installation on the same
Redis database reuses our database ids (tenant 1, user 1...) and would otherwise see our locks
and sessions as its own. ``KEYS`` says where each command's keys are; a command missing from
it is refused rather than sent unprefixed. Lua scripts must name every key and channel they
touch in ``KEYS``, never build one from ``ARGV``.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import fakeredis
import redis
from flask import Flask, current_app, g
from redis.client import Pipeline, PubSub
from redis.sentinel import Sentinel
from redis.utils import str_if_bytes

from idp.config import Settings

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}  # scheme: TLS
SENTINEL_PORT = 26379
TIMEOUT = 5  # seconds for a command on a data node
SENTINEL_TIMEOUT = 1  # seconds for a sentinel to say where the primary is


class BadRedisURL(ValueError):
    pass


# Where a command's keys (or channels) are: FIRST the argument after the name, ALL every
# argument, PAIRS every other one (key value key value), SCRIPT the ``numkeys`` after the
# script, MATCH a SCAN's pattern; NONE has no key.
NONE, FIRST, ALL, PAIRS, SCRIPT, MATCH = range(6)
KEYS = {
    **dict.fromkeys((
        "GET", "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "GETDEL", "GETEX", "APPEND",
        "STRLEN", "INCR", "INCRBY", "INCRBYFLOAT", "DECR", "DECRBY", "EXPIRE", "PEXPIRE",
        "EXPIREAT", "PEXPIREAT", "PERSIST", "TTL", "PTTL", "TYPE", "MEMORY USAGE",
        "HGET", "HSET", "HSETNX", "HMSET", "HMGET", "HGETALL", "HDEL", "HEXISTS", "HINCRBY",
        "HKEYS", "HVALS", "HLEN", "SADD", "SREM", "SMEMBERS", "SISMEMBER", "SCARD",
        "LPUSH", "RPUSH", "LPOP", "RPOP", "LRANGE", "LLEN", "LTRIM", "LREM",
        "ZADD", "ZREM", "ZSCORE", "ZCARD", "ZINCRBY", "ZRANGE", "ZRANGEBYSCORE",
        "ZREMRANGEBYSCORE", "ZCOUNT", "PUBLISH"), FIRST),
    **dict.fromkeys(("DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "WATCH",
                     "SUBSCRIBE", "UNSUBSCRIBE"), ALL),
    **dict.fromkeys(("MSET", "MSETNX"), PAIRS),
    **dict.fromkeys(("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"), SCRIPT),
    # DBSIZE and INFO count the whole database, read only; FLUSHDB is refused: it would
    # empty every installation's keys.
    **dict.fromkeys(("PING", "ECHO", "INFO", "DBSIZE", "TIME", "UNWATCH", "MULTI", "EXEC",
                     "DISCARD", "SCRIPT LOAD", "SCRIPT EXISTS", "CLIENT ID", "CLIENT LIST",
                     "CLIENT KILL", "CLIENT SETNAME"), NONE),
    "SCAN": MATCH,
}


class UnprefixedCommand(TypeError):
    pass


def _on(prefix: str, key):
    if isinstance(key, bytes):
        return prefix.encode() + key
    return prefix + str(key)


def _prefixed(prefix: str, args: tuple) -> tuple:
    """``args`` (a command) with the prefix on each of its keys."""
    name = args[0]
    where = KEYS.get(name)
    if where is None and isinstance(name, str):
        where = KEYS.get(name.upper())
    if where == FIRST:
        return (name, _on(prefix, args[1]), *args[2:])
    if where == ALL:
        return (name, *[_on(prefix, key) for key in args[1:]])
    if where == SCRIPT:
        end = 3 + int(args[2])
        return (*args[:3], *[_on(prefix, key) for key in args[3:end]], *args[end:])
    if where == PAIRS:
        return (name, *[_on(prefix, a) if i % 2 == 0 else a for i, a in enumerate(args[1:])])
    if where == NONE:
        return args
    if where == MATCH:
        words = [str_if_bytes(a).upper() if isinstance(a, (str, bytes)) else a for a in args]
        if "MATCH" in words:
            at = words.index("MATCH") + 1
            return (*args[:at], _on(prefix, args[at]), *args[at + 1:])
        return (*args, "MATCH", prefix + "*")
    raise UnprefixedCommand(f"{name}: add it to idp.store.KEYS, so that its keys get the "
                            "installation's IDP_REDIS_PREFIX")


def _unprefixed(prefix: str, name):
    if isinstance(name, bytes):
        return name.removeprefix(prefix.encode())
    return name.removeprefix(prefix) if isinstance(name, str) else name


class Namespaced(redis.Redis):
    """A client whose keys and channels all start with ``prefix`` (":"-terminated, or ""),
    in its pipelines and subscriptions too. Callers name keys without it."""

    prefix = ""

    def execute_command(self, *args, **options):
        # Even without a prefix: a command missing from KEYS fails in every configuration.
        result = super().execute_command(*_prefixed(self.prefix, args), **options)
        if args[0] == "SCAN" and self.prefix:  # (cursor, keys): give back the names callers use
            return result[0], [_unprefixed(self.prefix, key) for key in result[1]]
        return result

    def pipeline(self, transaction=True, shard_hint=None) -> "NamespacedPipeline":
        pipe = NamespacedPipeline(self.connection_pool, self.response_callbacks, transaction,
                                  shard_hint)
        pipe.prefix = self.prefix
        return pipe

    def pubsub(self, **kwargs) -> "NamespacedPubSub":
        if hasattr(self, "_event_dispatcher"):  # redis-py releases that have one pass it on
            kwargs.setdefault("event_dispatcher", self._event_dispatcher)
        subscription = NamespacedPubSub(self.connection_pool, **kwargs)
        subscription.prefix = self.prefix
        return subscription


class NamespacedPipeline(Pipeline):
    prefix = ""

    def execute_command(self, *args, **kwargs):
        if args[0] == "SCAN":
            raise UnprefixedCommand("SCAN in a pipeline: its answer would keep the prefix")
        return super().execute_command(*_prefixed(self.prefix, args), **kwargs)


class NamespacedPubSub(PubSub):
    """Subscriptions to prefixed channels; messages name them without the prefix (as the
    subscriber does, so handlers and unsubscribes still match)."""

    prefix = ""

    def execute_command(self, *args):
        return super().execute_command(*_prefixed(self.prefix, args))

    def handle_message(self, response, ignore_subscribe_messages=False):
        if isinstance(response, list) and len(response) > 2 and str_if_bytes(response[0]) in (
                "message", "subscribe", "unsubscribe"):
            response = [response[0], _unprefixed(self.prefix, response[1]), *response[2:]]
        return super().handle_message(response, ignore_subscribe_messages)


class EmbeddedStore(Namespaced, fakeredis.FakeRedis):
    """The in-process store, namespaced like a real Redis so both behave the same."""


def connect(settings: Settings) -> Namespaced:
    """The installation's store: its Redis (or the embedded one), every key under its
    ``redis_namespace``."""
    url = settings.redis_url
    if not url:
        client = EmbeddedStore(server=fakeredis.FakeServer(), decode_responses=True)
    elif url.partition("://")[0] in SENTINEL_SCHEMES:
        client = _sentinel(url)
    else:
        client = Namespaced.from_url(url, decode_responses=True, socket_timeout=TIMEOUT)
    namespace = settings.redis_namespace
    client.prefix = f"{namespace}:" if namespace else ""
    return client


def _sentinel(url: str) -> Namespaced:
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
        path[0], redis_class=Namespaced, db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(user) or None, password=unquote(password) or None,
        decode_responses=True, socket_timeout=TIMEOUT, **tls)


def get() -> redis.Redis:
    return current_app.extensions["idp.store"]


def read(key: str) -> str | None:
    """GET ``key``, unless the request read it already with others (``prefetched``): each
    prefetched value is used once, so a read after the request's own write goes to Redis."""
    early = g.get("prefetched")
    if early is not None and key in early:
        return early.pop(key)
    return get().get(key)


def prefetched(values: dict[str, str | None]) -> None:
    """What the request read at its start, in the round trip that read the cache generation."""
    g.prefetched = values


def init_app(app: Flask) -> None:
    app.extensions["idp.store"] = connect(app.config["IDP"])
