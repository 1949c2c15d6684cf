"""DPoP (RFC 9449): sender-constrained tokens, as a client that holds a key uses them.

Proofs are made with joserfc (``tests.support.dpop``); relying parties are Authlib's OAuth 2
client at a live server where a flow runs end to end, Flask's test client for the many ways a
proof can be wrong. Every refusal is one a client would see: an OAuth error, a challenge.
"""

from __future__ import annotations

import base64
import secrets
import time

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import g

from idp import db as idp_db, directory, web
from idp.oidc import dpop as server_dpop
from idp.models import Tenant, TenantProtocol
from tests.support.dpop import Holder, hmac_proof, unsigned_proof
from tests.support.journey import Browser, pkce_pair, query
from tests.support.relying_party import browse, discovery
from tests.support.rp import basic, get_code, introspect, jwt_claims
from tests.support.world import ClientCreds


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def token_url(world) -> str:
    return f"{world.issuer}/token"


def post_token(client, world, data, proof=None, headers=None):
    headers = dict(headers or {})
    if proof is not None:
        headers["DPoP"] = proof
    return client.post(f"/t/{world.slug}/token", data=data, headers=headers)


def service_token(client, world, holder: Holder | None = None, proof=None, **extra):
    proof = proof if proof is not None else (holder.proof("POST", token_url(world)) if holder else None)
    return post_token(client, world, {"grant_type": "client_credentials", **extra}, proof,
                      basic(world.service.client_id, world.service.client_secret))


def redeem(client, world, creds, code, verifier, proof=None):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": creds.redirect_uri,
            "code_verifier": verifier}
    headers = {}
    if creds.client_secret:
        headers = basic(creds.client_id, creds.client_secret)
    else:
        data["client_id"] = creds.client_id
    return post_token(client, world, data, proof, headers)


def refresh(client, world, creds, refresh_token, proof=None):
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    headers = {}
    if creds.client_secret:
        headers = basic(creds.client_id, creds.client_secret)
    else:
        data["client_id"] = creds.client_id
    return post_token(client, world, data, proof, headers)


def userinfo(client, world, token, holder: Holder | None = None, scheme="DPoP", proof=None):
    headers = {"Authorization": f"{scheme} {token}"}
    if proof is None and holder is not None:
        proof = holder.proof("GET", f"{world.issuer}/userinfo", access_token=token)
    if proof is not None:
        headers["DPoP"] = proof
    return client.get(f"/t/{world.slug}/userinfo", headers=headers)


def set_nonce_required(app, world, required: bool = True):
    with app.app_context():
        session = idp_db.session()
        tenant = session.query(Tenant).filter_by(slug=world.slug).one()
        row = session.get(TenantProtocol, tenant.id) or TenantProtocol(tenant_id=tenant.id)
        row.dpop_nonce_required = required
        session.add(row)
        session.commit()


def dpop_client(app, world, public=False) -> ClientCreds:
    """A portal registered for DPoP-bound tokens only."""
    uri = "https://bound.test/cb"
    with app.app_context():
        session = idp_db.session()
        tenant = session.query(Tenant).filter_by(slug=world.slug).one()
        new = directory.create_client(session, tenant, "Bound portal", [uri], public=public,
                                      dpop_bound_access_tokens=True)
        session.commit()
        return ClientCreds(new.client.client_id, new.secret, uri, f"{uri}/bye")


def error_of(response) -> str:
    return response.get_json()["error"]


# -- end to end, with Authlib's client -----------------------------------------------------------

def test_public_client_code_flow_refresh_and_userinfo_bound_to_its_key(live_server, live_world):
    provider = discovery(live_world.issuer)
    assert "ES256" in provider["dpop_signing_alg_values_supported"]
    holder = Holder()
    spa = live_world.spa
    oauth = OAuth2Session(spa.client_id, None, scope="openid profile offline_access",
                          redirect_uri=spa.redirect_uri, code_challenge_method="S256",
                          token_endpoint_auth_method="none")
    verifier, state = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, _ = oauth.create_authorization_url(provider["authorization_endpoint"], state=state,
                                            code_verifier=verifier, nonce="n-1",
                                            dpop_jkt=holder.jkt)
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      spa.redirect_uri)
    token_endpoint = provider["token_endpoint"]
    token = oauth.fetch_token(token_endpoint, authorization_response=callback, state=state,
                              code_verifier=verifier,
                              headers={"DPoP": holder.proof("POST", token_endpoint)})
    assert token["token_type"] == "DPoP"
    assert jwt_claims(token["access_token"])["cnf"] == {"jkt": holder.jkt}

    def userinfo_live(access_token, **kw):
        proof = holder.proof("GET", provider["userinfo_endpoint"], access_token=access_token)
        return requests.get(provider["userinfo_endpoint"], timeout=10, headers={
            "Authorization": f"DPoP {access_token}", "DPoP": proof, **kw})

    answer = userinfo_live(token["access_token"])
    assert answer.status_code == 200, answer.text
    assert answer.json()["sub"] == jwt_claims(token["access_token"])["sub"]

    # The refresh token is bound too (a public client): another key cannot use it ...
    thief = Holder()
    with pytest.raises(Exception) as refused:
        oauth.refresh_token(token_endpoint, refresh_token=token["refresh_token"],
                            headers={"DPoP": thief.proof("POST", token_endpoint)})
    assert "invalid_dpop_proof" in str(refused.value)
    # ... nor no key at all; the holder can, and its new access token stays bound to it.
    no_proof = requests.post(token_endpoint, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "client_id": spa.client_id})
    assert no_proof.status_code == 400 and no_proof.json()["error"] == "invalid_dpop_proof"
    renewed = oauth.refresh_token(token_endpoint, refresh_token=token["refresh_token"],
                                  headers={"DPoP": holder.proof("POST", token_endpoint)})
    assert renewed["token_type"] == "DPoP"
    assert jwt_claims(renewed["access_token"])["cnf"] == {"jkt": holder.jkt}
    assert userinfo_live(renewed["access_token"]).status_code == 200


def test_client_credentials_with_authlib_bound_and_introspected(live_world):
    provider = discovery(live_world.issuer)
    holder = Holder("EdDSA")
    service = live_world.service
    oauth = OAuth2Session(service.client_id, service.client_secret)
    token = oauth.fetch_token(provider["token_endpoint"], grant_type="client_credentials",
                              headers={"DPoP": holder.proof("POST", provider["token_endpoint"])})
    assert token["token_type"] == "DPoP"
    assert jwt_claims(token["access_token"])["cnf"] == {"jkt": holder.jkt}
    seen = requests.post(provider["introspection_endpoint"], timeout=10,
                         data={"token": token["access_token"]},
                         auth=(live_world.portal.client_id, live_world.portal.client_secret)).json()
    assert seen["active"] and seen["token_type"] == "DPoP" and seen["cnf"] == {"jkt": holder.jkt}


# -- the token endpoint ------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_each_supported_algorithm_binds_a_service_token(client, world, alg):
    holder = Holder(alg)
    answer = service_token(client, world, holder)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["token_type"] == "DPoP"
    assert jwt_claims(answer.get_json()["access_token"])["cnf"]["jkt"] == holder.jkt


def test_without_proof_tokens_stay_bearer(client, world):
    answer = service_token(client, world)
    assert answer.get_json()["token_type"] == "Bearer"
    assert "cnf" not in jwt_claims(answer.get_json()["access_token"])


def test_code_flow_with_confidential_client_binds_tokens_and_introspection_shows_cnf(client, world):
    holder = Holder()
    code, verifier = get_code(client, world, world.portal)
    answer = redeem(client, world, world.portal, code, verifier,
                    holder.proof("POST", token_url(world)))
    assert answer.status_code == 200, answer.get_json()
    tokens = answer.get_json()
    assert tokens["token_type"] == "DPoP"
    seen = introspect(client, world, world.portal, tokens["access_token"])
    assert seen["token_type"] == "DPoP" and seen["cnf"] == {"jkt": holder.jkt}
    # A confidential client's refresh token is bound to its authentication, not the key
    # (RFC 9449 5): it may move to a new key, and the new access token is bound to that one.
    assert "cnf" not in introspect(client, world, world.portal, tokens["refresh_token"])
    new_key = Holder()
    renewed = refresh(client, world, world.portal, tokens["refresh_token"],
                      new_key.proof("POST", token_url(world)))
    assert renewed.status_code == 200, renewed.get_json()
    assert jwt_claims(renewed.get_json()["access_token"])["cnf"]["jkt"] == new_key.jkt
    # A DPoP-bound grant is not refreshed into Bearer tokens.
    bare = refresh(client, world, world.portal, renewed.get_json()["refresh_token"])
    assert bare.status_code == 400 and error_of(bare) == "invalid_dpop_proof"


def test_replayed_proof_is_refused(client, world):
    holder = Holder()
    proof = holder.proof("POST", token_url(world))
    assert service_token(client, world, proof=proof).status_code == 200
    again = service_token(client, world, proof=proof)
    assert again.status_code == 400 and error_of(again) == "invalid_dpop_proof"
    assert "used already" in again.get_json()["error_description"]


@pytest.mark.parametrize("change, words", [
    (dict(htu="https://elsewhere.test/t/x/token"), "htu"),
    (dict(htm="GET"), "htm"),
    (dict(iat=-600), "too old"),  # seconds from now (when the test runs, not when collected)
    (dict(iat=+600), "future"),
])
def test_proof_for_another_request_or_time_is_refused(client, world, change, words):
    holder = Holder()
    change = dict(change)
    if "iat" in change:
        change["iat"] += int(time.time())
    htm = change.pop("htm", "POST")
    htu = change.pop("htu", token_url(world))
    answer = service_token(client, world, proof=holder.proof(htm, htu, **change))
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"
    assert words in answer.get_json()["error_description"]


def test_htu_is_compared_normalised(client, world):
    holder = Holder()
    shouting = token_url(world).replace("http://idp.test", "HTTP://IDP.TEST:80") + "?x=1#f"
    answer = service_token(client, world, proof=holder.proof("POST", shouting))
    assert answer.status_code == 200, answer.get_json()


def test_proof_signed_by_another_key_than_its_jwk_is_refused(client, world):
    holder, other = Holder(), Holder()
    answer = service_token(client, world, proof=holder.proof("POST", token_url(world), signer=other))
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"
    assert "signature" in answer.get_json()["error_description"]


def test_private_key_in_the_jwk_is_refused(client, world):
    holder = Holder()
    answer = service_token(client, world, proof=holder.proof(
        "POST", token_url(world), jwk=holder.key.as_dict(private=True)))
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"
    assert "private" in answer.get_json()["error_description"]


@pytest.mark.parametrize("make", [
    lambda url: unsigned_proof("POST", url, Holder().public_jwk),
    lambda url: hmac_proof("POST", url),
])
def test_alg_none_and_hmac_are_refused(client, world, make):
    answer = service_token(client, world, proof=make(token_url(world)))
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"
    assert "alg" in answer.get_json()["error_description"]


# DEEP: base64url of 3,000 nested JSON arrays, deeper than Python's json can read.
DEEP = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")


@pytest.mark.parametrize("garbage", ["", "a.b", "not.a.jwt", "x" * 9000, "é.é.é",
                                     f"{DEEP}.{DEEP}.AA"])
def test_malformed_proofs_are_a_clean_error(client, world, garbage):
    answer = service_token(client, world, proof=garbage)
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"


def test_typ_must_be_dpop_jwt(client, world):
    from joserfc import jwt as jose_jwt

    holder = Holder()
    claims = {"jti": "j-typ", "htm": "POST", "htu": token_url(world), "iat": int(time.time())}
    proof = jose_jwt.encode({"typ": "JWT", "alg": "ES256", "jwk": holder.public_jwk}, claims,
                            holder.key)
    answer = service_token(client, world, proof=proof)
    assert answer.status_code == 400 and "typ" in answer.get_json()["error_description"]


def test_dpop_required_client_without_proof_is_refused(app, client, world):
    bound = dpop_client(app, world)
    code, verifier = get_code(client, world, bound)
    answer = redeem(client, world, bound, code, verifier)
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"
    # The code was not spent on the refusal: the client retries with its proof.
    holder = Holder()
    retried = redeem(client, world, bound, code, verifier, holder.proof("POST", token_url(world)))
    assert retried.status_code == 200 and retried.get_json()["token_type"] == "DPoP"


def test_dpop_jkt_binds_the_code_to_the_key(client, world):
    holder, thief = Holder(), Holder()
    browser = Browser(client)
    verifier, challenge = pkce_pair()
    spa = world.spa
    page = browser.authorize(f"/t/{world.slug}", {
        "response_type": "code", "client_id": spa.client_id, "redirect_uri": spa.redirect_uri,
        "scope": "openid", "state": "s", "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge, "code_challenge_method": "S256", "dpop_jkt": holder.jkt})
    page = browser.sign_in(page, world.alice, world.password, world.slug, spa.redirect_uri)
    code = query(page.location)["code"]
    for proof in (None, thief.proof("POST", token_url(world))):
        refused = redeem(client, world, spa, code, verifier, proof)
        assert refused.status_code == 400 and error_of(refused) == "invalid_grant"
        assert "dpop_jkt" in refused.get_json()["error_description"]
    answer = redeem(client, world, spa, code, verifier, holder.proof("POST", token_url(world)))
    assert answer.status_code == 200, answer.get_json()


def test_a_malformed_dpop_jkt_goes_back_to_the_client(client, world):
    params = {"response_type": "code", "client_id": world.spa.client_id,
              "redirect_uri": world.spa.redirect_uri, "scope": "openid", "state": "s",
              "code_challenge": pkce_pair()[1], "code_challenge_method": "S256",
              "dpop_jkt": "not-a-thumbprint"}
    answer = client.get(f"/t/{world.slug}/authorize", query_string=params)
    assert answer.status_code == 302
    assert query(answer.location)["error"] == "invalid_request"


def test_nonce_demanded_then_accepted(app, client, world):
    set_nonce_required(app, world)
    holder = Holder()
    first = service_token(client, world, holder)
    assert first.status_code == 400 and error_of(first) == "use_dpop_nonce"
    nonce = first.headers["DPoP-Nonce"]
    wrong = service_token(client, world, proof=holder.proof("POST", token_url(world),
                                                            nonce="made-up"))
    assert error_of(wrong) == "use_dpop_nonce"
    answer = service_token(client, world, proof=holder.proof("POST", token_url(world), nonce=nonce))
    assert answer.status_code == 200, answer.get_json()
    assert answer.headers["DPoP-Nonce"]  # the newest, for the next proof


# -- userinfo ---------------------------------------------------------------------------------

@pytest.fixture
def bound_tokens(client, world):
    holder = Holder()
    code, verifier = get_code(client, world, world.portal)
    answer = redeem(client, world, world.portal, code, verifier,
                    holder.proof("POST", token_url(world)))
    return holder, answer.get_json()


def test_userinfo_with_token_and_proof(client, world, bound_tokens):
    holder, tokens = bound_tokens
    answer = userinfo(client, world, tokens["access_token"], holder)
    assert answer.status_code == 200, answer.get_json()


def test_bound_token_without_its_proof_is_refused_at_userinfo(client, world, bound_tokens):
    _, tokens = bound_tokens
    answer = userinfo(client, world, tokens["access_token"])
    assert answer.status_code == 401 and error_of(answer) == "invalid_dpop_proof"
    assert answer.headers["WWW-Authenticate"].startswith("DPoP ")
    assert 'algs="' in answer.headers["WWW-Authenticate"]


def test_bound_token_as_bearer_is_refused(client, world, bound_tokens):
    holder, tokens = bound_tokens
    answer = userinfo(client, world, tokens["access_token"], holder, scheme="Bearer")
    assert answer.status_code == 401 and error_of(answer) == "invalid_token"


def test_bearer_token_with_dpop_scheme_is_refused(client, world):
    code, verifier = get_code(client, world, world.portal)
    token = redeem(client, world, world.portal, code, verifier).get_json()["access_token"]
    answer = userinfo(client, world, token, Holder())
    assert answer.status_code == 401 and error_of(answer) == "invalid_token"


def test_proof_of_another_key_or_token_is_refused_at_userinfo(client, world, bound_tokens):
    holder, tokens = bound_tokens
    other_key = userinfo(client, world, tokens["access_token"], Holder())
    assert other_key.status_code == 401 and error_of(other_key) == "invalid_dpop_proof"
    other_token = userinfo(client, world, tokens["access_token"], proof=holder.proof(
        "GET", f"{world.issuer}/userinfo", access_token="another token"))
    assert other_token.status_code == 401 and "ath" in other_token.get_json()["error_description"]
    replay = holder.proof("GET", f"{world.issuer}/userinfo", access_token=tokens["access_token"])
    assert userinfo(client, world, tokens["access_token"], proof=replay).status_code == 200
    assert userinfo(client, world, tokens["access_token"], proof=replay).status_code == 401


def test_userinfo_demands_a_nonce_when_the_tenant_does(app, client, world, bound_tokens):
    holder, tokens = bound_tokens
    set_nonce_required(app, world)
    first = userinfo(client, world, tokens["access_token"], holder)
    assert first.status_code == 401 and error_of(first) == "use_dpop_nonce"
    assert 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
    nonce = first.headers["DPoP-Nonce"]
    answer = userinfo(client, world, tokens["access_token"], proof=holder.proof(
        "GET", f"{world.issuer}/userinfo", access_token=tokens["access_token"], nonce=nonce))
    assert answer.status_code == 200 and answer.headers["DPoP-Nonce"]


def test_userinfo_without_token_offers_both_schemes(client, world):
    answer = client.get(f"/t/{world.slug}/userinfo")
    challenges = answer.headers.getlist("WWW-Authenticate")
    assert answer.status_code == 401
    assert "Bearer" in challenges and any(c.startswith("DPoP algs=") for c in challenges)


# -- our own APIs, called by a service with a bound token ----------------------------------------

def test_admin_api_accepts_a_bound_service_token_with_its_proof_only(app, client, world):
    with app.app_context():
        session = idp_db.session()
        tenant = session.query(Tenant).filter_by(slug=world.slug).one()
        new = directory.create_client(session, tenant, "Bound service", [],
                                      grant_types=["client_credentials"], scope="admin:read")
        session.commit()
    holder = Holder()
    token = post_token(client, world, {"grant_type": "client_credentials"},
                       holder.proof("POST", token_url(world)),
                       basic(new.client.client_id, new.secret)).get_json()["access_token"]
    url = f"{world.issuer}/api/v1/users"
    path = f"/t/{world.slug}/api/v1/users"
    as_bearer = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert as_bearer.status_code == 401
    no_proof = client.get(path, headers={"Authorization": f"DPoP {token}"})
    assert no_proof.status_code == 401 and no_proof.headers["WWW-Authenticate"].startswith("DPoP")
    wrong_url = client.get(path, headers={"Authorization": f"DPoP {token}", "DPoP": holder.proof(
        "GET", f"{world.issuer}/api/v1/groups", access_token=token)})
    assert wrong_url.status_code == 401
    answer = client.get(path, headers={"Authorization": f"DPoP {token}",
                                       "DPoP": holder.proof("GET", url, access_token=token)})
    assert answer.status_code == 200, answer.get_json()


def test_token_requests_flask_answers_check_proofs_the_same(client, world):
    """A token request with a query string is Flask's, not idp.oidc.direct's: same checks."""
    holder = Holder()
    proof = holder.proof("POST", token_url(world))
    url = f"/t/{world.slug}/token?via=flask"
    headers = {**basic(world.service.client_id, world.service.client_secret), "DPoP": proof}
    first = client.post(url, data={"grant_type": "client_credentials"}, headers=headers)
    assert first.status_code == 200 and first.get_json()["token_type"] == "DPoP"
    again = client.post(url, data={"grant_type": "client_credentials"}, headers=headers)
    assert again.status_code == 400 and error_of(again) == "invalid_dpop_proof"


def test_an_invalid_token_sent_as_dpop_is_answered_with_a_dpop_challenge(client, world):
    answer = userinfo(client, world, "not.a.token", Holder())
    assert answer.status_code == 401 and error_of(answer) == "invalid_token"
    assert answer.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')


def test_a_pushed_request_binds_its_code_to_the_proofs_key(app, world):
    """What the PAR endpoint asks (RFC 9449 10.1): a DPoP header at PAR binds the code."""
    holder = Holder()
    par = f"{world.issuer}/par"
    with app.test_request_context():
        g.tenant = web._load_tenant(world.slug)
        assert server_dpop.pushed_request_key([holder.proof("POST", par)], par, None) == holder.jkt
        assert server_dpop.pushed_request_key([], par, holder.jkt) == holder.jkt
        assert server_dpop.pushed_request_key([], par, None) is None
        with pytest.raises(server_dpop.InvalidProof, match="another key"):
            server_dpop.pushed_request_key([holder.proof("POST", par)], par, Holder().jkt)
        with pytest.raises(server_dpop.InvalidProof, match="htu"):
            server_dpop.pushed_request_key([holder.proof("POST", token_url(world))], par, None)


def test_par_with_a_dpop_proof_binds_the_code_to_that_key(live_server, live_world):
    """RFC 9449 10.1 with Authlib's client: the push carries a proof; the code it leads to
    is redeemed only with a proof of the same key."""
    provider = discovery(live_world.issuer)
    holder, thief = Holder(), Holder()
    spa = live_world.spa
    oauth = OAuth2Session(spa.client_id, None, redirect_uri=spa.redirect_uri,
                          token_endpoint_auth_method="none")
    verifier, challenge = pkce_pair()
    par = provider["pushed_authorization_request_endpoint"]
    pushed = oauth.post(par, withhold_token=True, headers={"DPoP": holder.proof("POST", par)},
                        data={"response_type": "code", "client_id": spa.client_id,
                              "redirect_uri": spa.redirect_uri, "scope": "openid",
                              "state": "s-par", "code_challenge": challenge,
                              "code_challenge_method": "S256"})
    assert pushed.status_code == 201, pushed.text
    url = (f"{provider['authorization_endpoint']}?client_id={spa.client_id}"
           f"&request_uri={requests.utils.quote(pushed.json()['request_uri'], safe='')}")
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      spa.redirect_uri)
    code = query(callback)["code"]
    token_endpoint = provider["token_endpoint"]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": spa.redirect_uri,
            "code_verifier": verifier, "client_id": spa.client_id}
    stolen = requests.post(token_endpoint, data=body, timeout=10,
                           headers={"DPoP": thief.proof("POST", token_endpoint)})
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    mine = requests.post(token_endpoint, data=body, timeout=10,
                         headers={"DPoP": holder.proof("POST", token_endpoint)})
    assert mine.status_code == 200 and mine.json()["token_type"] == "DPoP", mine.text


def test_par_refuses_a_bad_proof(app, client, world):
    par = f"{world.issuer}/par"
    answer = client.post(f"/t/{world.slug}/par", headers={"DPoP": Holder().proof("GET", par)},
                         data={"response_type": "code", "client_id": world.spa.client_id,
                               "redirect_uri": world.spa.redirect_uri, "scope": "openid",
                               "code_challenge": pkce_pair()[1],
                               "code_challenge_method": "S256"})
    assert answer.status_code == 400 and error_of(answer) == "invalid_dpop_proof"
