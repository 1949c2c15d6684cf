"""The admin API for the tenant's other resources — groups and members, the sign-in policy,
clients, the audit trail — and what every endpoint shares: idempotent creates and problem
details for every kind of refusal."""

from __future__ import annotations

from tests.support.api import api_for, subject_of
from tests.support.rp import basic
from tests.support.sector import SectorDocument


def test_groups_and_members(app, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/groups", json={"name": "Support"})
    assert r.status_code == 201
    group = r.get_json()
    assert api.post("/groups", json={"name": "Support"}).status_code == 409
    bob, alice = subject_of(app, world, world.bob), subject_of(app, world, world.alice)
    for who in (bob, alice, bob):
        assert api.put(f"/groups/{group['id']}/members/{who}").status_code == 204
    assert api.get(f"/groups/{group['id']}").get_json()["members"] == 2
    first = api.get(f"/groups/{group['id']}/members?limit=1").get_json()
    second = api.get(f"/groups/{group['id']}/members?limit=1&cursor={first['next_cursor']}")
    assert {first["items"][0]["id"], second.get_json()["items"][0]["id"]} == {alice, bob}
    assert second.get_json()["next_cursor"] is None
    assert api.delete(f"/groups/{group['id']}/members/{bob}").status_code == 204
    assert [m["email"] for m in api.get(f"/groups/{group['id']}/members").get_json()["items"]] \
        == [world.alice]
    assert api.get("/groups").get_json()["items"] == [
        {"id": group["id"], "name": "Support", "members": 1}]
    # A group the policy names stays until the policy lets it go.
    assert api.put("/policy", json={"groups": ["Support"]}).status_code == 200
    r = api.delete(f"/groups/{group['id']}")
    assert r.status_code == 409 and "policy" in r.get_json()["detail"]
    assert api.put("/policy", json={"groups": []}).status_code == 200
    assert api.delete(f"/groups/{group['id']}").status_code == 204
    assert api.get(f"/groups/{group['id']}").status_code == 404
    assert api.get(f"/users/{alice}").get_json()["groups"] == []
    assert api.get("/groups/not-a-number").status_code == 404


def test_the_policy_is_read_and_changed_through_the_same_checks(app, world):
    api = api_for(app, app.test_client(), world)
    before = api.get("/policy").get_json()
    assert before["mode"] == "optional"
    r = api.put("/policy", json={"mode": "required", "factors": ["totp", "webauthn"],
                                 "lock_after": 7})
    assert r.status_code == 200
    assert (r.get_json()["mode"], r.get_json()["factors"], r.get_json()["lock_after"]) == (
        "required", ["webauthn", "totp"], 7)
    # A refused value changes nothing, also what came before it in the same request.
    r = api.put("/policy", json={"mode": "disabled", "lock_minutes": 0})
    assert r.status_code == 422 and "lock-minutes" in r.get_json()["detail"]
    assert api.get("/policy").get_json()["mode"] == "required"
    r = api.put("/policy", json={"mode": "sometimes", "lock_after": None})
    assert r.status_code == 422
    r = api.put("/policy", json={"lock_after": None})
    assert r.status_code == 422 and r.get_json()["errors"] == [
        {"field": "lock_after", "message": "null"}]
    event = api.get("/events?type=policy.changed").get_json()["items"][0]
    assert event["data"]["changes"]["mode"] == "required"


def test_clients_register_rotate_change_and_go(app, client, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/clients", json={"name": "Reports", "grant_types": ["client_credentials"],
                                   "scope": "admin:read"})
    assert r.status_code == 201, r.get_data(as_text=True)
    made = r.get_json()
    assert made["client_secret"] and made["scope"] == "admin:read"
    token = client.post(f"/t/{world.slug}/token", headers=basic(made["client_id"],
                                                                 made["client_secret"]),
                        data={"grant_type": "client_credentials", "scope": "admin:read"})
    assert token.status_code == 200
    listed = api.get("/clients").get_json()["items"]
    assert made["client_id"] in [c["client_id"] for c in listed]
    assert all("client_secret" not in c for c in listed)
    rotated = api.post(f"/clients/{made['client_id']}/secret").get_json()["client_secret"]
    assert rotated != made["client_secret"]
    old = client.post(f"/t/{world.slug}/token", headers=basic(made["client_id"],
                                                               made["client_secret"]),
                      data={"grant_type": "client_credentials"})
    assert old.status_code == 401
    r = api.patch(f"/clients/{made['client_id']}", json={"name": "Reporting", "scope": ""})
    assert r.status_code == 200 and (r.get_json()["name"], r.get_json()["scope"]) == (
        "Reporting", "")
    r = api.patch(f"/clients/{made['client_id']}", json={"redirect_uris": ["ftp://x"]})
    assert r.status_code == 422
    r = api.post("/clients", json={"name": "SPA", "public": True,
                                   "grant_types": ["client_credentials"]})
    assert r.status_code == 422 and "public" in r.get_json()["detail"]
    assert api.delete(f"/clients/{made['client_id']}").status_code == 204
    assert api.get(f"/clients/{made['client_id']}").status_code == 404
    r = api.delete(f"/clients/{world.service.client_id}")
    assert r.status_code == 409  # the service's own


def test_events_page_by_cursor_and_filter_by_time(app, world):
    api = api_for(app, app.test_client(), world)
    for i in range(5):
        api.post("/groups", json={"name": f"G{i}"})
    ids, url = [], "/events?type=group.&limit=2"
    while url:
        page = api.get(url).get_json()
        ids += [e["id"] for e in page["items"]]
        url = f"/events?type=group.&limit=2&cursor={page['next_cursor']}" \
            if page["next_cursor"] else None
    assert len(ids) == len(set(ids)) == 5 and ids == sorted(ids, reverse=True)
    assert api.get("/events?since=2999-01-01T00:00:00Z").get_json()["items"] == []
    assert api.get("/events?until=2000-01-01T00:00:00Z").get_json()["items"] == []
    r = api.get("/events?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z")
    assert r.status_code == 422


def test_a_create_sent_twice_with_one_key_happens_once(app, world):
    api = api_for(app, app.test_client(), world)
    key = {"Idempotency-Key": "create-sales-1"}
    first = api.post("/groups", json={"name": "Sales"}, headers=key)
    again = api.post("/groups", json={"name": "Sales"}, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert [g["name"] for g in api.get("/groups").get_json()["items"]] == ["Sales"]
    other = api.post("/groups", json={"name": "Finance"}, headers=key)
    assert other.status_code == 422 and "another request" in other.get_json()["detail"]
    # A client's secret is shown again to a retry (the first answer may have been lost).
    body = {"name": "Svc", "grant_types": ["client_credentials"]}
    made = api.post("/clients", json=body, headers={"Idempotency-Key": "svc"}).get_json()
    replay = api.post("/clients", json=body, headers={"Idempotency-Key": "svc"}).get_json()
    assert replay["client_secret"] == made["client_secret"]
    assert len(api.get("/clients").get_json()["items"]) == 4
    # A refused create is not kept: corrected, the same key goes through.
    key = {"Idempotency-Key": "user-1"}
    assert api.post("/users", json={"email": world.bob}, headers=key).status_code == 409
    assert api.post("/users", json={"email": "new@x.example"}, headers=key).status_code == 201
    assert api.post("/groups", json={"name": "X"},
                    headers={"Idempotency-Key": "bad key é"}).status_code == 400


def test_one_key_is_one_caller_s(app, world):
    """Another client's same key is its own."""
    api = api_for(app, app.test_client(), world)
    made = api.post("/clients", json={"name": "Other", "grant_types": ["client_credentials"],
                                      "scope": "admin:write"}).get_json()
    from tests.support.api import Api

    token = app.test_client().post(
        f"/t/{world.slug}/token", headers=basic(made["client_id"], made["client_secret"]),
        data={"grant_type": "client_credentials", "scope": "admin:write"}).get_json()
    other = Api(app.test_client(), world.slug, token["access_token"])
    key = {"Idempotency-Key": "shared"}
    assert api.post("/groups", json={"name": "A"}, headers=key).status_code == 201
    assert other.post("/groups", json={"name": "B"}, headers=key).status_code == 201


def test_every_refusal_is_a_problem(app, world):
    api = api_for(app, app.test_client(), world)
    bob = subject_of(app, world, world.bob)
    cases = [
        (api.call("PATCH", f"/users/{bob}", data="{not json", content_type="application/json"),
         400),
        (api.call("PATCH", f"/users/{bob}", data="name=x",
                  content_type="application/x-www-form-urlencoded"), 415),
        (api.call("PATCH", f"/users/{bob}", data="[1]", content_type="application/json"), 422),
        (api.patch(f"/users/{bob}", json={"name": "a\x00b"}), 422),
        (api.get("/users/nobody"), 404),
        (api.get("/no/such/path"), 404),
        (api.call("PUT", "/users"), 405),
        (api.client.get("/t/no-such-tenant/api/v1/users"), 404),
        (api.client.get(f"/t/{world.slug}/api/v1/users",
                        headers={"Authorization": "Bearer nonsense"}), 401),
    ]
    for response, status in cases:
        problem = response.get_json()
        assert response.status_code == status, (status, response.get_data(as_text=True))
        assert response.content_type == "application/problem+json"
        assert problem["status"] == status and problem["title"] and problem["detail"]
        assert problem["type"] == "about:blank"
    assert cases[6][0].headers["Allow"]
    assert cases[8][0].headers["WWW-Authenticate"].startswith("Bearer ")
    assert 'error="invalid_token"' in cases[8][0].headers["WWW-Authenticate"]


def test_a_request_without_a_body_is_read_as_an_empty_object(app, world):
    api = api_for(app, app.test_client(), world)
    bob = subject_of(app, world, world.bob)
    r = api.client.patch(f"/t/{world.slug}/api/v1/users/{bob}",
                         headers={"Authorization": f"Bearer {api.access_token}"})
    assert r.status_code == 200 and r.get_json()["name"] == "Bob"  # nothing to change
    r = api.client.post(f"/t/{world.slug}/api/v1/users",
                        headers={"Authorization": f"Bearer {api.access_token}"})
    assert r.status_code == 422 and r.get_json()["errors"][0]["field"] == "email"


def test_clients_choose_pairwise_subjects_with_their_sector(app, world):
    api = api_for(app, app.test_client(), world)
    spread = {"name": "Shop", "subject_type": "pairwise",
              "redirect_uris": ["https://www.shop.test/cb", "https://m.shop.test/cb"]}
    r = api.post("/clients", json=spread)
    assert r.status_code == 422 and "need a sector identifier URI" in r.get_json()["detail"]
    with SectorDocument(spread["redirect_uris"]) as sector:
        r = api.post("/clients", json={**spread, "sector_identifier_uri": sector.url})
        assert r.status_code == 201, r.get_data(as_text=True)
        made = r.get_json()
        assert (made["subject_type"], made["sector_identifier_uri"]) == ("pairwise", sector.url)
        # A new redirect URI the sector document does not list is refused; nothing changes.
        r = api.patch(f"/clients/{made['client_id']}",
                      json={"redirect_uris": [*spread["redirect_uris"], "https://x.test/cb"]})
        assert r.status_code == 422 and "does not list the redirect URI(s) https://x.test/cb" \
            in r.get_json()["detail"]
    r = api.patch(f"/clients/{made['client_id']}",
                  json={"subject_type": "public", "confirm_new_subjects": True})
    assert r.status_code == 200 and r.get_json()["subject_type"] == "public"
    assert api.get(f"/clients/{world.portal.client_id}").get_json()["subject_type"] == "public"


def test_a_change_that_gives_every_user_a_new_sub_needs_a_confirmation(app, world):
    api = api_for(app, app.test_client(), world)
    portal = f"/clients/{world.portal.client_id}"
    r = api.patch(portal, json={"subject_type": "pairwise", "name": "Renamed"})
    assert r.status_code == 409 and r.headers["Content-Type"] == "application/problem+json"
    problem = r.get_json()
    assert "Every user of this client would get a new sub" in problem["detail"]
    assert '"confirm_new_subjects": true' in problem["detail"]
    assert problem["errors"][0]["field"] == "confirm_new_subjects"
    unchanged = api.get(portal).get_json()
    assert (unchanged["subject_type"], unchanged["name"]) == ("public", "Portal")  # nothing at all
    r = api.patch(portal, json={"subject_type": "pairwise", "confirm_new_subjects": True})
    assert r.status_code == 200 and r.get_json()["subject_type"] == "pairwise"
    # Its sector moving to another host changes every sub again; a URI on the same host does not.
    moved = {"redirect_uris": ["https://new-portal.test/callback"]}
    assert api.patch(portal, json=moved).status_code == 409
    assert api.get(portal).get_json()["redirect_uris"] == ["https://portal.test/callback"]
    same_host = ["https://portal.test/callback", "https://portal.test/other"]
    r = api.patch(portal, json={"redirect_uris": same_host, "name": "Renamed"})
    assert r.status_code == 200 and r.get_json()["name"] == "Renamed"
    assert api.patch(portal, json={**moved, "confirm_new_subjects": True}).status_code == 200
    # A public client's redirect URIs are nothing to its sub: no confirmation.
    assert api.patch(f"/clients/{world.spa.client_id}",
                     json={"redirect_uris": ["http://localhost:4000/cb"]}).status_code == 200
