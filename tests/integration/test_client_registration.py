"""Dynamic client registration (RFC 7591) behind an administrator's initial access token, and
the client configuration endpoint (RFC 7592), driven as a developer's script does: plain HTTP
with the tokens as bearer credentials. A registered portal then signs people in with Authlib's
client (tests/integration/test_client_registration_live.py)."""

from __future__ import annotations

from joserfc.jwk import ECKey

from tests.support.api import api_for
from tests.support.registration import (allow_redirect_hosts, expire_tokens, initial_token,
                                        metadata)
from tests.support.rp import basic
from tests.support.world import make_world


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def register(client, world, token, body=None):
    return client.post(f"/t/{world.slug}/register", json=body or metadata(), headers=bearer(token))


def events(app, world, action):
    api = api_for(app, app.test_client(), world)
    return api.get(f"/events?type={action}").get_json()["items"]


def test_discovery_names_the_registration_endpoint(client, world):
    doc = client.get(f"/t/{world.slug}/.well-known/openid-configuration").get_json()
    assert doc["registration_endpoint"] == f"{world.issuer}/register"


def test_a_registration_returns_the_client_as_stored_with_its_credentials(app, client, world):
    token = initial_token(app, world)
    r = register(client, world, token, metadata(
        client_uri="https://partner.test", logo_uri="https://partner.test/logo.png",
        contacts=["dev@partner.test"], software_id="partner-portal", software_version="2.1",
        unknown_field="ignored"))
    assert r.status_code == 201, r.get_json()
    assert r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert body["client_name"] == "Partner portal"
    assert body["redirect_uris"] == ["https://app.partner.test/callback"]
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["client_secret"] and body["client_secret_expires_at"] == 0
    assert isinstance(body["client_id_issued_at"], int)
    assert body["registration_client_uri"] == f"{world.issuer}/register/{body['client_id']}"
    assert r.headers["Location"] == body["registration_client_uri"]
    assert body["software_id"] == "partner-portal" and body["contacts"] == ["dev@partner.test"]
    assert "unknown_field" not in body
    # The secret works at the token endpoint right away (client credentials are not
    # registered: the grant is refused as a client, not as a stranger).
    r = client.post(f"/t/{world.slug}/token", headers=basic(body["client_id"], body["client_secret"]),
                    data={"grant_type": "client_credentials"})
    assert r.get_json()["error"] == "unauthorized_client"
    registered = events(app, world, "client.registered")
    assert registered[0]["client_id"] == body["client_id"]


def test_a_public_client_registers_without_a_secret(app, client, world):
    r = register(client, world, initial_token(app, world), metadata(
        "http://127.0.0.1:9000/cb", token_endpoint_auth_method="none"))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert "client_secret" not in body and body["token_endpoint_auth_method"] == "none"


def test_without_a_valid_initial_token_nothing_is_registered(app, client, world):
    assert register(client, world, "").status_code == 401
    r = client.post(f"/t/{world.slug}/register", json=metadata())
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert register(client, world, "not-a-token").get_json()["error"] == "invalid_token"
    # Used up: one registration, then no more.
    once = initial_token(app, world, uses=1)
    assert register(client, world, once).status_code == 201
    assert register(client, world, once).status_code == 401
    # Expired.
    expiring = initial_token(app, world, expires_in_days=1)
    expire_tokens(app, world)
    assert register(client, world, expiring).status_code == 401
    # Revoked through the admin API.
    api = api_for(app, app.test_client(), world)
    revoked = initial_token(app, world, name="Revoked team")
    token_id = next(t["id"] for t in api.get("/registration-tokens").get_json()["items"]
                    if t["name"] == "Revoked team")
    assert api.delete(f"/registration-tokens/{token_id}").status_code == 204
    assert register(client, world, revoked).status_code == 401
    assert len(events(app, world, "client.registered")) == 1


def test_a_refused_registration_does_not_use_up_the_token(app, client, world):
    once = initial_token(app, world, uses=1)
    r = register(client, world, once, metadata(grant_types=["implicit"]))
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_client_metadata"
    assert "implicit" in r.get_json()["error_description"]
    assert register(client, world, once).status_code == 201


def test_the_tenant_redirect_hosts_bound_every_redirect_uri(app, client, world):
    allow_redirect_hosts(app, world, "*.partner.test", "portal.example.com")
    token = initial_token(app, world)
    assert register(client, world, token, metadata("https://app.partner.test/cb")).status_code == 201
    assert register(client, world, token,
                    metadata("https://portal.example.com/cb")).status_code == 201
    for outside in ("https://partner.test/cb",  # "*." is for sub-domains only
                    "https://evil.test/cb", "https://app.partner.test.evil.test/cb",
                    "https://sub.portal.example.com/cb"):
        r = register(client, world, token, metadata(outside))
        assert r.status_code == 400, outside
        assert r.get_json()["error"] == "invalid_redirect_uri"
        assert "*.partner.test" in r.get_json()["error_description"]
    r = register(client, world, token, metadata(
        "https://app.partner.test/cb", post_logout_redirect_uris=["https://evil.test/bye"]))
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_client_metadata"


def test_without_host_rules_the_usual_redirect_rules_hold(app, client, world):
    token = initial_token(app, world)
    for bad in ("http://portal.test/cb", "https://portal.test/cb#fragment", "ftp://x.test/",
                "not a url"):
        r = register(client, world, token, metadata(bad))
        assert (r.status_code, r.get_json()["error"]) == (400, "invalid_redirect_uri"), bad
    r = register(client, world, token, {"client_name": "No redirect"})
    assert r.get_json()["error"] == "invalid_redirect_uri"


def test_admin_scopes_and_bad_metadata_are_refused_with_a_reason(app, client, world):
    token = initial_token(app, world)
    for body, words in (
            (metadata(scope="openid admin:write"), "admin:write"),
            (metadata(grant_types=["client_credentials"], response_types=[],
                      scope="admin:read"), "admin:read"),
            (metadata(scope="openid payroll"), "payroll"),
            (metadata(response_types=["token"]), "response_types"),
            (metadata(token_endpoint_auth_method="client_secret_jwt"),
             "token_endpoint_auth_method"),
            (metadata(token_endpoint_auth_method="private_key_jwt"), "private_key_jwt"),
            (metadata(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "jwks"),
            (metadata(id_token_signed_response_alg="none"), "id_token_signed_response_alg"),
            (metadata(logo_uri="http://partner.test/logo.png"), "logo_uri"),
            (metadata(redirect_uris="https://app.partner.test/cb"), "redirect_uris"),
            (metadata(dpop_bound_access_tokens="yes"), "dpop_bound_access_tokens"),
            (metadata(subject_type="secret"), "subject_type")):
        r = register(client, world, token, body)
        assert r.status_code == 400, (body, r.get_json())
        assert words in r.get_json()["error_description"], r.get_json()
    r = client.post(f"/t/{world.slug}/register", data="{not json", headers={
        **bearer(token), "Content-Type": "application/json"})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_client_metadata"
    assert events(app, world, "client.registered") == []


def test_a_refusal_is_english_whatever_language_the_caller_asks_for(app, client, world):
    """Its error_description is for the client's developers (US-ASCII, RFC 6749 5.2), though
    the same reason is German on a German console page."""
    short = metadata(grant_types=["client_credentials"], response_types=[],
                     scope="openid", token_endpoint_auth_method="private_key_jwt",
                     jwks={"keys": [ECKey.generate_key("P-256").as_dict(private=False)
                                    for _ in range(2)]})  # two keys without a kid
    r = client.post(f"/t/{world.slug}/register", json=short, headers={
        **bearer(initial_token(app, world)), "Accept-Language": "de-DE,de;q=0.9"})
    assert r.status_code == 400
    assert 'with several keys, each needs a "kid"' in r.get_json()["error_description"]
    assert r.get_json()["error_description"].isascii()


def test_the_protocol_options_are_registered(app, client, world):
    jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "k1"}
    r = register(client, world, initial_token(app, world), metadata(
        token_endpoint_auth_method="private_key_jwt", jwks={"keys": [jwk]},
        dpop_bound_access_tokens=True, require_pushed_authorization_requests=True,
        request_object_signing_alg="ES256", require_signed_request_object=True,
        subject_type="pairwise", id_token_signed_response_alg="ES256",
        backchannel_logout_uri="https://app.partner.test/logout",
        backchannel_logout_session_required=True))
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert "client_secret" not in body
    for key, value in (("token_endpoint_auth_method", "private_key_jwt"),
                       ("dpop_bound_access_tokens", True),
                       ("require_pushed_authorization_requests", True),
                       ("request_object_signing_alg", "ES256"),
                       ("require_signed_request_object", True), ("subject_type", "pairwise"),
                       ("id_token_signed_response_alg", "ES256"),
                       ("backchannel_logout_uri", "https://app.partner.test/logout")):
        assert body[key] == value, key
    assert body["jwks"]["keys"][0]["kid"] == "k1"


def test_the_registration_access_token_reads_replaces_and_deletes(app, client, world):
    body = register(client, world, initial_token(app, world)).get_json()
    uri, auth = f"/t/{world.slug}/register/{body['client_id']}", bearer(body["registration_access_token"])
    r = client.get(uri, headers=auth)
    assert r.status_code == 200 and r.get_json()["client_name"] == "Partner portal"
    assert "client_secret" not in r.get_json()
    # PUT replaces everything (RFC 7592 2.2): what is left out goes back to its default.
    change = {"client_id": body["client_id"], "client_name": "Partner portal 2",
              "redirect_uris": ["https://new.partner.test/cb"]}
    r = client.put(uri, json=change, headers=auth)
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["redirect_uris"] == ["https://new.partner.test/cb"]
    assert r.get_json()["grant_types"] == ["authorization_code"]
    assert r.get_json()["post_logout_redirect_uris"] == []
    assert r.get_json()["registration_access_token"] == body["registration_access_token"]
    assert client.get(uri, headers=auth).get_json()["client_name"] == "Partner portal 2"
    # The secret is unchanged by a replacement.
    t = client.post(f"/t/{world.slug}/token", headers=basic(body["client_id"], body["client_secret"]),
                    data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert t.get_json()["error"] != "invalid_client"
    for wrong in ({**change, "client_id": "someone-else"},
                  {**change, "client_secret": "not-the-secret"},
                  {**change, "redirect_uris": ["http://plain.test/cb"]}):
        r = client.put(uri, json=wrong, headers=auth)
        assert r.status_code == 400, wrong
    assert client.get(uri, headers=auth).get_json()["redirect_uris"] == ["https://new.partner.test/cb"]
    assert client.delete(uri, headers=auth).status_code == 204
    assert client.get(uri, headers=auth).status_code == 401
    t = client.post(f"/t/{world.slug}/token", headers=basic(body["client_id"], body["client_secret"]),
                    data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert t.get_json()["error"] == "invalid_client"


def test_a_registration_access_token_works_for_its_own_client_only(app, settings, client, world):
    token = initial_token(app, world)
    first, second = (register(client, world, token).get_json() for _ in range(2))
    other = f"/t/{world.slug}/register/{second['client_id']}"
    for method in ("get", "put", "delete"):
        r = getattr(client, method)(other, json={"client_id": second["client_id"]},
                                    headers=bearer(first["registration_access_token"]))
        assert r.status_code == 401, method
    assert client.get(other, headers=bearer(second["registration_access_token"])).status_code == 200
    # A portal an admin registered has no registration access token at all.
    admins = f"/t/{world.slug}/register/{world.portal.client_id}"
    assert client.get(admins, headers=bearer(first["registration_access_token"])).status_code == 401
    assert client.get(admins).status_code == 401
    # Nor does the token work at another tenant's address for the same client.
    tenant_b = make_world(app, settings)
    r = client.get(f"/t/{tenant_b.slug}/register/{first['client_id']}",
                   headers=bearer(first["registration_access_token"]))
    assert r.status_code == 401


def test_another_tenants_initial_token_is_refused(app, settings, client, world):
    tenant_b = make_world(app, settings)
    token_b = initial_token(app, tenant_b)
    r = register(client, world, token_b)
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_token"
    assert register(client, tenant_b, token_b).status_code == 201


def test_the_admin_api_creates_lists_and_revokes_initial_tokens(app, world):
    api = api_for(app, app.test_client(), world)
    r = api.post("/registration-tokens", json={"name": "Payroll team", "expires_in_days": 7,
                                               "uses": 3})
    assert r.status_code == 201, r.get_json()
    issued = r.get_json()
    assert issued["token"] and issued["uses_left"] == 3 and issued["state"] == "active"
    assert issued["registration_endpoint"] == f"{world.issuer}/register"
    listed = api.get("/registration-tokens").get_json()["items"]
    assert [t["name"] for t in listed] == ["Payroll team"]
    assert "token" not in listed[0]
    assert api.delete(f"/registration-tokens/{issued['id']}").status_code == 204
    assert api.get("/registration-tokens").get_json()["items"][0]["state"] == "revoked"
    assert api.delete("/registration-tokens/nope").status_code == 404
    r = api.post("/registration-tokens", json={"name": ""})
    assert r.status_code == 422
    assert events(app, world, "registration_token.created")[0]["data"]["name"] == "Payroll team"
    assert events(app, world, "registration_token.revoked")[0]["data"]["name"] == "Payroll team"
    reader = api_for(app, app.test_client(), world, "admin:read")
    assert reader.get("/registration-tokens").status_code == 200
    assert reader.post("/registration-tokens", json={"name": "x"}).status_code == 403


def test_the_cli_creates_lists_and_revokes_initial_tokens(idp, world):
    import json

    code, out, err = idp("registration-token", "create", world.slug, "--name", "Partner team",
                         "--expires-in", "30", "--uses", "2")
    assert code == 0, err
    issued = json.loads(out)
    assert issued["token"] and issued["uses_left"] == 2 and issued["expires_at"]
    code, out, err = idp("registration-token", "list", world.slug)
    assert code == 0, err
    items = json.loads(out)["items"]
    assert [i["id"] for i in items] == [issued["id"]] and "token" not in items[0]
    code, out, err = idp("registration-token", "revoke", world.slug, issued["id"])
    assert code == 0 and json.loads(out)["state"] == "revoked", err
    code, out, err = idp("registration-token", "revoke", world.slug, "nope")
    assert code == 1 and "no registration token" in err
    code, out, err = idp("registration-token", "create", world.slug, "--name", "Old",
                         "--expires", "2001-01-01")
    assert code == 1 and "future" in err


def test_a_pairwise_registration_is_checked_against_its_sector_document(app, client, world):
    """OIDC Registration 5: the redirect URIs of a pairwise client on several hosts must all be
    in the document at its sector_identifier_uri, which we fetch when it registers."""
    from tests.support.sector import SectorDocument

    uris = ["https://app.partner.test/callback", "https://other.partner.test/callback"]
    token = initial_token(app, world)
    with SectorDocument(uris) as sector:
        r = register(client, world, token, metadata(redirect_uris=uris, subject_type="pairwise",
                                                    sector_identifier_uri=sector.url))
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["subject_type"] == "pairwise"
    with SectorDocument(uris[:1]) as sector:
        r = register(client, world, token, metadata(redirect_uris=uris, subject_type="pairwise",
                                                    sector_identifier_uri=sector.url))
    assert r.status_code == 400
    assert r.get_json()["error"] == "invalid_client_metadata"
    assert "other.partner.test" in r.get_json()["error_description"]


def test_a_redirect_uri_that_browsers_read_as_another_host_is_refused(app, client, world):
    # Python's urlsplit reads the host of "https://evil.test\@app.partner.test/cb" as
    # app.partner.test; a browser (WHATWG URL) reads "\" as "/" and goes to evil.test, code
    # and all. A user name before the host fools a reader the same way.
    allow_redirect_hosts(app, world, "*.partner.test")
    token = initial_token(app, world)
    for tricky in ("https://evil.test\\@app.partner.test/cb",
                   "https://evil.test%5C@app.partner.test/cb",
                   "https://evil.test@app.partner.test/cb",
                   "https://app.partner.test\\.evil.test/cb"):
        r = register(client, world, token, metadata(tricky))
        assert r.status_code == 400, tricky
        assert r.get_json()["error"] == "invalid_redirect_uri", tricky
    assert register(client, world, token, metadata("https://app.partner.test/cb")).status_code == 201


def test_json_nested_too_deep_is_invalid_metadata_not_a_crash(app, client, world):
    token = initial_token(app, world)
    r = client.post(f"/t/{world.slug}/register", data="[" * 5000,
                    content_type="application/json", headers=bearer(token))
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_client_metadata")
    made = register(client, world, token).get_json()
    r = client.put(f"/t/{world.slug}/register/{made['client_id']}", data='{"a":' * 5000,
                   content_type="application/json",
                   headers=bearer(made["registration_access_token"]))
    assert (r.status_code, r.get_json()["error"]) == (400, "invalid_client_metadata")


def test_a_pairwise_clients_subjects_cannot_be_moved_by_a_replacement(app, client, world):
    # A client with refresh tokens that moved its sector to another portal's host would
    # refresh into that portal's pairwise sub of each user (or into the public sub), and
    # link the two: its subject type and sector stay as registered.
    body = register(client, world, initial_token(app, world), metadata(
        "https://app.partner.test/cb", subject_type="pairwise")).get_json()
    assert body["subject_type"] == "pairwise"
    uri, auth = f"/t/{world.slug}/register/{body['client_id']}", bearer(body["registration_access_token"])
    base = {"client_id": body["client_id"], "client_name": "Partner portal"}
    for moved in ({**base, "redirect_uris": ["https://victim.test/cb"], "subject_type": "pairwise"},
                  {**base, "redirect_uris": ["https://app.partner.test/cb"]},  # back to public
                  {**base, "redirect_uris": ["https://app.partner.test/cb"], "subject_type": "public"}):
        r = client.put(uri, json=moved, headers=auth)
        assert (r.status_code, r.get_json()["error"]) == (400, "invalid_client_metadata"), moved
        assert "sub of every user would change" in r.get_json()["error_description"]
    kept = {**base, "redirect_uris": ["https://app.partner.test/other-cb"], "subject_type": "pairwise"}
    r = client.put(uri, json=kept, headers=auth)
    assert r.status_code == 200 and r.get_json()["redirect_uris"] == ["https://app.partner.test/other-cb"]
    # A public client stays public too.
    public = register(client, world, initial_token(app, world)).get_json()
    r = client.put(f"/t/{world.slug}/register/{public['client_id']}", headers=bearer(
        public["registration_access_token"]), json={"client_id": public["client_id"],
        "redirect_uris": ["https://app.partner.test/cb"], "subject_type": "pairwise"})
    assert r.status_code == 400
