"""SCIM Users as a provisioning service (an HR system, an upstream identity provider) drives
them: a new user is invited and can then sign in; a deactivation ends what they hold; a
change is refused when the client's version is stale; nothing else is a 500."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp import db, directory
from idp.models import AuditEvent
from tests.support.journey import Browser
from tests.support.lifecycle import portal_sign_in, user_row
from tests.support.mailed_links import mailed_paths, password_sign_in_answer, set_new_password
from tests.support.rp import refresh
from tests.support.scim import USER, Scim, grant_scope, token_in_process


@pytest.fixture
def scim(app, client, world) -> Scim:
    grant_scope(app, world)
    return Scim(client, world, token_in_process(client, world))


def _id_of(scim: Scim, email: str) -> str:
    r = scim("GET", "/Users", filter=f'userName eq "{email}"')
    assert r.status_code == 200 and r.get_json()["totalResults"] == 1, r.get_json()
    return r.get_json()["Resources"][0]["id"]


def _signed_out(browser: Browser, world) -> bool:
    page = browser.get(f"/t/{world.slug}/account")
    return page.status == 302 and "/login" in page.location


def test_a_new_user_is_invited_and_signs_in_with_the_password_they_choose(app, world, scim):
    made = scim.create_user("  Carol.Diaz@Example.COM ", externalId="hr-0042",
                            name={"givenName": "Carol", "familyName": "Díaz"})

    assert made["userName"] == "carol.diaz@example.com"  # spelt as the directory keeps it
    assert made["displayName"] == "Carol Díaz" and made["externalId"] == "hr-0042"
    assert made["active"] is True and made["emails"] == [
        {"value": "carol.diaz@example.com", "type": "work", "primary": True}]
    got = scim("GET", f"/Users/{made['id']}")
    assert got.status_code == 200 and got.headers["Content-Type"] == "application/scim+json"
    assert got.get_json() == made and got.headers["ETag"] == made["meta"]["version"]
    assert got.get_json()["meta"]["location"].endswith(f"/scim/v2/Users/{made['id']}")
    # Not signed in yet: the invitation mail is the way in; the password is theirs.
    assert password_sign_in_answer(app, world, "carol.diaz@example.com", "anything").status == 200
    (link,) = mailed_paths(app, world, "carol.diaz@example.com", "invite")
    set_new_password(Browser(app.test_client()), link, "a long new passphrase")
    answer = password_sign_in_answer(app, world, "carol.diaz@example.com", "a long new passphrase")
    assert answer.status == 302
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "user.invited",
                                                             AuditEvent.data["role"].as_string() == "member")
                                    .order_by(AuditEvent.id.desc()))
        assert event.actor == f"client:{world.service.client_id}"


def test_a_user_created_inactive_is_invited_once_made_active(app, world, scim):
    made = scim.create_user("dan@example.com", active=False)
    assert made["active"] is False and user_row(app, world, "dan@example.com").status == "deactivated"
    assert mailed_paths(app, world, "dan@example.com", "invite") == []

    r = scim.patch(f"/Users/{made['id']}", {"op": "replace", "path": "active", "value": True})

    assert r.status_code == 200 and r.get_json()["active"] is True
    assert user_row(app, world, "dan@example.com").status == "invited"
    (link,) = mailed_paths(app, world, "dan@example.com", "invite")
    set_new_password(Browser(app.test_client()), link, "a long new passphrase")
    assert password_sign_in_answer(app, world, "dan@example.com",
                                   "a long new passphrase").status == 302


def test_a_taken_address_is_a_uniqueness_conflict_and_changes_nothing(world, scim):
    r = scim("POST", "/Users", {"schemas": [USER], "userName": "ALICE@example.com"})
    assert r.status_code == 409 and r.get_json()["scimType"] == "uniqueness"
    bob = _id_of(scim, world.bob)
    r = scim.patch(f"/Users/{bob}", {"op": "replace", "path": "userName", "value": world.alice})
    assert r.status_code == 409 and r.get_json()["scimType"] == "uniqueness"
    assert scim("GET", f"/Users/{bob}").get_json()["userName"] == world.bob


@pytest.mark.parametrize("body, scim_type", [
    ({"schemas": [USER], "userName": "not an address"}, "invalidValue"),
    ({"schemas": [USER]}, None),  # userName is required
    ({"schemas": [USER], "userName": "eve@example.com", "password": "hunter2hunter2"},
     "mutability"),
    ({"schemas": [USER], "userName": "eve@example.com", "active": "perhaps"}, None),
    ({"schemas": [USER], "userName": "eve@example.com", "displayName": "x" * 201},
     "invalidValue"),
    ([1, 2], "invalidSyntax"),
    ({"schemas": [USER], "userName": "eve\u0000@example.com"}, "invalidValue"),
    ({"schemas": [USER], "userName": "eve@example.com", "externalId": "x" * 256}, "invalidValue"),
])
def test_a_bad_creation_is_a_400_and_creates_nobody(app, world, scim, body, scim_type):
    r = scim("POST", "/Users", body)
    assert r.status_code == 400, r.get_data(as_text=True)
    error = r.get_json()
    assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert error["status"] == "400" and error["detail"]
    if scim_type:
        assert error["scimType"] == scim_type
    assert user_row(app, world, "eve@example.com") is None


def test_malformed_json_is_invalid_syntax(world, scim):
    r = scim("POST", "/Users", raw='{"schemas": [')
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidSyntax"
    r = scim("PATCH", f"/Users/{_id_of(scim, world.bob)}", raw="not json")
    assert r.status_code == 400 and r.get_json()["scimType"] == "invalidSyntax"


def test_deactivating_ends_sessions_and_tokens_and_reactivating_lets_them_back(app, world, scim):
    alice = portal_sign_in(app, world)
    alice_id = _id_of(scim, world.alice)

    r = scim.patch(f"/Users/{alice_id}", {"op": "replace", "path": "active", "value": False})

    assert r.status_code == 200 and r.get_json()["active"] is False
    assert _signed_out(alice.browser, world)
    gone = refresh(app.test_client(), world, world.portal, alice.tokens["refresh_token"])
    assert gone.status_code == 400 and gone.get_json()["error"] == "invalid_grant"
    assert password_sign_in_answer(app, world, world.alice, world.password).status == 403
    inactive = scim("GET", "/Users", filter="active eq false").get_json()
    assert [u["userName"] for u in inactive["Resources"]] == [world.alice]

    r = scim.patch(f"/Users/{alice_id}", {"op": "replace", "value": {"active": True}})
    assert r.status_code == 200 and r.get_json()["active"] is True
    assert password_sign_in_answer(app, world, world.alice, world.password).status == 302


def test_put_replaces_what_the_client_keeps_and_a_new_user_name_is_unproved(app, world, scim):
    bob = scim("GET", f"/Users/{_id_of(scim, world.bob)}").get_json()
    r = scim("PUT", f"/Users/{bob['id']}", {
        "schemas": [USER], "userName": "Robert@Example.com", "displayName": "Robert",
        "name": {"givenName": "Robert", "familyName": "Smith"}, "externalId": "e-7",
        "emails": [{"value": "ignored@example.com"}]})  # read-only: as it was read
    assert r.status_code == 200, r.get_json()
    after = r.get_json()
    assert (after["userName"], after["displayName"], after["externalId"]) == (
        "robert@example.com", "Robert", "e-7")
    assert after["name"] == {"givenName": "Robert", "familyName": "Smith"}
    assert after["active"] is True  # left out of the replacement: kept
    assert after["emails"][0]["value"] == "robert@example.com"
    row = user_row(app, world, "robert@example.com")
    assert row is not None and row.email_verified is False
    assert password_sign_in_answer(app, world, "robert@example.com", world.password).status == 302


def test_patch_refuses_what_a_client_cannot_change(world, scim):
    bob = _id_of(scim, world.bob)
    for operation, scim_type in [
        ({"op": "replace", "path": "emails", "value": [{"value": "x@example.com"}]}, "mutability"),
        ({"op": "remove", "path": "userName"}, "mutability"),
        ({"op": "remove", "path": "active"}, "mutability"),
        ({"op": "replace", "path": "password", "value": "a long password"}, "mutability"),
        ({"op": "explode", "path": "displayName", "value": "x"}, None),
        ({"op": "replace", "path": "name[[", "value": "x"}, None),
    ]:
        r = scim.patch(f"/Users/{bob}", operation)
        assert r.status_code == 400, (operation, r.get_data(as_text=True))
        if scim_type:
            assert r.get_json()["scimType"] == scim_type, (operation, r.get_json())
    assert scim("GET", f"/Users/{bob}").get_json()["userName"] == world.bob


def test_a_stale_version_is_refused_with_412_and_changes_nothing(world, scim):
    bob = scim("GET", f"/Users/{_id_of(scim, world.bob)}")
    version = bob.headers["ETag"]
    assert version.startswith('W/"') and bob.get_json()["meta"]["version"] == version
    assert scim("GET", f"/Users/{bob.get_json()['id']}",
                headers={"If-None-Match": version}).status_code == 304

    changed = scim.patch(f"/Users/{bob.get_json()['id']}",
                         {"op": "replace", "path": "displayName", "value": "Bobby"},
                         headers={"If-Match": version})
    assert changed.status_code == 200 and changed.headers["ETag"] != version

    stale = scim.patch(f"/Users/{bob.get_json()['id']}",
                       {"op": "replace", "path": "displayName", "value": "Robert"},
                       headers={"If-Match": version})
    assert stale.status_code == 412 and stale.get_json()["status"] == "412"
    for method in ("PUT", "DELETE"):
        r = scim(method, f"/Users/{bob.get_json()['id']}",
                 {"schemas": [USER], "userName": world.bob} if method == "PUT" else None,
                 headers={"If-Match": version})
        assert r.status_code == 412
    assert scim("GET", f"/Users/{bob.get_json()['id']}").get_json()["displayName"] == "Bobby"


def test_delete_removes_the_user_but_never_the_last_administrator(app, world, scim):
    bob = _id_of(scim, world.bob)
    assert scim("DELETE", f"/Users/{bob}").status_code == 204
    assert scim("GET", f"/Users/{bob}").status_code == 404
    assert user_row(app, world, world.bob) is None
    r = scim("DELETE", f"/Users/{_id_of(scim, world.admin)}")  # provisioning alone: never
    assert r.status_code == 403 and "administrator" in r.get_json()["detail"]
    grant_scope(app, world, "users:provision admin:write")
    both = Scim(scim.client, world, token_in_process(scim.client, world,
                                                      "users:provision admin:write"))
    r = both("DELETE", f"/Users/{_id_of(both, world.admin)}")
    assert r.status_code == 409 and "last active administrator" in r.get_json()["detail"]
    assert user_row(app, world, world.admin) is not None


def test_the_audit_trail_names_the_service(app, world, scim):
    scim.patch(f"/Users/{_id_of(scim, world.bob)}",
               {"op": "add", "path": "externalId", "value": "b-1"})
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        event = session.scalar(select(AuditEvent).where(AuditEvent.tenant_id == tenant.id,
                                                        AuditEvent.action == "user.updated"))
        assert event.actor == f"client:{world.service.client_id}"
        assert event.data["fields"] == ["external_id"]


@pytest.mark.parametrize("operation", [
    {"op": "replace", "path": "userName", "value": "mallory@evil.test"},
    {"op": "replace", "path": "active", "value": False},
])
def test_provisioning_alone_never_moves_or_ends_an_administrator(app, world, scim, operation):
    """An administrator's address is where their reset link goes: a provisioning client that
    could change it could take the tenant over. Their names stay the client's to keep."""
    ada = _id_of(scim, world.admin)
    r = scim.patch(f"/Users/{ada}", operation)
    assert r.status_code == 403 and "changed in the console" in r.get_json()["detail"]
    row = user_row(app, world, world.admin)
    assert row.email == world.admin and row.status == "active"
    assert scim.patch(f"/Users/{ada}", {"op": "replace", "path": "externalId",
                                        "value": "hr-1"}).status_code == 200


def test_a_new_address_voids_what_was_mailed_to_the_old_one(app, world, scim):
    """A link mailed to the old address (an invitation, a reset) must not prove the new one:
    it stops working, and an account still invited is invited again at its new address."""
    made = scim.create_user("typo@stranger.test")
    (old,) = mailed_paths(app, world, "typo@stranger.test", "invite")
    r = scim.patch(f"/Users/{made['id']}",
                   {"op": "replace", "path": "userName", "value": "john@example.com"})
    assert r.status_code == 200
    page = Browser(scim.client).get(old)
    assert page.status != 200 or 'name="password"' not in page.text
    (new,) = mailed_paths(app, world, "john@example.com", "invite")
    done = set_new_password(Browser(scim.client), new, "a long enough password")
    assert done.status in (200, 302)
    assert user_row(app, world, "john@example.com").email_verified is True
