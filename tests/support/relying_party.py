"""A relying party on Authlib's OAuth 2 client, signing a user in at a live server: the
authorization code flow with PKCE, as an application does it. The user's browser is a
separate ``requests.Session`` that fills in the hosted sign-in form."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.journey import Browser

SCOPE = "openid profile email offline_access"
# The ID token algorithms a relying party accepts, configured as one is: by hand, not read from
# the provider it checks.
ID_TOKEN_ALGS = ["RS256", "ES256"]


def rp(creds, provider, **kw) -> OAuth2Session:
    """An Authlib OAuth 2 client registered as ``creds``."""
    return OAuth2Session(
        creds.client_id, creds.client_secret, scope=SCOPE, redirect_uri=creds.redirect_uri,
        code_challenge_method="S256", token_endpoint=provider["token_endpoint"], **kw)


def browse(http: requests.Session, live_server, world, url: str, email: str, stop_at: str) -> str:
    """Open ``url`` in the browser, sign in if the IdP asks; the URL the IdP sends it back to."""
    browser = Browser(http, origin=live_server.url)
    page = browser.follow(browser.get(url), stop_at)
    if page.status == 200:
        page = browser.sign_in(page, email, world.password, world.slug, stop_at)
    assert page.status in (302, 303) and page.location.startswith(stop_at), (page.status, page.text[:500])
    return page.location


@dataclass
class SignIn:
    oauth: OAuth2Session
    browser: requests.Session
    state: str
    nonce: str
    callback: str
    token: dict


def code_flow(live_server, world, provider, creds=None, email=None, browser=None, **kw) -> SignIn:
    """The authorization code flow with PKCE S256, from the authorization URL to the tokens.
    Authlib refuses plain http unless ``AUTHLIB_INSECURE_TRANSPORT`` is set."""
    creds = creds or world.portal
    oauth = rp(creds, provider, **kw)
    browser = browser or requests.Session()
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url, _ = oauth.create_authorization_url(provider["authorization_endpoint"], code_verifier=verifier,
                                            state=state, nonce=nonce)
    callback = browse(browser, live_server, world, url, email or world.alice, creds.redirect_uri)
    token = oauth.fetch_token(provider["token_endpoint"], authorization_response=callback,
                              code_verifier=verifier, state=state)
    return SignIn(oauth, browser, state, nonce, callback, token)


def discovery(issuer: str) -> dict:
    r = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


@dataclass
class PendingSignIn:
    """An authorization request a portal made; ``finish`` redeems the code it got back and
    verifies the ID token against the issuer's JWKS, as the portal would."""

    oauth: OAuth2Session
    url: str
    verifier: str
    state: str
    nonce: str

    def finish(self, provider: dict, callback: str) -> dict:
        token = self.oauth.fetch_token(provider["token_endpoint"], authorization_response=callback,
                                       code_verifier=self.verifier, state=self.state)
        keys = KeySet.import_key_set(requests.get(provider["jwks_uri"], timeout=10).json())
        claims = jwt.decode(token["id_token"], keys, algorithms=ID_TOKEN_ALGS).claims
        assert claims["nonce"] == self.nonce and claims["iss"] == provider["issuer"], claims
        return claims


def portal_request(creds, provider, **params) -> PendingSignIn:
    """The authorization URL a portal sends its user's browser to (PKCE S256, state, nonce)."""
    oauth = rp(creds, provider)
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url, _ = oauth.create_authorization_url(provider["authorization_endpoint"], code_verifier=verifier,
                                            state=state, nonce=nonce, **params)
    return PendingSignIn(oauth, url, verifier, state, nonce)
