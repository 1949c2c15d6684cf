"""The connection pool: a connection that sat idle is checked before a request uses it; a busy
one is not (a round trip per request saved), and if it died anyway the pool heals at once."""

from __future__ import annotations

import pytest
from sqlalchemy import exc

from idp.db import make_engine


def _pooled_connection_dies(engine) -> None:
    """Pool one connection, then cut it underneath the pool (as a database restart or a
    proxy's idle timeout would)."""
    with engine.connect() as connection:
        raw = connection.connection.dbapi_connection
    raw.close()


def _select_one(engine) -> int:
    with engine.connect() as connection:
        return connection.exec_driver_sql("SELECT 1").scalar()


def test_an_idle_connection_that_died_is_replaced_before_use(backend):
    engine = make_engine(backend[0], ping_after=0)
    try:
        _pooled_connection_dies(engine)
        assert _select_one(engine) == 1  # the check found it dead; a new one answered
    finally:
        engine.dispose()


def test_a_connection_used_a_moment_ago_is_not_checked_and_the_pool_heals(backend):
    engine = make_engine(backend[0], ping_after=3600)
    try:
        _pooled_connection_dies(engine)
        # Not idle long enough to be checked: the statement meets the dead connection...
        with pytest.raises(exc.DBAPIError) as failed:
            _select_one(engine)
        assert failed.value.connection_invalidated
        # ...which the pool dropped: the next checkout is a working connection.
        assert _select_one(engine) == 1
    finally:
        engine.dispose()
