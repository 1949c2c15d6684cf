"""The ID token (OIDC Core 2, 3.1.3.6): Authlib's OpenID extension of the code grant, told
how to sign, what the user's claims are, and how to recognise a replayed nonce.

What the sign-in proved (``auth_time``, ``acr``, ``amr``) and the ``nonce`` reach the token
through the code's getters (``IssuedCode`` in ``idp.oidc.grants.authorization_code``), as
Authlib reads them; the session id ``sid`` (OIDC Front-Channel Logout 3) is added here.
"""

from __future__ import annotations

import time

from authlib.oidc.core import OpenIDCode, UserInfo
from flask import g

from idp import hashing
from idp.models import User
from idp.oidc import keys
from idp.oidc.subjects import for_client
from idp.web import issuer, settings


def user_claims(user: User, scope: str, client) -> dict:
    """What the ID token and the userinfo endpoint say of the user to ``client``, by scope
    (OIDC Core 5.4); its ``sub`` is the one this client sees (``idp.oidc.subjects``)."""
    scopes = set((scope or "").split())
    claims = {"sub": for_client(user, client)}
    if "profile" in scopes:
        claims["name"] = user.name
        # Our user name is the address: a pairwise portal gets it only with the email scope,
        # or its users could be matched with another portal's by it.
        if "email" in scopes or getattr(client, "subject_type", "public") != "pairwise":
            claims["preferred_username"] = user.email
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.email_verified)
    return claims


def nonce_digest(nonce: str | None) -> str | None:
    """What the replay check looks a nonce up by (migration 0007 computes the same)."""
    return hashing.digest("nonce", nonce) if nonce else None


class OpenIDExtension(OpenIDCode):
    def exists_nonce(self, nonce, request):
        """Never read: a client's nonce binds one code, and the database refuses a second when
        the code is saved (``AuthorizationCodeGrant.save_authorization_code``), so a replayed
        request gets ``invalid_request`` in place of its code, with nothing read before."""
        return False

    def resolve_client_private_key(self, client):
        return keys.current().active(self.get_client_algorithm(client))[1]

    def get_client_algorithm(self, client):
        return client.id_token_signed_response_alg or "RS256"

    def get_encode_header(self, client):
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": keys.current().active(alg)[0],
                "typ": "JWT"}

    def get_client_claims(self, client):
        now = int(time.time())
        return {"iss": issuer(), "aud": [client.get_client_id()], "iat": now,
                "exp": now + settings().id_token_ttl}

    def get_authorization_code_claims(self, authorization_code):
        # nonce, auth_time, acr and amr through the code's getters (Authlib's seam); then sid.
        claims = super().get_authorization_code_claims(authorization_code)
        if authorization_code.get_sid():
            claims["sid"] = authorization_code.get_sid()
        return claims

    def encode_id_token(self, token, request):
        # Authlib asks generate_user_info without the client; the sub depends on it.
        g.id_token_client = request.client.row
        return super().encode_id_token(token, request)

    def generate_user_info(self, user, scope):
        return UserInfo(user_claims(user, scope, g.id_token_client))
