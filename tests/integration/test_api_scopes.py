"""API scopes (admin:read, admin:write, mfa:manage, users:provision) are a service's own: a
confidential client with the client credentials grant may be registered for them and granted
them; a person's sign-in never carries one, whatever the portal asks."""

from __future__ import annotations

import json

import pytest

from idp import admin, db as idp_db, directory
from idp.directory import DirectoryError
from tests.support.rp import basic, get_code, redeem
from tests.support.world import ClientCreds


def _tenant(app, world):
    return directory.get_tenant(idp_db.session(), world.slug)


def test_a_portal_without_client_credentials_cannot_be_registered_for_an_api_scope(app, world):
    with app.app_context():
        with pytest.raises(DirectoryError, match="client_credentials"):
            directory.create_client(idp_db.session(), _tenant(app, world), "Portal",
                                    ["https://p.test/cb"], scope="openid admin:read")
        with pytest.raises(DirectoryError, match="unknown scope 'admin:everything'"):
            directory.create_client(idp_db.session(), _tenant(app, world), "Service", [],
                                    grant_types=["client_credentials"], scope="admin:everything")


def test_a_service_gets_the_api_scopes_it_is_registered_for_and_no_more(app, client, world):
    with app.app_context():
        session = idp_db.session()
        admin.update_client(session, _tenant(app, world), world.service.client_id, "test",
                            scope="admin:read mfa:manage")
        session.commit()
    auth = basic(world.service.client_id, world.service.client_secret)
    r = client.post(f"/t/{world.slug}/token", headers=auth,
                    data={"grant_type": "client_credentials", "scope": "admin:read"})
    assert r.status_code == 200 and r.get_json()["scope"] == "admin:read"
    r = client.post(f"/t/{world.slug}/token", headers=auth,
                    data={"grant_type": "client_credentials", "scope": "admin:read admin:write"})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_scope"


def test_a_person_s_sign_in_never_grants_an_api_scope(app, client, world):
    with app.app_context():
        session = idp_db.session()
        new = directory.create_client(
            session, _tenant(app, world), "Both", ["https://both.test/cb"],
            grant_types=["authorization_code", "client_credentials"],
            scope="openid profile email admin:read admin:write")
        session.commit()
        creds = ClientCreds(new.client.client_id, new.secret, "https://both.test/cb", "")
    code, verifier = get_code(client, world, creds, scope="openid email admin:read admin:write")
    r = redeem(client, world, creds, code, verifier)
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["scope"].split() == ["openid", "email"]


def test_cli_registers_a_service_for_api_scopes(idp, world):
    code, out, _ = idp("client", "create", world.slug, "--name", "Back office", "--grant-types",
                       "client_credentials", "--scope", "admin:read users:provision")
    made = json.loads(out)
    assert code == 0 and made["scope"] == "admin:read users:provision"
    code, out, _ = idp("client", "update", world.slug, made["client_id"], "--scope", "admin:read")
    assert code == 0 and json.loads(out)["scope"] == "admin:read"
    code, _, err = idp("client", "create", world.slug, "--name", "Portal", "--redirect-uri",
                       "https://p.test/cb", "--scope", "openid admin:write")
    assert code != 0 and "client_credentials" in err
