"""A tenant's signing keys as the tests look at them: its folder, its JWKS over HTTP."""

from __future__ import annotations

from pathlib import Path

import time

import requests
from joserfc.jwk import KeySet

from idp import db, directory
from idp.oidc import keys


def tenant_id(app, slug: str) -> int:
    with app.app_context():
        return directory.get_tenant(db.session(), slug).id


def tenant_folder(app, settings, slug: str) -> Path:
    """Where the tenant's key files are (``{IDP_KEYS_DIR}/tenants/<id>/``)."""
    return keys.tenant_folder(settings.keys_dir, tenant_id(app, slug))


def jwks_kids(client, slug: str) -> set[str]:
    """The kids the tenant's JWKS endpoint publishes (Flask test client)."""
    return {k["kid"] for k in client.get(f"/t/{slug}/jwks").get_json()["keys"]}


def fetched_jwks(issuer: str) -> KeySet:
    """The tenant's JWKS fetched over HTTP from a live server, as an RP would."""
    r = requests.get(f"{issuer}/jwks", timeout=10)
    r.raise_for_status()
    return KeySet.import_key_set(r.json())


class KeyClock:
    """The keyrings' clock (``monkeypatch.setattr(keys, "time", clock)``), moved by the test:
    what signs when is decided by time alone, and a loaded machine must not turn a sleep into
    a different moment."""

    def __init__(self):
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return int(self.now * 1e9)

    def strftime(self, fmt: str) -> str:
        return time.strftime(fmt, time.gmtime(self.now))
