"""What a relying party does around the hosted pages: its authorization request, the code's
redemption at the token endpoint, reading the ID token it gets back, and what it does with
its tokens afterwards (refresh, introspection, userinfo)."""

from __future__ import annotations

import base64
import json
import secrets

from tests.support.journey import Browser, pkce_pair, query


def params_for(creds, **extra):
    """An authorization request of the code flow with PKCE (``None`` drops a parameter)."""
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": creds.client_id,
              "redirect_uri": creds.redirect_uri, "scope": "openid profile email",
              "state": "st-123", "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
              "code_challenge_method": "S256"}
    params.update(extra)
    return {k: v for k, v in params.items() if v is not None}


def basic(client_id, secret):
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def redeem(client, world, creds, code, verifier, auth="basic", **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": creds.redirect_uri,
            "code_verifier": verifier, **extra}
    headers = {}
    if auth == "basic":
        headers = basic(creds.client_id, creds.client_secret)
    elif auth == "post":
        data.update(client_id=creds.client_id, client_secret=creds.client_secret)
    else:
        data["client_id"] = creds.client_id
    return client.post(f"/t/{world.slug}/token", data=data, headers=headers)


def jwt_claims(token: str) -> dict:
    """A JWT's payload, unverified (the tests that verify signatures do so with JWKS)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def get_code(client, world, creds, scope="openid profile email offline_access", email=None):
    """A new browser signs in for ``creds`` (by password, unless it is asked nothing): the
    authorization code it brings back and the PKCE verifier to redeem it with."""
    browser = Browser(client)
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": creds.client_id, "redirect_uri": creds.redirect_uri,
              "scope": scope, "state": "s", "nonce": secrets.token_urlsafe(8),
              "code_challenge": challenge, "code_challenge_method": "S256"}
    page = browser.authorize(f"/t/{world.slug}", params)
    if page.status == 200:
        page = browser.sign_in(page, email or world.alice, world.password, world.slug, creds.redirect_uri)
    return query(page.location)["code"], verifier


def userinfo(client, world, access_token):
    return client.get(f"/t/{world.slug}/userinfo", headers={"Authorization": f"Bearer {access_token}"})


def introspect(client, world, creds, token):
    return client.post(f"/t/{world.slug}/introspect", data={"token": token},
                       headers=basic(creds.client_id, creds.client_secret)).get_json()


def refresh(client, world, creds, refresh_token):
    return client.post(f"/t/{world.slug}/token", headers=basic(creds.client_id, creds.client_secret),
                       data={"grant_type": "refresh_token", "refresh_token": refresh_token})
