"""Pushed authorization requests (RFC 9126) at the live server, pushed by Authlib's client.

The client authenticates at ``/par`` as at the token endpoint, gets a ``request_uri`` back,
and sends the browser to /authorize with only that and its ``client_id``; the sign-in and the
code's redemption then go as usual. A ``request_uri`` works once, for a minute, for the
client that pushed it.
"""

from __future__ import annotations

import requests
import pytest
from authlib.common.urls import add_params_to_uri

from idp.oidc import pushed
from tests.support.journey import Browser, query
from tests.support.par import authorization_params, client_with, oauth, push, tenant_requires_par
from tests.support.rp import basic
from tests.support.relying_party import PendingSignIn, browse, discovery


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def provider(live_world) -> dict:
    return discovery(live_world.issuer)


def pushed_sign_in(live_server, world, provider, creds, **extra):
    """Push a request, follow its request_uri in a browser, sign in: the callback, and what
    the client needs to redeem the code."""
    session = oauth(creds, provider)
    params, verifier = authorization_params(creds, **extra)
    answer = push(session, provider, params)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    url = add_params_to_uri(provider["authorization_endpoint"],
                            [("client_id", creds.client_id), ("request_uri", body["request_uri"])])
    callback = browse(requests.Session(), live_server, world, url, world.alice, creds.redirect_uri)
    return body, callback, PendingSignIn(session, url, verifier, params["state"], params["nonce"])


def test_discovery_advertises_par(live_world, provider):
    assert provider["pushed_authorization_request_endpoint"] == f"{live_world.issuer}/par"
    assert provider["require_pushed_authorization_requests"] is False
    assert provider["request_uri_parameter_supported"] is False  # we never fetch one


def test_pushed_request_signs_in_and_its_code_redeems(live_server, live_world, provider):
    body, callback, pending = pushed_sign_in(live_server, live_world, provider, live_world.portal)
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60
    assert query(callback)["state"] == pending.state and query(callback)["iss"] == live_world.issuer
    claims = pending.finish(provider, callback)  # Authlib redeems it, the ID token verifies
    assert claims["aud"] == [live_world.portal.client_id]


def test_public_client_pushes_with_its_client_id(app, live_server, live_world, provider):
    spa = client_with(app, live_world, public=True).creds
    _, callback, pending = pushed_sign_in(live_server, live_world, provider, spa)
    pending.finish(provider, callback)


def test_parameters_beside_the_request_uri_are_not_used(live_server, live_world, provider):
    creds = live_world.portal
    session = oauth(creds, provider)
    params, _ = authorization_params(creds)
    request_uri = push(session, provider, params).json()["request_uri"]
    url = add_params_to_uri(provider["authorization_endpoint"], [
        ("client_id", creds.client_id), ("request_uri", request_uri),
        ("redirect_uri", "https://attacker.test/cb"), ("state", "planted")])
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      creds.redirect_uri)
    assert query(callback)["state"] == params["state"]  # the pushed request's, RFC 9126 4


def test_request_uri_works_once(live_server, live_world, provider):
    body, _, _ = pushed_sign_in(live_server, live_world, provider, live_world.portal)
    again = requests.get(provider["authorization_endpoint"], allow_redirects=False, params={
        "client_id": live_world.portal.client_id, "request_uri": body["request_uri"]})
    assert again.status_code == 400 and "Location" not in again.headers
    assert "This sign-in link has expired" in again.text


def test_another_clients_request_uri_is_refused(app, live_server, live_world, provider):
    other = client_with(app, live_world).creds
    request_uri = push(oauth(other, provider), provider,
                       authorization_params(other)[0]).json()["request_uri"]
    r = requests.get(provider["authorization_endpoint"], allow_redirects=False, params={
        "client_id": live_world.portal.client_id, "request_uri": request_uri})
    assert r.status_code == 400 and "Location" not in r.headers
    assert "prepared for another application" in r.text
    # The stranger's try does not spend it: the client that pushed it still signs in with it.
    url = add_params_to_uri(provider["authorization_endpoint"],
                            [("client_id", other.client_id), ("request_uri", request_uri)])
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      other.redirect_uri)
    assert "code" in query(callback)


def test_confidential_client_must_authenticate(live_world, provider):
    creds = live_world.portal
    params, _ = authorization_params(creds)
    r = push(oauth(creds, provider), provider, params, authenticate=False)
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    # Naming itself as a public client would: still not authenticated.
    r = push(oauth(creds, provider), provider, {**params, "client_id": creds.client_id},
             authenticate=False)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    wrong = oauth(creds, provider)
    wrong.client_secret = "not-the-secret"
    r = push(wrong, provider, params)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize("change, error", [
    ({"redirect_uri": "https://portal.test/elsewhere"}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"max_age": "soon"}, "invalid_request"),
    ({"claims": "{not json"}, "invalid_request"),
    ({"request_uri": "urn:ietf:params:oauth:request_uri:abc"}, "invalid_request"),
])
def test_pushed_request_is_validated_as_authorize_would(live_world, provider, change, error):
    creds = live_world.portal
    params, _ = authorization_params(creds, **change)
    r = push(oauth(creds, provider), provider, params)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == error and r.json()["error_description"]
    assert r.headers["Cache-Control"] == "no-store"


def test_public_client_must_push_pkce(app, live_world, provider):
    spa = client_with(app, live_world, public=True).creds
    params, _ = authorization_params(spa, code_challenge=None, code_challenge_method=None)
    r = push(oauth(spa, provider), provider, params)
    assert r.status_code == 400 and "PKCE" in r.json()["error_description"]


def test_client_that_requires_par_cannot_skip_it(app, live_server, live_world, provider):
    creds = client_with(app, live_world, require_par=True).creds
    params, _ = authorization_params(creds)
    r = requests.get(provider["authorization_endpoint"], params=params, allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith(creds.redirect_uri)
    answer = query(r.headers["Location"])
    assert answer["error"] == "invalid_request" and "pushed authorization requests" in \
        answer["error_description"] and answer["state"] == params["state"]
    _, callback, pending = pushed_sign_in(live_server, live_world, provider, creds)
    pending.finish(provider, callback)


def test_tenant_that_requires_par(app, live_server, live_world):
    tenant_requires_par(app, live_world)  # before the server has read the tenant
    provider = discovery(live_world.issuer)
    assert provider["require_pushed_authorization_requests"] is True
    creds = live_world.portal
    params, _ = authorization_params(creds)
    r = requests.get(provider["authorization_endpoint"], params=params, allow_redirects=False)
    assert query(r.headers["Location"])["error"] == "invalid_request"
    _, callback, pending = pushed_sign_in(live_server, live_world, provider, creds)
    pending.finish(provider, callback)


def test_expired_request_uri_gets_a_page_that_says_so(app, client, world):
    """In process: the store's clock is moved by expiring the key as Redis would."""
    params, _ = authorization_params(world.portal)
    r = client.post(f"/t/{world.slug}/par", data=params, headers=basic(world.portal.client_id, world.portal.client_secret))
    assert r.status_code == 201
    reference = r.get_json()["request_uri"][len(pushed.URN):]
    redis = app.extensions["idp.store"]
    keys = list(redis.scan_iter(match=f"par:*:{reference}"))
    assert len(keys) == 1 and 0 < redis.ttl(keys[0]) <= 60  # kept for expires_in, no longer
    redis.delete(keys[0])  # what the TTL does once it runs out
    page = client.get(f"/t/{world.slug}/authorize", query_string={
        "client_id": world.portal.client_id, "request_uri": r.get_json()["request_uri"]})
    assert page.status_code == 400 and page.headers.get("Location") is None
    text = page.get_data(as_text=True)
    assert "This sign-in link has expired" in text and "Go back to the application" in text


def test_the_sign_in_goes_on_after_the_request_uri_is_used(client, world):
    """The request_uri is used once, at /authorize; the login page it leads to can be
    reloaded, and the sign-in from it still ends at the client with the pushed request."""
    params, _ = authorization_params(world.portal)
    pushed_answer = client.post(f"/t/{world.slug}/par", data=params,
                                headers=basic(world.portal.client_id, world.portal.client_secret))
    browser = Browser(client)
    first = browser.get(f"/t/{world.slug}/authorize", {
        "client_id": world.portal.client_id,
        "request_uri": pushed_answer.get_json()["request_uri"]})
    assert first.status == 302 and "/login" in first.location
    browser.get(first.location)
    login = browser.get(first.location)  # reloaded
    back = browser.sign_in(login, world.alice, world.password, world.slug,
                           world.portal.redirect_uri)
    assert back.location.startswith(world.portal.redirect_uri)
    assert query(back.location)["state"] == params["state"] and "code" in query(back.location)
