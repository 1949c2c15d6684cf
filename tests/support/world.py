"""A fresh tenant for a test, as an administrator would set one up: two users and an admin,
MFA optional, and three clients (a confidential portal, a public SPA, a service)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from idp import admin, db as idp_db, directory

PASSWORD = "correct horse battery staple"


@dataclass
class ClientCreds:
    client_id: str
    client_secret: str | None
    redirect_uri: str
    post_logout_redirect_uri: str


@dataclass
class World:
    """A fresh tenant with two users and three clients."""

    slug: str
    issuer: str
    alice: str
    bob: str
    password: str
    admin: str  # the tenant's administrator
    portal: ClientCreds  # confidential, code + refresh
    spa: ClientCreds  # public, code + refresh
    service: ClientCreds  # confidential, client_credentials only


def make_world(app, settings, base_url: str | None = None) -> World:
    slug = f"t-{secrets.token_hex(4)}"
    with app.app_context():
        session = idp_db.session()
        passwords = app.extensions["idp.passwords"]
        tenant = directory.create_tenant(session, slug, f"Tenant {slug}")
        # MFA optional for everyone: whoever enrolls a factor is asked for it at sign-in.
        admin.policy_row(session, tenant).mode = "optional"
        alice = directory.create_user(session, passwords, tenant, "Alice@Example.com", PASSWORD,
                                      name="Alice")
        bob = directory.create_user(session, passwords, tenant, "bob@example.com", PASSWORD,
                                    name="Bob")
        ada = directory.create_user(session, passwords, tenant, "ada@example.com", PASSWORD,
                                    name="Ada", role="admin")

        def client(name, uri, **kw):
            new = directory.create_client(session, tenant, name, [uri] if uri else [],
                                          post_logout_redirect_uris=[f"{uri or 'https://x.test'}/bye"],
                                          **kw)
            return ClientCreds(new.client.client_id, new.secret, uri or "",
                               f"{uri or 'https://x.test'}/bye")

        world = World(
            slug=slug,
            issuer=f"{base_url or settings.base_url}/t/{slug}",
            alice=alice.email,
            bob=bob.email,
            password=PASSWORD,
            admin=ada.email,
            portal=client("Portal", "https://portal.test/callback"),
            spa=client("SPA", "http://127.0.0.1:8765/cb", public=True),
            service=client("Service", None, grant_types=["client_credentials"]),
        )
        session.commit()
    return world
