"""Scratch PostgreSQL databases for the tests and the benchmarks: created empty, dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import make_url


def scratch_database(url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database ``<prefix>_<random>`` on the server at ``url``; returns its URL
    and the function that drops it (whoever is still connected)."""
    base = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()

    def drop() -> None:
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return base.set(database=name).render_as_string(hide_password=False), drop
