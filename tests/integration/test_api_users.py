"""The admin API as a back office uses it for people: invite and find them, change them, end
their account's life, drive their two-step verification, unlock them, end their sessions. Each
change is checked where a person or portal would notice it (the list, the factors, the
mailed link, the token endpoint) and in the audit trail with the service as actor."""

from __future__ import annotations

from idp import db as idp_db, directory
from idp.guard import account_key
from idp.models import Authenticator
from tests.support.api import api_for, subject_of
from tests.support.mailed_links import mailed_paths
from tests.support.rp import get_code, introspect, redeem, refresh


def _tenant(app, world):
    return directory.get_tenant(idp_db.session(), world.slug)


def _emails(page) -> list[str]:
    return [u["email"] for u in page["items"]]


def test_an_invited_user_is_mailed_a_link_and_listed_as_invited(app, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/users", json={"email": "Dora@Example.com", "name": "Dora", "role": "member"})
    assert r.status_code == 201, r.get_data(as_text=True)
    made = r.get_json()
    assert made["email"] == "dora@example.com" and made["status"] == "invited"
    assert r.headers["Location"].endswith(f"/t/{world.slug}/api/v1/users/{made['id']}")
    [link] = mailed_paths(app, world, "dora@example.com", "invite")
    assert link.startswith(f"/t/{world.slug}/login/invitation/")
    listed = api.get("/users?status=invited").get_json()
    assert _emails(listed) == ["dora@example.com"]
    assert api.get(f"/users/{made['id']}").get_json()["name"] == "Dora"
    event = api.get("/events?type=user.invited").get_json()["items"][0]
    assert event["user_id"] == made["id"] and event["actor"] == f"client:{world.service.client_id}"


def test_a_user_created_with_a_password_is_active_and_can_sign_in(app, client, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/users", json={"email": "erin@example.com", "password": world.password,
                                 "groups": []})
    assert r.status_code == 201 and r.get_json()["status"] == "active"
    code, verifier = get_code(client, world, world.portal, email="erin@example.com")
    assert redeem(client, world, world.portal, code, verifier).status_code == 200


def test_a_password_chosen_for_someone_meets_the_tenant_s_rules(app, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/users", json={"email": "finn@example.com", "password": "password"})
    assert r.status_code == 422 and r.get_json()["detail"].startswith("password refused")
    assert api.get("/users?email=finn@example.com").get_json()["items"] == []


def test_an_address_taken_is_a_conflict_and_a_bad_one_names_the_field(app, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/users", json={"email": world.bob})
    assert r.status_code == 409 and r.content_type == "application/problem+json"
    assert "already has an account" in r.get_json()["detail"]
    r = api.post("/users", json={"email": "not an address", "role": "owner", "extra": 1})
    problem = r.get_json()
    assert r.status_code == 422 and problem["status"] == 422
    assert {e["field"] for e in problem["errors"]} == {"email", "role", "extra"}


def test_changing_name_role_and_groups(app, world):
    api = api_for(app, app.test_client(), world)
    for name in ("Sales", "Finance"):
        assert api.post("/groups", json={"name": name}).status_code == 201
    bob = subject_of(app, world, world.bob)
    r = api.patch(f"/users/{bob}", json={"name": "Robert", "role": "mfa-admin",
                                         "groups": ["Sales", "Finance"]})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert (r.get_json()["name"], r.get_json()["role"], r.get_json()["groups"]) == (
        "Robert", "mfa-admin", ["Finance", "Sales"])
    assert _emails(api.get("/users?group=Sales").get_json()) == [world.bob]
    assert _emails(api.get("/users?role=mfa-admin").get_json()) == [world.bob]
    r = api.patch(f"/users/{bob}", json={"groups": ["Sales", "Nowhere"]})
    assert r.status_code == 422 and "Nowhere" in r.get_json()["detail"]
    # Nothing half-done: the refused change left the groups as they were.
    assert api.get(f"/users/{bob}").get_json()["groups"] == ["Finance", "Sales"]


def test_the_last_administrator_keeps_their_role(app, world):
    api = api_for(app, app.test_client(), world)
    ada = subject_of(app, world, world.admin)
    r = api.patch(f"/users/{ada}", json={"role": "member"})
    assert r.status_code == 409 and "last active administrator" in r.get_json()["detail"]


def test_deactivate_reactivate_and_delete(app, client, world):
    api = api_for(app, app.test_client(), world)
    code, verifier = get_code(client, world, world.portal)
    tokens = redeem(client, world, world.portal, code, verifier).get_json()
    alice = subject_of(app, world, world.alice)
    r = api.post(f"/users/{alice}/deactivate")
    assert r.status_code == 200 and r.get_json()["status"] == "deactivated"
    assert introspect(client, world, world.portal, tokens["access_token"])["active"] is False
    assert refresh(client, world, world.portal, tokens["refresh_token"]).status_code == 400
    assert api.post(f"/users/{alice}/deactivate").status_code == 422  # already
    assert _emails(api.get("/users?status=deactivated").get_json()) == [world.alice]
    assert api.post(f"/users/{alice}/reactivate").get_json()["status"] == "active"
    assert api.delete(f"/users/{alice}").status_code == 204
    assert api.get(f"/users/{alice}").status_code == 404
    assert api.get("/events?type=user.deleted").get_json()["items"][0]["data"]["email"] == world.alice


def test_mfa_enforce_exempt_and_reset_show_in_the_user_s_state(app, world):
    api = api_for(app, app.test_client(), world)
    bob = subject_of(app, world, world.bob)
    r = api.post(f"/users/{bob}/mfa/enforce")
    assert r.status_code == 200 and r.get_json()["mfa"]["admin_state"] == "enforced"
    assert api.get(f"/users/{bob}").get_json()["mfa"]["state"] == "required"
    assert api.post(f"/users/{bob}/mfa/exempt").get_json()["mfa"]["state"] == "exempt"
    with app.app_context():
        session = idp_db.session()
        user = directory.find_user(session, _tenant(app, world), world.bob)
        session.add(Authenticator(tenant_id=user.tenant_id, user_id=user.id, type="totp",
                                  name="Phone", data={"secret": "x"}))
        session.commit()
    assert [f["type"] for f in api.get(f"/users/{bob}/factors").get_json()["factors"]] == ["totp"]
    r = api.post(f"/users/{bob}/mfa/reset")
    assert r.status_code == 200 and r.get_json()["factors"] == []
    assert r.get_json()["mfa"]["must_reenroll"] is True
    assert [e["type"] for e in api.get("/events?type=mfa.").get_json()["items"]] == [
        "mfa.reset", "mfa.exempt", "mfa.enforce"]


def test_enforcing_where_the_tenant_has_mfa_disabled_is_refused(app, world):
    api = api_for(app, app.test_client(), world)
    assert api.put("/policy", json={"mode": "disabled"}).status_code == 200
    r = api.post(f"/users/{subject_of(app, world, world.bob)}/mfa/enforce")
    assert r.status_code == 422 and "disabled" in r.get_json()["detail"]


def test_unlocking_a_locked_user(app, world):
    api = api_for(app, app.test_client(), world)
    bob = subject_of(app, world, world.bob)
    with app.app_context():
        user = directory.find_user(idp_db.session(), _tenant(app, world), world.bob)
        key = account_key(user.tenant_id, user.id, user.email)
    app.extensions["idp.store"].set(key, 50, ex=600)
    assert api.get(f"/users/{bob}/factors").get_json()["mfa"]["locked"] is True
    r = api.post(f"/users/{bob}/unlock")
    assert r.status_code == 200 and r.get_json()["mfa"]["locked"] is False
    assert app.extensions["idp.store"].get(key) is None


def test_ending_sessions_ends_the_portal_s_tokens(app, client, world):
    api = api_for(app, app.test_client(), world)  # its own client: no browser's cookie
    code, verifier = get_code(client, world, world.portal)
    first = redeem(client, world, world.portal, code, verifier).get_json()
    alice = subject_of(app, world, world.alice)
    [session] = api.get(f"/users/{alice}/sessions").get_json()["items"]
    assert session["acr"] == "pwd" and "pwd" in session["amr"]
    assert api.delete(f"/users/{alice}/sessions/{'x' * 43}").status_code == 404
    assert api.delete(f"/users/{alice}/sessions/{session['id']}").status_code == 204
    assert api.get(f"/users/{alice}/sessions").get_json()["items"] == []
    assert introspect(client, world, world.portal, first["access_token"])["active"] is False
    # Signed in again (a new browser), then everywhere at once.
    code, verifier = get_code(app.test_client(), world, world.portal)
    second = redeem(client, world, world.portal, code, verifier).get_json()
    r = api.delete(f"/users/{alice}/sessions")
    assert r.status_code == 200 and r.get_json()["sessions"] == 1 and r.get_json()["tokens"] >= 1
    assert refresh(client, world, world.portal, second["refresh_token"]).status_code == 400


def test_forgetting_remembered_browsers(app, world):
    from idp.journey import remembered

    api = api_for(app, app.test_client(), world)
    bob = subject_of(app, world, world.bob)
    with app.test_request_context():
        session = idp_db.session()
        user = directory.find_user(session, _tenant(app, world), world.bob)
        remembered.issue(session, user.tenant_id, user, 30)
        session.commit()
    assert len(api.get(f"/users/{bob}/factors").get_json()["remembered_browsers"]) == 1
    r = api.delete(f"/users/{bob}/remembered-browsers")
    assert r.status_code == 200 and r.get_json() == {"browsers": 1}
    assert api.get(f"/users/{bob}/factors").get_json()["remembered_browsers"] == []


def test_walking_every_page_finds_each_user_once(app, world):
    api = api_for(app, app.test_client(), world)
    for i in range(23):
        assert api.post("/users", json={"email": f"p{i:02}@walk.example"}).status_code == 201
    seen, url, pages = [], "/users?email_prefix=p&limit=5", 0
    while url:
        page = api.get(url).get_json()
        seen += _emails(page)
        pages += 1
        nxt = page["next"]
        assert (nxt is None) == (page["next_cursor"] is None)
        url = nxt.split("/api/v1", 1)[1] if nxt else None
        if nxt:
            assert "email_prefix=p" in nxt and "limit=5" in nxt
    assert pages == 5 and len(seen) == len(set(seen)) == 23
    assert sorted(seen) == [f"p{i:02}@walk.example" for i in range(23)]
    everyone = api.get("/users?limit=200").get_json()
    assert len(everyone["items"]) == 26 and everyone["next_cursor"] is None


def test_list_filters(app, world):
    api = api_for(app, app.test_client(), world)
    assert _emails(api.get(f"/users?email={world.bob.upper()}").get_json()) == [world.bob]
    assert _emails(api.get("/users?email_prefix=al").get_json()) == [world.alice]
    assert _emails(api.get("/users?email_prefix=%25").get_json()) == []  # no wildcard
    assert _emails(api.get("/users?created_since=2999-01-01T00:00:00Z").get_json()) == []
    assert len(api.get("/users?created_since=2000-01-01T00:00:00Z").get_json()["items"]) == 3
    assert api.post(f"/users/{subject_of(app, world, world.bob)}/mfa/exempt").status_code == 200
    off = _emails(api.get("/users?mfa=off").get_json())
    assert world.bob in off and _emails(api.get("/users?mfa=on").get_json()) == []
    for bad in ("limit=0", "limit=201", "limit=x", "status=gone", "mfa=maybe",
                "created_since=yesterday"):
        r = api.get(f"/users?{bad}")
        assert r.status_code == 422 and r.content_type == "application/problem+json", bad
        assert r.get_json()["errors"][0]["field"] == bad.split("=")[0]
    r = api.get("/users?cursor=bm90LWEtY3Vyc29y")
    assert r.status_code == 400 and r.get_json()["errors"][0]["field"] == "cursor"
