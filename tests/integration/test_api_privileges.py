"""What a service's scopes let it do to the tenant's administrators and to other clients: no
single scope is a way to the keys of the tenant. An administrator's account is created, ended
or has its second step changed only with ``admin:write`` beside the call's own scope; a
service gives no client (itself included) an API scope it does not hold."""

from __future__ import annotations

import pytest

from idp import db as idp_db, directory
from idp.models import Client
from tests.support.api import api_for, subject_of
from tests.support.lifecycle import user_row


def _refused(r, scope="admin:write"):
    assert r.status_code == 403, r.get_data(as_text=True)
    assert r.get_json()["status"] == 403
    assert f'scope="{scope}"' in r.headers["WWW-Authenticate"]


def test_provisioning_alone_creates_no_administrator(app, world):
    api = api_for(app, app.test_client(), world, "users:provision")
    for role in ("admin", "mfa-admin"):
        _refused(api.post("/users", json={"email": f"{role}@attacker.test",
                                          "password": "a long enough password", "role": role}))
        _refused(api.post("/users", json={"email": f"{role}-invited@attacker.test", "role": role}))
        assert user_row(app, world, f"{role}@attacker.test") is None
    made = api.post("/users", json={"email": "member@example.com", "role": "member"})
    assert made.status_code == 201


@pytest.mark.parametrize("call", ["deactivate", "reactivate", "delete"])
def test_provisioning_alone_cannot_end_an_administrator(app, world, call):
    api = api_for(app, app.test_client(), world, "users:provision")
    ada = subject_of(app, world, world.admin)
    r = api.delete(f"/users/{ada}") if call == "delete" else api.post(f"/users/{ada}/{call}")
    _refused(r)
    assert user_row(app, world, world.admin).status == "active"
    both = api_for(app, app.test_client(), world, "users:provision admin:write")
    bob = subject_of(app, world, world.bob)
    assert both.post(f"/users/{bob}/deactivate").status_code == 200  # a member: as before


@pytest.mark.parametrize("path", ["mfa/exempt", "mfa/reset", "mfa/default", "unlock"])
def test_mfa_manage_alone_never_weakens_an_administrator_s_sign_in(app, world, path):
    api = api_for(app, app.test_client(), world, "mfa:manage")
    _refused(api.post(f"/users/{subject_of(app, world, world.admin)}/{path}"))
    _refused(api.delete(f"/users/{subject_of(app, world, world.admin)}/remembered-browsers"))
    assert api.post(f"/users/{subject_of(app, world, world.bob)}/{path}").status_code == 200
    both = api_for(app, app.test_client(), world, "mfa:manage admin:write")
    assert both.post(f"/users/{subject_of(app, world, world.admin)}/{path}").status_code == 200


def _scope_of(app, client_id) -> str:
    with app.app_context():
        return idp_db.session().query(Client).filter_by(client_id=client_id).one().scope


def test_admin_write_gives_no_client_a_scope_it_does_not_hold(app, world):
    api = api_for(app, app.test_client(), world, "admin:read admin:write")
    me = world.service.client_id
    r = api.patch(f"/clients/{me}", json={"scope": "admin:read admin:write mfa:manage"})
    _refused(r, "mfa:manage")
    r = api.patch(f"/clients/{me}", json={"scope": "admin:read"})  # narrowing itself: also not
    assert r.status_code == 409
    assert _scope_of(app, me) == "admin:read admin:write"
    r = api.post("/clients", json={"name": "Minted", "grant_types": ["client_credentials"],
                                   "scope": "users:provision admin:read"})
    _refused(r, "users:provision")
    made = api.post("/clients", json={"name": "Reader", "grant_types": ["client_credentials"],
                                      "scope": "admin:read"})
    assert made.status_code == 201


def test_a_client_holding_more_than_the_caller_is_beyond_it(app, world):
    with app.app_context():
        session = idp_db.session()
        stronger = directory.create_client(
            session, directory.get_tenant(session, world.slug), "HR sync", [],
            grant_types=["client_credentials"], scope="users:provision")
        session.commit()
        cid = stronger.client.client_id
    api = api_for(app, app.test_client(), world, "admin:read admin:write")
    _refused(api.post(f"/clients/{cid}/secret"), "users:provision")
    _refused(api.patch(f"/clients/{cid}", json={"name": "Renamed"}), "users:provision")
    _refused(api.delete(f"/clients/{cid}"), "users:provision")
    assert api.get(f"/clients/{cid}").get_json()["name"] == "HR sync"


@pytest.mark.parametrize("depth", [40, 500, 900, 3000])
def test_a_deeply_nested_body_is_a_clear_4xx(app, world, depth):
    api = api_for(app, app.test_client(), world)
    r = api.post("/groups", data="{\"name\": " + "[" * depth + "]" * depth + "}",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.content_type.startswith("application/problem+json")


def test_text_that_is_not_unicode_is_a_clear_4xx(app, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/groups", data='{"name": "\\ud800"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 422


def test_an_invitation_gives_no_role_the_tenant_does_not_allow(app, world):
    """Where the tenant's policy does not let two-factor administrators in, inviting one is
    refused as creating or promoting one is."""
    from idp import admin

    with app.app_context():
        session = idp_db.session()
        admin.policy_row(session, directory.get_tenant(session, world.slug)).roles_allowed = [
            "admin", "member"]
        session.commit()
    api = api_for(app, app.test_client(), world)
    r = api.post("/users", json={"email": "helpdesk@example.com", "role": "mfa-admin"})
    assert r.status_code == 409, r.get_data(as_text=True)
    assert user_row(app, world, "helpdesk@example.com") is None
