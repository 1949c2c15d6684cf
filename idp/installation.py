"""An installation worked on from outside a web request: by the ``idp`` commands and ``idp demo``.

``init`` brings it up to date: the database migrated to head, signing keys created when there
are none (``idp init``, and the start of ``idp serve`` and ``idp demo``). ``database`` is the
session of one command, committed when the command succeeds, as a request's is.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy.orm import Session

from idp import cache  # noqa: F401  (its session events tell the workers a cached table changed)
from idp import db, store
from idp.config import Settings
from idp.oidc import keys


def init(settings: Settings) -> list[keys.StoredKey]:
    """Migrate the database to head; the signing keys created (none when there were some)."""
    db.upgrade(settings.database_url)
    return keys.ensure(settings.keys_dir)


@contextmanager
def database(settings: Settings):
    """A session committed when the command succeeds, rolled back when it fails.

    With ``IDP_REDIS_URL`` its commits reach the running workers' caches (``idp.cache``); the
    embedded store is inside the server's own process, out of reach, and nothing is cached there.
    """
    engine = db.make_engine(settings.database_url)
    info = {"idp.store": store.connect(settings)} if settings.redis_url else {}
    session = Session(engine, expire_on_commit=False, info=info)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()
