"""The database: one SQLAlchemy engine and session factory per app, and migrations.

Transactions belong to the caller: a request commits in ``teardown`` when it succeeded,
a CLI command commits when it is done. Helpers only add and flush.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app, g
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from idp.config import ROOT


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


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


def session() -> Session:
    """The request's session, opened on first use."""
    if "db" not in g:
        g.db = current_app.extensions["idp.sessionmaker"]()
    return g.db


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["IDP"].database_url)
    app.extensions["idp.engine"] = engine
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
