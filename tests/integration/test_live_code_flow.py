"""The live ``idp serve`` process, driven by real relying-party libraries over HTTP.

Authlib's OAuth 2 client and the OpenID-certified pyoidc (``oic``) do what an application
would: read discovery, send the user to ``/authorize`` with PKCE, take the callback, redeem
the code, verify the ID token against the published JWKS, then use the tokens. The user's
browser is a separate ``requests.Session`` that fills in the hosted sign-in form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session, OAuthError
from joserfc import jwt
from joserfc.jwk import KeySet
from oic.oic import Client as OicClient
from oic.oic.message import AuthorizationResponse, IdToken, OpenIDSchema, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD

from tests.support.journey import query
from tests.support.relying_party import ID_TOKEN_ALGS, SignIn, browse, code_flow, discovery


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    # The live server listens on http://127.0.0.1; Authlib's client refuses plain http otherwise.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def provider(live_world) -> dict:
    return discovery(live_world.issuer)


@pytest.fixture
def jwks(provider) -> KeySet:
    r = requests.get(provider["jwks_uri"], timeout=10)
    assert r.status_code == 200, r.text
    return KeySet.import_key_set(r.json())


def id_token_claims(sign_in: SignIn, jwks: KeySet, world, creds) -> dict:
    """The ID token's claims, after the checks OIDC Core 3.1.3.7 asks of a relying party."""
    token = jwt.decode(sign_in.token["id_token"], jwks, algorithms=ID_TOKEN_ALGS)
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": world.issuer},
        aud={"essential": True, "value": creds.client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": sign_in.nonce},
    ).validate(token.claims)
    return token.claims


@pytest.fixture
def signed_in(live_server, live_world, provider) -> SignIn:
    return code_flow(live_server, live_world, provider)


# --- Authlib's client, confidential `portal` ------------------------------------------------


def test_discovery_describes_the_live_issuer(live_world, provider):
    assert provider["issuer"] == live_world.issuer
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                     "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert provider[endpoint].startswith(live_world.issuer + "/"), endpoint
    assert "S256" in provider["code_challenge_methods_supported"]
    assert provider["authorization_response_iss_parameter_supported"] is True


def test_callback_carries_state_and_issuer(live_world, signed_in):
    params = query(signed_in.callback)
    assert params["state"] == signed_in.state
    assert params["iss"] == live_world.issuer  # RFC 9207: the RP can tell which IdP answered
    assert "code" in params


def test_code_exchange_returns_bearer_access_id_and_refresh_tokens(signed_in):
    token = signed_in.token
    assert token["token_type"] == "Bearer"
    assert {"access_token", "id_token", "refresh_token", "expires_in"} <= token.keys()


def test_id_token_verifies_against_the_published_keys(live_world, signed_in, jwks):
    claims = id_token_claims(signed_in, jwks, live_world, live_world.portal)
    assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
    assert claims["sid"]
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == "pwd"


def test_sub_is_stable_for_a_user_and_differs_between_users(live_server, live_world, provider, jwks):
    def sub(email):
        flow = code_flow(live_server, live_world, provider, email=email)  # a fresh browser each time
        return id_token_claims(flow, jwks, live_world, live_world.portal)["sub"]

    alice, alice_again, bob = sub(live_world.alice), sub(live_world.alice), sub(live_world.bob)
    assert alice == alice_again
    assert bob != alice


def test_userinfo_by_get_and_by_post(live_world, provider, signed_in):
    got = signed_in.oauth.get(provider["userinfo_endpoint"])
    assert got.status_code == 200, got.text
    assert got.json()["email"] == live_world.alice
    posted = signed_in.oauth.post(provider["userinfo_endpoint"])
    assert posted.status_code == 200, posted.text
    assert posted.json() == got.json()


def test_userinfo_sub_matches_the_id_token(live_world, provider, signed_in, jwks):
    claims = id_token_claims(signed_in, jwks, live_world, live_world.portal)
    assert signed_in.oauth.get(provider["userinfo_endpoint"]).json()["sub"] == claims["sub"]


def test_refresh_rotates_the_refresh_token(provider, signed_in):
    old = signed_in.token["refresh_token"]
    new = signed_in.oauth.refresh_token(provider["token_endpoint"], refresh_token=old)
    assert new["refresh_token"] != old
    assert new["access_token"] != signed_in.token["access_token"]
    assert signed_in.oauth.get(provider["userinfo_endpoint"]).status_code == 200  # the new one works


def test_a_rotated_refresh_token_is_refused(provider, signed_in):
    old = signed_in.token["refresh_token"]
    signed_in.oauth.refresh_token(provider["token_endpoint"], refresh_token=old)
    with pytest.raises(OAuthError) as refused:
        signed_in.oauth.refresh_token(provider["token_endpoint"], refresh_token=old)
    assert refused.value.error == "invalid_grant"


def test_revoked_access_token_is_refused_by_userinfo(provider, signed_in):
    access = signed_in.token["access_token"]
    r = signed_in.oauth.revoke_token(provider["revocation_endpoint"], token=access,
                                     token_type_hint="access_token")
    assert r.status_code == 200, r.text
    after = requests.get(provider["userinfo_endpoint"], headers={"Authorization": f"Bearer {access}"},
                         timeout=10)
    assert after.status_code == 401
    assert "invalid_token" in after.headers["WWW-Authenticate"]


def test_introspection_is_active_before_and_inactive_after_revocation(live_world, provider, signed_in):
    access = signed_in.token["access_token"]
    before = signed_in.oauth.introspect_token(provider["introspection_endpoint"], token=access)
    assert before.status_code == 200, before.text
    info = before.json()
    assert info["active"] is True
    assert info["client_id"] == live_world.portal.client_id
    assert info["username"] == live_world.alice
    signed_in.oauth.revoke_token(provider["revocation_endpoint"], token=access,
                                 token_type_hint="access_token")
    after = signed_in.oauth.introspect_token(provider["introspection_endpoint"], token=access)
    assert after.json() == {"active": False}


def test_rp_initiated_logout_returns_with_state_and_ends_the_session(live_world, provider, signed_in):
    portal = live_world.portal
    r = signed_in.browser.get(provider["end_session_endpoint"], allow_redirects=False, timeout=10, params={
        "id_token_hint": signed_in.token["id_token"], "post_logout_redirect_uri": portal.post_logout_redirect_uri,
        "state": "bye-1"})
    assert r.status_code == 302, r.text[:500]
    assert r.headers["Location"].startswith(portal.post_logout_redirect_uri)
    assert query(r.headers["Location"]) == {"state": "bye-1"}

    # The same browser is no longer signed in: a silent sign-in fails.
    url, state = signed_in.oauth.create_authorization_url(
        provider["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(8), prompt="none")
    silent = signed_in.browser.get(url, allow_redirects=False, timeout=10)
    assert silent.status_code == 302 and silent.headers["Location"].startswith(portal.redirect_uri)
    params = query(silent.headers["Location"])
    assert params["error"] == "login_required"
    assert params["state"] == state and params["iss"] == live_world.issuer


def test_silent_sign_in_works_while_the_session_lasts(live_world, provider, signed_in):
    # The control for the logout test: before logging out, prompt=none does issue a code.
    url, state = signed_in.oauth.create_authorization_url(
        provider["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(8), prompt="none")
    silent = signed_in.browser.get(url, allow_redirects=False, timeout=10)
    assert silent.status_code == 302
    params = query(silent.headers["Location"])
    assert "code" in params and params["state"] == state


def test_logout_to_an_unregistered_uri_is_an_error_page(provider, signed_in):
    r = signed_in.browser.get(provider["end_session_endpoint"], allow_redirects=False, timeout=10, params={
        "id_token_hint": signed_in.token["id_token"], "post_logout_redirect_uri": "https://evil.test/bye",
        "state": "bye-2"})
    assert r.status_code == 400
    assert "Location" not in r.headers


# --- pyoidc (`oic`), the OpenID-certified RP library -----------------------------------------


@dataclass
class OicSignIn:
    client: OicClient
    state: str
    nonce: str
    token: object  # oic.oic.message.AccessTokenResponse


@pytest.fixture
def oic_signed_in(live_server, live_world) -> OicSignIn:
    portal = live_world.portal
    client = OicClient(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(live_world.issuer)  # discovery, issuer check and JWKS into the keyjar
    client.store_registration_info(RegistrationResponse(
        client_id=portal.client_id, client_secret=portal.client_secret, redirect_uris=[portal.redirect_uri]))
    client.redirect_uris = [portal.redirect_uri]

    pkce, verifier = client.add_code_challenge()
    assert pkce["code_challenge_method"] == "S256"
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    client.state2nonce[state] = nonce  # oic checks the ID token's nonce against this
    request = client.construct_AuthorizationRequest(request_args={
        "response_type": "code", "scope": "openid profile email", "state": state, "nonce": nonce,
        "redirect_uri": portal.redirect_uri, **pkce})
    url = request.request(client.authorization_endpoint)

    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice, portal.redirect_uri)
    response = client.parse_response(AuthorizationResponse, info=callback.split("?", 1)[1],
                                     sformat="urlencoded")
    assert isinstance(response, AuthorizationResponse), response.to_dict()
    assert response["state"] == state

    token = client.do_access_token_request(
        state=state, authn_method="client_secret_basic",
        request_args={"code": response["code"], "redirect_uri": portal.redirect_uri,
                      "code_verifier": verifier})
    return OicSignIn(client, state, nonce, token)


def test_oic_verifies_the_id_token(live_world, oic_signed_in):
    id_token = oic_signed_in.token["id_token"]
    assert isinstance(id_token, IdToken)  # oic replaced the JWT with the verified claims
    assert id_token["iss"] == live_world.issuer
    assert live_world.portal.client_id in id_token["aud"]
    assert id_token["nonce"] == oic_signed_in.nonce
    assert id_token["amr"] == ["pwd"]
    assert id_token["acr"] == "pwd"


def test_oic_userinfo_returns_the_email(live_world, oic_signed_in):
    info = oic_signed_in.client.do_user_info_request(state=oic_signed_in.state)
    assert isinstance(info, OpenIDSchema), info.to_dict()
    assert info["email"] == live_world.alice
    assert info["sub"] == oic_signed_in.token["id_token"]["sub"]


# --- A public client and a service ------------------------------------------------------------


def test_public_client_completes_the_flow_with_pkce_and_no_secret(live_server, live_world, provider, jwks):
    spa = live_world.spa
    flow = code_flow(live_server, live_world, provider, creds=spa, token_endpoint_auth_method="none")
    assert {"access_token", "id_token"} <= flow.token.keys()
    id_token_claims(flow, jwks, live_world, spa)
    assert flow.oauth.get(provider["userinfo_endpoint"]).json()["email"] == live_world.alice


def test_client_credentials_access_token_is_an_es256_at_jwt(live_world, provider, jwks):
    service = live_world.service
    oauth = OAuth2Session(service.client_id, service.client_secret)
    token = oauth.fetch_token(provider["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"] == "Bearer"
    assert "refresh_token" not in token and "id_token" not in token

    access = jwt.decode(token["access_token"], jwks, algorithms=["ES256"])
    assert access.header["alg"] == "ES256"
    assert access.header["typ"] == "at+jwt"  # RFC 9068
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": live_world.issuer},
        exp={"essential": True},
        client_id={"essential": True, "value": service.client_id},
        sub={"essential": True, "value": service.client_id},
    ).validate(access.claims)
