"""Calling the admin API from tests as a back office would: a service client of the tenant
registered for the scopes it needs, a client-credentials token, JSON requests."""

from __future__ import annotations

from dataclasses import dataclass

from idp import admin, db as idp_db, directory
from tests.support.rp import basic

ALL_SCOPES = "admin:read admin:write mfa:manage users:provision"


def grant_scopes(app, world, scope: str = ALL_SCOPES) -> None:
    """Register the world's service client for ``scope``."""
    with app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.update_client(session, tenant, world.service.client_id, "test", scope=scope)
        session.commit()


def token(client, world, scope: str = ALL_SCOPES) -> str:
    """A client-credentials access token of the world's service (Flask's test client)."""
    r = client.post(f"/t/{world.slug}/token",
                    headers=basic(world.service.client_id, world.service.client_secret),
                    data={"grant_type": "client_credentials", "scope": scope})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["access_token"]


@dataclass
class Api:
    """The API of one tenant through Flask's test client, with a bearer token."""

    client: object
    slug: str
    access_token: str

    def url(self, path: str) -> str:
        return f"/t/{self.slug}/api/v1{path}"

    def call(self, method: str, path: str, json=None, headers=None, **kw):
        headers = {"Authorization": f"Bearer {self.access_token}", **(headers or {})}
        return self.client.open(self.url(path), method=method, json=json, headers=headers, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)

    def put(self, path, json=None, **kw):
        return self.call("PUT", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


def api_for(app, client, world, scope: str = ALL_SCOPES) -> Api:
    grant_scopes(app, world, scope)
    return Api(client, world.slug, token(client, world, scope))


def subject_of(app, world, email: str) -> str:
    with app.app_context():
        session = idp_db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).subject
