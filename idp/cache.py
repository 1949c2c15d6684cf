"""In-process caches of what almost every request reads and rarely changes: tenants (with
their branding),
clients, tenant policies, the upstreams a login page offers and the webhook endpoints every
audit event looks for. Each worker keeps frozen
snapshots (never ORM objects), so the token endpoint does no database work for them
(DESIGN.md's performance budget).

Cross-worker invalidation by generation: a commit that touched a cached table increments the
Redis counter ``GENERATION`` after the commit and publishes the new value on ``CHANNEL``. An
entry is trusted only if it was loaded under the current generation. Page requests read the
counter (one GET per request), so they see a change committed anywhere before them at once.
The token endpoint, JWKS and discovery (``follow``) take the worker's own copy of the counter,
kept current by a subscriber thread (``Watcher``), without a round trip: a change reaches them
as fast as Redis delivers the message (well under a millisecond on a LAN). A reader notes the
generation *before* it reads the database, so an entry loaded while a change commits is stale
at once, never kept.

While the subscription is not up (starting, or its connection lost and not yet back), each
request reads the counter with a GET instead; when Redis cannot answer that either, the cache
is bypassed (read from the database), never trusted blindly. A subscription that stops
answering its pings is dropped and made again.

The CLI increments the same counter (it has ``IDP_REDIS_URL`` too). Without Redis (the
embedded store of ``idp demo``) nothing is cached: the CLI and tests change the database from
other processes that could not reach the server's in-process store, and speed is not the
point of the demo. ``TTL`` is a backstop: entries are re-read after that many seconds.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import current_app, g
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

from idp import store

GENERATION = "idp:config-generation"
CHANNEL = "idp:config-generation:db{db}"  # pub/sub is server-wide: one channel per database
HEARTBEAT = 1.0  # seconds between the subscriber's pings
SILENCE = 3.0  # a subscription that heard nothing (not even a pong) this long is dropped
RETRY = 1.0  # seconds before subscribing again
TTL = 60.0
MAX_ENTRIES = 10_000  # per cache; a full cache is emptied (entries are cheap to re-read)

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")


def _cached_tables() -> set[str]:
    from idp.models import (Client, Tenant, TenantBranding, TenantPolicyRow, TenantProtocol,
                            Upstream, WebhookEndpoint)

    return {Tenant.__tablename__, Client.__tablename__, TenantPolicyRow.__tablename__,
            Upstream.__tablename__, WebhookEndpoint.__tablename__, TenantBranding.__tablename__,
            TenantProtocol.__tablename__}


# -- writers: bump the generation after a commit that changed a cached table ------------------


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, flush_context) -> None:
    tables = _cached_tables()
    for obj in (*session.new, *session.dirty, *session.deleted):
        table = getattr(obj, "__tablename__", None)
        if table in tables:
            session.info["idp.cache_dirty"] = True
            return


@event.listens_for(Session, "do_orm_execute")
def _note_bulk(state) -> None:
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _cached_tables():
        state.session.info["idp.cache_dirty"] = True


@event.listens_for(Session, "after_commit")
def _bump_after_commit(session: Session) -> None:
    if session.info.pop("idp.cache_dirty", False):
        bump(session.info.get("idp.store"))


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("idp.cache_dirty", None)


# The channel is passed as a key so that it gets the installation's prefix (idp.store).
_BUMP = "local n = redis.call('INCR', KEYS[1]); redis.call('PUBLISH', KEYS[2], n); return n"


def bump(store) -> None:
    """Make every worker's cached entries stale (after the change committed)."""
    if store is None:
        return
    try:
        value = int(store.eval(_BUMP, 2, GENERATION, channel(store)))
    except RedisError:
        # Readers cannot check the generation either while Redis is away: they bypass the
        # cache until it is back, and the backstop TTL covers the rest.
        return
    watcher = WATCHERS.get(store)
    if watcher is not None:
        watcher.advance(value)  # this worker's next request must not wait for the message


def channel(store) -> str:
    """The channel of the store's database: installations that share a Redis server in
    different databases must not hear each other's bumps."""
    pool = getattr(store, "connection_pool", None)
    return CHANNEL.format(db=getattr(pool, "connection_kwargs", {}).get("db", 0))


def generation() -> str | None:
    """This request's view of the generation; None (bypass) without a shared Redis or when
    Redis cannot tell. A page request reads the counter (one GET), so it sees a change
    committed anywhere before it at once; ``follow`` is the token endpoint's way."""
    if "cache_generation" not in g:
        g.cache_generation = _read_counter()
    return g.cache_generation


def follow() -> None:
    """This request takes the worker's followed copy of the generation (no round trip); a
    change reaches it when the message does. For the token endpoint, JWKS and discovery
    (idp.oidc.direct), whose whole cost is a fraction of a millisecond."""
    if not current_app.config["IDP"].redis_url:
        g.cache_generation = None
        return
    store = current_app.extensions["idp.store"]
    watcher = WATCHERS.get(store)
    if watcher is None:
        watcher = WATCHERS.setdefault(store, Watcher(store))
    value = watcher.current()
    g.cache_generation = value if value is not None else _read_counter()


def read_with(keys: list[str]) -> None:
    """This request's generation read from Redis together with ``keys`` (what the request is
    about to read anyway: its SSO session, its login transaction), in one round trip: a page
    that goes to Redis anyway sees a change committed anywhere before it at once, for free.
    The values wait in ``store.read``. Without a shared Redis, or when it cannot answer, the
    request reads them itself and follows (``follow``)."""
    if not current_app.config["IDP"].redis_url:
        g.cache_generation = None
        return
    try:
        counter, *values = current_app.extensions["idp.store"].mget(GENERATION, *keys)
        g.cache_generation = str(int(counter or 0))
    except (RedisError, ValueError):
        follow()
        return
    store.prefetched(dict(zip(keys, values)))


def _read_counter() -> str | None:
    if not current_app.config["IDP"].redis_url:
        return None
    try:
        return str(int(current_app.extensions["idp.store"].get(GENERATION) or 0))
    except (RedisError, ValueError):
        return None


class Watcher:
    """This worker's copy of ``GENERATION``, kept current by a daemon thread subscribed to
    ``CHANNEL``. ``current()`` is None while the subscription is not up. The thread starts on
    first use in each process (so after a fork) and ends when the store is gone."""

    def __init__(self, store):
        self._store = weakref.ref(store)
        self._lock = threading.Lock()
        self._value: int | None = None
        self._pid: int | None = None

    def current(self) -> str | None:
        if self._pid != os.getpid():
            self._start()
        value = self._value
        return None if value is None else str(value)

    def advance(self, value: int) -> None:
        """Move forward only: publishers race, and going back to an older generation would
        revive entries loaded before a later change."""
        with self._lock:
            if self._value is not None and value > self._value:
                self._value = value

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid, self._value = os.getpid(), None
        threading.Thread(target=self._run, name="idp-cache-generation", daemon=True).start()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid:
            store = self._store()
            if store is None:
                return
            pubsub = None
            try:
                pubsub, name = store.pubsub(), channel(store)
                del store  # held weakly: the thread must not keep a dropped app's store alive
                self._follow(pubsub, name)
            except (RedisError, OSError, ValueError) as error:
                log.info("cache invalidation subscription lost (%s); subscribing again", error)
            finally:
                if pubsub is not None:
                    pubsub.close()
                with self._lock:
                    self._value = None
            time.sleep(RETRY)

    def _follow(self, pubsub, name: str) -> None:
        pubsub.subscribe(name)
        heard = pinged = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=HEARTBEAT)
            now = time.monotonic()
            store = self._store()
            if store is None or self._pid != os.getpid():
                return
            if message is not None:
                heard = now
                if message["type"] == "subscribe":
                    # Subscribed: no bump is missed from here on, so the counter read now is
                    # current and stays current.
                    value = int(store.get(GENERATION) or 0)
                    with self._lock:
                        self._value = value
                elif message["type"] == "message":
                    self.advance(int(message["data"]))
            del store
            if now - heard > SILENCE:
                raise RedisError("the subscription stopped answering its pings")
            if now - pinged >= HEARTBEAT:
                pubsub.ping()
                pinged = now


WATCHERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# -- readers ----------------------------------------------------------------------------------


@dataclass
class _Entry(Generic[V]):
    value: V
    generation: str
    expires: float


class Snapshots(Generic[K, V]):
    """A map from a key to a snapshot, checked against the generation; one per app and worker
    (apps on different databases in one process never share entries)."""

    def __init__(self, name: str):
        self.name = name

    @property
    def _entries(self) -> dict[K, _Entry[V]]:
        caches = current_app.extensions.setdefault("idp.cache", {})
        return caches.setdefault(self.name, {})

    def get(self, key: K, load: Callable[[], V | None]) -> V | None:
        """The snapshot for ``key``, loading it on a miss; misses (None) are never kept, so a
        client registered a moment ago is found at once and unknown ids cannot fill memory."""
        current = generation()
        if current is None:
            return load()
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and entry.generation == current and entry.expires > now:
            return entry.value
        value = load()
        if value is not None:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = _Entry(value, current, now + TTL)
        return value

    def clear(self) -> None:
        self._entries.clear()
