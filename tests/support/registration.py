"""Dynamic client registration from tests: an initial access token an administrator issued,
the tenant's redirect-host rules, and a registration as a developer's script sends it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from idp import db as idp_db, directory
from idp.admin import registration_tokens
from idp.models import RegistrationToken, TenantProtocol
from tests.support.world import ClientCreds


def initial_token(app, world, **options) -> str:
    """A fresh initial access token of ``world``'s tenant (``registration_tokens.create``)."""
    with app.app_context():
        session = idp_db.session()
        issued = registration_tokens.create(session, directory.get_tenant(session, world.slug),
                                            world.admin, options.pop("name", "Partner team"),
                                            **options)
        session.commit()
        return issued.token


def expire_tokens(app, world) -> None:
    """Every initial access token of ``world``'s tenant expired a minute ago."""
    with app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, world.slug)
        for row in session.query(RegistrationToken).filter_by(tenant_id=tenant.id):
            row.expires_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        session.commit()


def allow_redirect_hosts(app, world, *patterns: str) -> None:
    with app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, world.slug)
        row = session.get(TenantProtocol, tenant.id)
        if row is None:
            row = TenantProtocol(tenant_id=tenant.id)
            session.add(row)
        row.registration_redirect_hosts = list(patterns)
        session.commit()


def metadata(redirect_uri: str = "https://app.partner.test/callback", **extra) -> dict:
    return {"client_name": "Partner portal", "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"], "scope": "openid profile email offline_access",
            "post_logout_redirect_uris": [redirect_uri.rsplit("/", 1)[0] + "/bye"], **extra}


def creds_of(registered: dict) -> ClientCreds:
    """The registration's answer as a relying party keeps it."""
    return ClientCreds(registered["client_id"], registered.get("client_secret"),
                       registered["redirect_uris"][0],
                       (registered.get("post_logout_redirect_uris") or [""])[0])
