"""A portal as Playwright plays it: its authorization request, its redirect URI answered in the
browser, and the code it received redeemed (the ID token checked with our JWKS)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from playwright.sync_api import Page

from tests.support.journey import pkce_pair, query
from tests.support.world import World


class Portal:
    """The portal's side: its authorization request, and its redirect URI answered in the
    browser (the code it receives is kept)."""

    def __init__(self, page: Page, world: World):
        self.world = world
        self.verifier, challenge = pkce_pair()
        self.nonce = secrets.token_urlsafe(12)
        self.received: list[str] = []
        self.url = f"{world.issuer}/authorize?" + urlencode({
            "response_type": "code", "client_id": world.portal.client_id,
            "redirect_uri": world.portal.redirect_uri, "scope": "openid email profile",
            "state": "st", "nonce": self.nonce, "code_challenge": challenge,
            "code_challenge_method": "S256"})

        def answer(route):
            self.received.append(route.request.url)
            route.fulfill(status=200, content_type="text/html",
                          body="<!doctype html><title>Portal</title><h1>Welcome back</h1>")

        page.route(f"{world.portal.redirect_uri}**", answer)

    def id_token(self) -> dict:
        """Redeem the code; the ID token's claims, its signature checked with our JWKS."""
        assert self.received, "the portal received nothing"
        issuer = self.world.issuer
        doc = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
        r = requests.post(doc["token_endpoint"], timeout=10,
                          auth=(self.world.portal.client_id, self.world.portal.client_secret),
                          data={"grant_type": "authorization_code",
                                "code": query(self.received[-1])["code"],
                                "redirect_uri": self.world.portal.redirect_uri,
                                "code_verifier": self.verifier})
        assert r.status_code == 200, r.text
        keys = KeySet.import_key_set(requests.get(doc["jwks_uri"], timeout=10).json())
        claims = jwt.decode(r.json()["id_token"], keys).claims
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer},
                              aud={"essential": True, "value": self.world.portal.client_id},
                              nonce={"essential": True, "value": self.nonce}).validate(claims)
        return claims
