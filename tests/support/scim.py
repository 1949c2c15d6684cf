"""A provisioning service of a test's tenant: registered for ``users:provision`` (or what a
test asks), with a client-credentials access token, and the SCIM requests it sends."""

from __future__ import annotations

import requests

from idp import admin, db as idp_db, directory
from tests.support.rp import basic

MEDIA_TYPE = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def grant_scope(app, world, scope: str = "users:provision") -> None:
    """Register the world's service for ``scope``."""
    with app.app_context():
        session = idp_db.session()
        admin.update_client(session, directory.get_tenant(session, world.slug),
                            world.service.client_id, "test", scope=scope)
        session.commit()


def token_in_process(client, world, scope: str = "users:provision") -> str:
    r = client.post(f"/t/{world.slug}/token",
                    headers=basic(world.service.client_id, world.service.client_secret),
                    data={"grant_type": "client_credentials", "scope": scope})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["access_token"]


def token_live(world, scope: str = "users:provision") -> str:
    r = requests.post(f"{world.issuer}/token",
                      headers=basic(world.service.client_id, world.service.client_secret),
                      data={"grant_type": "client_credentials", "scope": scope}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


class Scim:
    """SCIM requests to one tenant through the Flask test client, as a service sends them."""

    def __init__(self, client, world, token: str):
        self.client, self.world, self.token = client, world, token
        self.prefix = f"/t/{world.slug}/scim/v2"

    def __call__(self, method: str, path: str, body=None, *, headers: dict | None = None,
                 raw: str | None = None, **query):
        sent = {"Authorization": f"Bearer {self.token}", "Content-Type": MEDIA_TYPE,
                **(headers or {})}
        return self.client.open(self.prefix + path, method=method, headers=sent,
                                json=body if raw is None else None,
                                data=raw, query_string=query)

    def create_user(self, user_name: str, **attributes):
        r = self("POST", "/Users", {"schemas": [USER], "userName": user_name, **attributes})
        assert r.status_code == 201, r.get_data(as_text=True)
        return r.get_json()

    def patch(self, path: str, *operations, headers=None):
        return self("PATCH", path, {"schemas": [PATCH], "Operations": list(operations)},
                    headers=headers)
