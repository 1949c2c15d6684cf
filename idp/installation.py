"""An installation worked on from outside a web request: by the ``idp`` commands and ``idp demo``.

``init`` brings it up to date: the database migrated to head, and the shared signing keys of
earlier versions handed to every tenant, then retired (``idp init``, and the start of ``idp
serve`` and ``idp demo``); tenants get keys of their own when first asked for
(``idp.oidc.keys``). ``database`` is the session of one command, committed when the command
succeeds, as a request's is.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import cache  # noqa: F401  (its session events tell the workers a cached table changed)
from idp import db, store
from idp.config import Settings
from idp.models import Tenant
from idp.oidc.keys import Keyrings, read_all


@dataclass(frozen=True)
class Upgrade:
    given_shared_keys: list[str]  # slugs of the tenants given copies of the shared keys
    shared_keys_retired: list[str]  # their kids, moved to shared-retired/


def init(settings: Settings) -> Upgrade:
    """Migrate the database to head; hand the shared signing keys of earlier versions to
    every tenant and retire them (nothing to do when there are none: run again, it does
    nothing)."""
    db.upgrade(settings.database_url)
    if not read_all(settings.keys_dir):  # no shared keys (or no folder yet): nothing to hand
        return Upgrade([], [])
    with database(settings) as session:
        slugs = dict(session.execute(select(Tenant.id, Tenant.slug)).all())
    given, retired = Keyrings.from_settings(settings).adopt_shared(sorted(slugs))
    return Upgrade([slugs[t] for t in given], retired)


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
