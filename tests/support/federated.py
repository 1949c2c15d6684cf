"""The corporate SSO journey on our side, as a portal and a browser walk it: the portal's
authorization request, "Sign in with {upstream}", the upstream's answer, and the ID token the
portal redeems. Works with Flask's test client or a live server (``Browser``)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import requests

from tests.support.journey import CSRF, TX, Browser, Page, field, pkce_pair, query
from tests.support.rp import basic, jwt_claims


@dataclass
class Started:
    browser: Browser
    verifier: str  # the portal's PKCE verifier
    page: Page  # the answer to "Sign in with ...": a redirect to the upstream, or a page


def choose_upstream(browser: Browser, world, slug: str, name: str) -> Started:
    """The portal sends the browser to us; it picks the "Sign in with {name}" button."""
    verifier, challenge = pkce_pair()
    login = browser.authorize(f"/t/{world.slug}", {
        "response_type": "code", "client_id": world.portal.client_id,
        "redirect_uri": world.portal.redirect_uri, "scope": "openid email profile",
        "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert login.status == 200 and f"Sign in with {name}" in login.text, login.text[:800]
    page = browser.post(f"/t/{world.slug}/login/upstream/{slug}",
                        {"csrf_token": field(CSRF, login.text), "tx": field(TX, login.text)})
    return Started(browser, verifier, page)


def through_scripted(started: Started, world, provider) -> Page:
    """At the scripted upstream (it signs in at once); back with us, as far as we let it go."""
    page, browser = started.page, started.browser
    assert page.status == 302 and page.location.startswith(provider.issuer), page.text[:800]
    there = requests.get(page.location, allow_redirects=False, timeout=10,
                         verify=str(provider.ca_file) if provider.ca_file else True)
    assert there.status_code == 302, there.text[:500]
    return browser.follow(browser.get(there.headers["Location"]), world.portal.redirect_uri)


def portal_id_token(browser: Browser, world, done: Page, verifier: str) -> dict:
    """The portal redeems its code; the ID token's claims."""
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri), \
        (done.status, done.location, done.text[:800])
    r = browser.http.post(browser._path(f"/t/{world.slug}/token"),
                          headers=basic(world.portal.client_id, world.portal.client_secret),
                          data={"grant_type": "authorization_code",
                                "code": query(done.location)["code"],
                                "redirect_uri": world.portal.redirect_uri,
                                "code_verifier": verifier})
    assert r.status_code == 200, r.text[:800]
    return jwt_claims(json.loads(r.text)["id_token"])
