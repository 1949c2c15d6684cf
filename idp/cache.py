"""In-process caches of what almost every request reads and rarely changes: tenants,
clients, tenant policies and the upstreams a login page offers. Each worker keeps frozen snapshots (never ORM objects), so the token endpoint does no
database work for them (DESIGN.md's performance budget).

Cross-worker invalidation by generation: a commit that touched a cached table increments the
Redis counter ``GENERATION`` after the commit; every worker reads that counter once per
request and trusts an entry only if it was loaded under the same generation. A reader notes
the generation *before* it reads the database, so an entry loaded while a change commits is
stale at once, never kept. The check costs one Redis GET per request (not per lookup); when
Redis cannot answer, the cache is bypassed (read from the database), never trusted blindly.

The CLI increments the same counter (it has ``IDP_REDIS_URL`` too). Without Redis (the
embedded store of ``idp demo``) nothing is cached: the CLI and tests change the database from
other processes that could not reach the server's in-process store, and speed is not the
point of the demo. ``TTL`` is a backstop: entries are re-read after that many seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from flask import current_app, g
from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session

GENERATION = "idp:config-generation"
TTL = 60.0
MAX_ENTRIES = 10_000  # per cache; a full cache is emptied (entries are cheap to re-read)

K = TypeVar("K")
V = TypeVar("V")


def _cached_tables() -> set[str]:
    from idp.models import Client, Tenant, TenantPolicyRow, Upstream

    return {Tenant.__tablename__, Client.__tablename__, TenantPolicyRow.__tablename__,
            Upstream.__tablename__}


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


def bump(store) -> None:
    """Make every worker's cached entries stale (after the change committed)."""
    if store is None:
        return
    try:
        store.incr(GENERATION)
    except RedisError:
        # Readers cannot check the generation either while Redis is away: they bypass the
        # cache until it is back, and the backstop TTL covers the rest.
        pass


def generation() -> str | None:
    """This request's view of the generation; None (bypass) without a shared Redis or when
    Redis cannot tell."""
    if "cache_generation" not in g:
        if not current_app.config["IDP"].redis_url:
            g.cache_generation = None
            return None
        try:
            g.cache_generation = current_app.extensions["idp.store"].get(GENERATION) or "0"
        except RedisError:
            g.cache_generation = None
    return g.cache_generation


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
