"""id_token_hint accepts ID tokens only, of this issuer, for the client that presents them.

Peer class: JWT type confusion (RFC 8725 3.11, explicit typing), an access token taken for an
ID token at RP-Initiated Logout: WSO2 Identity Server (wso2/product-is#16895) and ThunderID
(thunder-id/thunderid#4990) accepted their JWT access tokens as ``id_token_hint``, which
skipped the sign-out confirmation; no CVE was assigned to either. Also a hint issued to one
client steering another client's request (the audience unchecked). Review finding 9 of
issue 15.

A relying party (Authlib's client) gets real tokens from the live server; then the access
token, or another client's ID token, is presented where an ID token is expected.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.support.journey import query
from tests.support.relying_party import code_flow, discovery, rp


@pytest.fixture
def provider(live_world, monkeypatch) -> dict:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the live server is plain http
    return discovery(live_world.issuer)


@pytest.fixture
def signed_in(live_server, live_world, provider):
    return code_flow(live_server, live_world, provider)


def silent_authorize(signed_in, provider, creds, hint: str) -> dict:
    """A prompt=none request of ``creds`` with the hint, in the signed-in browser; the
    parameters of the redirect back to the client."""
    oauth = rp(creds, provider)
    url, state = oauth.create_authorization_url(
        provider["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(8), prompt="none", id_token_hint=hint)
    r = signed_in.browser.get(url, allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"].startswith(creds.redirect_uri), r.text[:500]
    params = query(r.headers["Location"])
    assert params["state"] == state
    return params


def logout(signed_in, provider, **params) -> requests.Response:
    return signed_in.browser.get(provider["end_session_endpoint"], params=params,
                                 allow_redirects=False, timeout=10)


def still_signed_in(signed_in, provider, creds) -> bool:
    oauth = rp(creds, provider)
    url, _ = oauth.create_authorization_url(
        provider["authorization_endpoint"], code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(8), prompt="none")
    r = signed_in.browser.get(url, allow_redirects=False, timeout=10)
    return "code" in query(r.headers.get("Location", ""))


def test_the_id_token_is_a_good_hint(live_world, provider, signed_in):
    # The control: the same request with the ID token goes through.
    params = silent_authorize(signed_in, provider, live_world.portal, signed_in.token["id_token"])
    assert "code" in params


def test_an_access_token_as_hint_at_authorize_is_invalid_request(live_world, provider, signed_in):
    params = silent_authorize(signed_in, provider, live_world.portal, signed_in.token["access_token"])
    assert params["error"] == "invalid_request" and "code" not in params
    assert params["iss"] == live_world.issuer


def test_another_clients_id_token_as_hint_at_authorize_is_invalid_request(live_world, provider,
                                                                         signed_in):
    # Alice's own ID token, but the portal's: the SPA may not present it as its own.
    params = silent_authorize(signed_in, provider, live_world.spa, signed_in.token["id_token"])
    assert params["error"] == "invalid_request" and "code" not in params


def test_an_access_token_as_hint_at_logout_is_a_page_not_a_redirect(live_world, provider, signed_in):
    portal = live_world.portal
    r = logout(signed_in, provider, id_token_hint=signed_in.token["access_token"],
               post_logout_redirect_uri=portal.post_logout_redirect_uri, state="bye")
    assert r.status_code == 400 and "Location" not in r.headers
    assert "sign-out" in r.text.lower()
    assert still_signed_in(signed_in, provider, portal)  # nobody was signed out by it


def test_logout_hint_and_client_id_of_another_client_are_refused(live_world, provider, signed_in):
    # The portal's ID token with the SPA's client id and the SPA's registered address.
    r = logout(signed_in, provider, id_token_hint=signed_in.token["id_token"],
               client_id=live_world.spa.client_id,
               post_logout_redirect_uri=live_world.spa.post_logout_redirect_uri)
    assert r.status_code == 400 and "Location" not in r.headers
    assert still_signed_in(signed_in, provider, live_world.portal)


def test_logout_only_returns_to_an_address_of_the_hints_client(live_world, provider, signed_in):
    r = logout(signed_in, provider, id_token_hint=signed_in.token["id_token"],
               post_logout_redirect_uri=live_world.spa.post_logout_redirect_uri)
    assert r.status_code == 400 and "Location" not in r.headers
    good = logout(signed_in, provider, id_token_hint=signed_in.token["id_token"],
                  post_logout_redirect_uri=live_world.portal.post_logout_redirect_uri)
    assert good.status_code == 302
    assert good.headers["Location"] == live_world.portal.post_logout_redirect_uri
