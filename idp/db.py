"""The database: one SQLAlchemy engine and session factory per app, and migrations.

Transactions belong to the caller: a request commits in ``teardown`` when it succeeded,
a CLI command commits when it is done. Helpers only add and flush.
"""

from __future__ import annotations

import time

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from idp.config import ROOT, sqlite_path
from idp.files import private_file


def make_engine(url: str, *, ping_after: float | None = None) -> Engine:
    """The engine for ``url``; a pooled connection idle for ``ping_after`` seconds or more
    (default ``IDLE_PING_SECONDS``) is checked before use (``ping_when_idle``)."""
    ping_after = IDLE_PING_SECONDS if ping_after is None else ping_after
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            # SQLite gives its -wal, -shm and -journal files the database file's mode, so
            # creating this one 0600 keeps all of them private.
            private_file(path)
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        ping_when_idle(engine, ping_after)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # A server that does not answer fails a request within seconds, not a TCP timeout. Errors
    # never carry a statement's parameters (hashes, emails) into the logs.
    engine = create_engine(url, pool_size=10, max_overflow=10, hide_parameters=True,
                           connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    ping_when_idle(engine, ping_after)
    return engine


IDLE_PING_SECONDS = 2.0
CONNECT_TIMEOUT_SECONDS = 5


def ping_when_idle(engine: Engine, idle: float) -> None:
    """Check a pooled connection before use when it sat unused for ``idle`` seconds or more.

    ``pool_pre_ping`` pings at every checkout: a round trip per request, ~0.15 ms of CPU, a
    tenth of a refresh grant. A connection used a moment ago is as alive as a ping would
    show; one that idled may have been cut (a database restart, a proxy's idle timeout), and
    the ping finds that before a request does. A connection that dies while busy still fails
    its statement: SQLAlchemy then drops it and every connection older than it, so the pool
    heals on the next checkout either way.
    """

    @event.listens_for(engine, "checkin")
    def _note_idle(_dbapi_connection, record):
        record.info["idp.idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection, record, _proxy):
        since = record.info.pop("idp.idle_since", None)
        if since is not None and time.monotonic() - since < idle:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if not engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise exc.DisconnectionError()  # the pool opens a new connection and tries again


def for_dialect(dialect: str):
    """Alembic's ``include_object`` for ``dialect``: leaves out what the models create on
    another dialect only (``Index(...).ddl_if(dialect=...)``), which autogenerate ignores."""

    def include(obj, name, type_, reflected, compare_to) -> bool:
        wanted = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
        return wanted is None or wanted == dialect

    return include


def alembic_config(url: str) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
    analyze(url)


def analyze(url: str) -> None:
    """Give PostgreSQL's planner statistics now (autovacuum keeps them current later). A table
    never analyzed looks tiny to the planner, whatever it holds: it may then find a token by
    ``tenant_id`` (every row of the tenant) as cheap as by its unique hash, and keep that plan.
    """
    if not url.startswith("postgresql"):
        return
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def session() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = current_app.extensions["idp.sessionmaker"]()
    return g.db


def discard() -> None:
    """Drop the request's session without committing: its connection failed, so nothing it
    holds can be written, and the response must not try (the pool opens a new one next)."""
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["IDP"].database_url)
    app.extensions["idp.engine"] = engine
    # Single statements that must not wait for a transaction of their own (PostgreSQL only:
    # SQLite has no data-modifying WITH, so its callers keep to the request's transaction).
    app.extensions["idp.autocommit"] = (engine.execution_options(isolation_level="AUTOCOMMIT")
                                        if engine.dialect.name == "postgresql" else None)
    from idp import cache  # noqa: F401  (its session events bump the generation on commit)

    app.extensions["idp.sessionmaker"] = sessionmaker(
        engine, expire_on_commit=False, info={"idp.store": app.extensions["idp.store"]})

    @app.after_request
    def _commit(response):
        # Before the response leaves: a failed commit becomes an error, never a false success.
        # Error responses commit too: a replayed code's revocation must persist with its 400.
        db = g.get("db")
        if db is not None:
            db.commit()
        return response

    @app.teardown_appcontext
    def _close(exc):
        db = g.pop("db", None)
        if db is not None:
            db.rollback()  # a no-op after a commit; undoes a failed request's writes
            db.close()
