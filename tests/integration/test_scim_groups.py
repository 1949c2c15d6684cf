"""SCIM Groups: members are the tenant's users by their SCIM id; the MFA policy's groups follow
a rename and are never deleted from under it."""

from __future__ import annotations

import pytest

from idp import admin, db, directory
from tests.support.scim import GROUP, Scim, grant_scope, token_in_process
from tests.support.signin import set_policy
from tests.support.world import make_world


@pytest.fixture
def scim(app, client, world) -> Scim:
    grant_scope(app, world)
    return Scim(client, world, token_in_process(client, world))


def _user_id(scim: Scim, email: str) -> str:
    return scim("GET", "/Users", filter=f'userName eq "{email}"').get_json()["Resources"][0]["id"]


def _group(scim: Scim, name: str, *member_ids: str, **extra) -> dict:
    r = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": name,
                                 "members": [{"value": m} for m in member_ids], **extra})
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


def _members(scim: Scim, group_id: str) -> set[str]:
    return {m["value"] for m in scim("GET", f"/Groups/{group_id}").get_json().get("members", [])}


def test_members_are_added_and_removed_and_show_on_the_user(world, scim):
    alice, bob = _user_id(scim, world.alice), _user_id(scim, world.bob)
    group = _group(scim, "Finance", alice, externalId="g-1")
    assert group["externalId"] == "g-1" and _members(scim, group["id"]) == {alice}
    assert group["members"][0]["$ref"].endswith(f"/scim/v2/Users/{alice}")
    user = scim("GET", f"/Users/{alice}").get_json()
    assert user["groups"] == [{"value": group["id"], "$ref": group["meta"]["location"],
                               "display": "Finance"}]

    r = scim.patch(f"/Groups/{group['id']}", {"op": "add", "path": "members",
                                               "value": [{"value": bob}]})
    assert r.status_code == 200 and _members(scim, group["id"]) == {alice, bob}
    r = scim.patch(f"/Groups/{group['id']}",
                   {"op": "remove", "path": f'members[value eq "{alice}"]'})
    assert r.status_code == 200 and _members(scim, group["id"]) == {bob}
    assert "groups" not in scim("GET", f"/Users/{alice}").get_json()
    listed = scim("GET", "/Groups", filter=f'members eq "{bob}"').get_json()
    assert [g["displayName"] for g in listed["Resources"]] == ["Finance"]


def test_a_member_must_be_a_user_of_this_tenant(app, settings, world, scim):
    other = make_world(app, settings)
    grant_scope(app, other)
    stranger = _user_id(Scim(scim.client, other, token_in_process(scim.client, other)), other.bob)
    for members in ([{"value": stranger}], [{"value": "no-such-id"}],
                    [{"value": _user_id(scim, world.bob), "type": "Group"}]):
        r = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "X", "members": members})
        assert r.status_code == 400 and r.get_json()["scimType"] == "invalidValue", members
    assert scim("GET", "/Groups").get_json()["totalResults"] == 0


def test_a_taken_name_is_a_uniqueness_conflict(scim):
    _group(scim, "Ops")
    r = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "Ops"})
    assert r.status_code == 409 and r.get_json()["scimType"] == "uniqueness"


def test_renaming_a_group_the_policy_names_renames_it_there(app, world, scim):
    group = _group(scim, "Finance", _user_id(scim, world.alice))
    set_policy(app, world, mode="required", groups=["Finance"])
    r = scim.patch(f"/Groups/{group['id']}",
                   {"op": "replace", "path": "displayName", "value": "Accounts"})
    assert r.status_code == 200 and r.get_json()["displayName"] == "Accounts"
    with app.app_context():
        session = db.session()
        row = admin.policy_row(session, directory.get_tenant(session, world.slug))
        assert row.groups == ["Accounts"]
    # ...and it cannot be deleted from under the policy.
    r = scim("DELETE", f"/Groups/{group['id']}")
    assert r.status_code == 409 and "policy" in r.get_json()["detail"]
    assert scim("GET", f"/Groups/{group['id']}").status_code == 200


def test_deleting_a_group_keeps_its_members(world, scim):
    alice = _user_id(scim, world.alice)
    group = _group(scim, "Temp", alice)
    assert scim("DELETE", f"/Groups/{group['id']}").status_code == 204
    assert scim("GET", f"/Groups/{group['id']}").status_code == 404
    assert scim("GET", f"/Users/{alice}").status_code == 200


def test_put_replaces_the_members_and_if_match_guards_it(world, scim):
    alice, bob = _user_id(scim, world.alice), _user_id(scim, world.bob)
    group = _group(scim, "Sales", alice)
    stale = group["meta"]["version"]
    r = scim("PUT", f"/Groups/{group['id']}",
             {"schemas": [GROUP], "displayName": "Sales", "members": [{"value": bob}]},
             headers={"If-Match": stale})
    assert r.status_code == 200 and _members(scim, group["id"]) == {bob}
    r = scim("PUT", f"/Groups/{group['id']}",
             {"schemas": [GROUP], "displayName": "Sales", "members": []},
             headers={"If-Match": stale})
    assert r.status_code == 412 and _members(scim, group["id"]) == {bob}
