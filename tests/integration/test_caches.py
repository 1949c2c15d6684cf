"""Tenants and clients are cached in each worker; a change made anywhere (another worker, the
CLI) is seen by the next request. Client-credentials access tokens are stateless JWTs that
introspection and revocation still govern."""

from __future__ import annotations

import pytest
from flask import g
from sqlalchemy.orm import Session

from idp import admin, cache, directory
from idp.oidc.server import CLIENTS
from tests.integration.test_token import basic, introspect, userinfo


def service_token(client, world, secret=None) -> tuple[int, dict]:
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(world.service.client_id, secret or world.service.client_secret))
    return r.status_code, r.get_json()


@pytest.fixture
def elsewhere(app):
    """A session as another worker or the CLI has it: same database, same Redis, no request."""
    def open_session() -> Session:
        return Session(app.extensions["idp.engine"], expire_on_commit=False,
                       info={"idp.store": app.extensions["idp.store"]})
    return open_session


def test_a_secret_rotated_by_another_worker_is_refused_at_once(client, world, elsewhere):
    assert service_token(client, world)[0] == 200  # cached now, with the old secret's hash
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        new = admin.rotate_client_secret(session, tenant, world.service.client_id, "another-worker")
        session.commit()
    status, body = service_token(client, world)
    assert status == 401 and body["error"] == "invalid_client"
    assert service_token(client, world, new)[0] == 200


def test_a_client_deleted_elsewhere_gets_no_token_and_its_tokens_die(client, world, elsewhere):
    status, body = service_token(client, world)
    assert status == 200
    token = body["access_token"]
    assert introspect(client, world, world.portal, token)["active"] is True
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        admin.delete_client(session, tenant, world.service.client_id, "cli")
        session.commit()
    assert service_token(client, world)[0] == 401
    assert introspect(client, world, world.portal, token) == {"active": False}


def test_redirect_uris_edited_elsewhere_apply_to_the_next_authorize(client, world, elsewhere):
    new_uri = "https://portal.test/moved"
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        admin.update_client(session, tenant, world.portal.client_id, "cli", redirect_uris=[new_uri])
        session.commit()
    old = client.get(f"/t/{world.slug}/authorize", query_string={
        "response_type": "code", "client_id": world.portal.client_id, "scope": "openid",
        "redirect_uri": world.portal.redirect_uri, "state": "s"})
    assert old.status_code == 400  # an unregistered redirect URI: an error page, no redirect


def test_an_entry_read_while_a_change_commits_is_never_kept(app):
    """The loader reads the old row; the change commits and bumps before the entry is stored:
    the next request must read the database again."""
    loads = []
    with app.test_request_context():
        def load_old_then_change():
            loads.append("read")
            cache.bump(app.extensions["idp.store"])  # a commit elsewhere, mid-read
            return "old"
        assert CLIENTS.get((0, "race"), load_old_then_change) == "old"
    with app.test_request_context():
        assert CLIENTS.get((0, "race"), lambda: loads.append("read") or "new") == "new"
    assert loads == ["read", "read"]


def test_without_redis_the_cache_is_bypassed_not_trusted(app, world):
    from redis.exceptions import ConnectionError

    class Down:
        def get(self, key):
            raise ConnectionError("down")

    reads = []
    with app.test_request_context():
        CLIENTS.get((0, "bypass"), lambda: reads.append(1) or "v")
    with app.test_request_context():
        store, app.extensions["idp.store"] = app.extensions["idp.store"], Down()
        try:
            CLIENTS.get((0, "bypass"), lambda: reads.append(1) or "v")
            assert g.cache_generation is None
        finally:
            app.extensions["idp.store"] = store
    assert len(reads) == 2


def test_a_revoked_service_token_is_inactive_and_others_are_not(client, world):
    first = service_token(client, world)[1]["access_token"]
    second = service_token(client, world)[1]["access_token"]
    r = client.post(f"/t/{world.slug}/revoke", data={"token": first},
                    headers=basic(world.service.client_id, world.service.client_secret))
    assert r.status_code == 200
    assert introspect(client, world, world.portal, first) == {"active": False}
    info = introspect(client, world, world.portal, second)
    assert info["active"] is True and info["sub"] == world.service.client_id


def test_a_service_token_opens_no_userinfo(client, world):
    token = service_token(client, world)[1]["access_token"]
    r = userinfo(client, world, token)
    assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]


def test_another_client_cannot_revoke_a_service_token(client, world):
    token = service_token(client, world)[1]["access_token"]
    client.post(f"/t/{world.slug}/revoke", data={"token": token},
                headers=basic(world.portal.client_id, world.portal.client_secret))
    assert introspect(client, world, world.portal, token)["active"] is True
