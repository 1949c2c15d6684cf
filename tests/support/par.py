"""What a relying party does for pushed authorization requests (RFC 9126) and signed request
objects (RFC 9101): its own clients registered with those requirements, its key pair, the
request objects it signs with joserfc, and the push itself with Authlib's OAuth 2 client."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from idp import db as idp_db, directory
from idp.models import Tenant, TenantProtocol
from sqlalchemy import select

from tests.support.journey import pkce_pair
from tests.support.world import ClientCreds, World


@dataclass
class KeyedClient:
    creds: ClientCreds
    key: ECKey | None  # the private key its request objects are signed with


def client_with(app, world: World, *, public: bool = False, signing_key: bool = False,
                **settings) -> KeyedClient:
    """A new client of ``world``'s tenant, registered with ``settings`` (require_par,
    require_signed_request_object, request_object_signing_alg...) and, with ``signing_key``,
    the public half of a fresh P-256 key of its own."""
    key = ECKey.generate_key("P-256", parameters={"kid": secrets.token_hex(4)}) \
        if signing_key else None
    uri = "https://par-portal.test/callback"
    with app.app_context():
        session = idp_db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
        new = directory.create_client(
            session, tenant, "PAR portal", [uri], public=public,
            jwks={"keys": [key.as_dict(private=False)]} if key else None, **settings)
        session.commit()
        return KeyedClient(ClientCreds(new.client.client_id, new.secret, uri, f"{uri}/bye"), key)


def tenant_requires_par(app, world: World) -> None:
    with app.app_context():
        session = idp_db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
        session.add(TenantProtocol(tenant_id=tenant.id, require_par=True))
        session.commit()


def authorization_params(creds: ClientCreds, **extra) -> tuple[dict, str]:
    """An authorization request of the code flow with PKCE S256, and its verifier."""
    verifier, challenge = pkce_pair()
    params = {"response_type": "code", "client_id": creds.client_id,
              "redirect_uri": creds.redirect_uri, "scope": "openid profile email",
              "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(12),
              "code_challenge": challenge, "code_challenge_method": "S256", **extra}
    return {k: v for k, v in params.items() if v is not None}, verifier


def request_object(key, issuer: str, params: dict, alg: str = "ES256", **claims) -> str:
    """``params`` signed by ``key`` as a request object for ``issuer`` (RFC 9101 4): valid
    for five minutes unless ``claims`` say otherwise (``None`` drops a claim)."""
    now = int(time.time())
    body = {**params, "iss": params["client_id"], "aud": issuer, "iat": now, "nbf": now,
            "exp": now + 300, "jti": secrets.token_urlsafe(8), **claims}
    header = {"alg": alg}
    if getattr(key, "kid", None):
        header["kid"] = key.kid
    return jwt.encode(header, {k: v for k, v in body.items() if v is not None}, key,
                      algorithms=[alg])


def unsigned_request_object(issuer: str, params: dict) -> str:
    """The ``alg: none`` request object an attacker would forge (joserfc will not make one)."""
    import base64
    import json

    def part(doc):
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({**params, 'iss': params['client_id'], 'aud': issuer, 'exp': now + 300})}."


def hmac_key(secret: str) -> OctKey:
    return OctKey.import_key(secret.encode())


def stranger_key() -> RSAKey:
    return RSAKey.generate_key(2048)


def oauth(creds: ClientCreds, provider: dict) -> OAuth2Session:
    """Authlib's client registered as ``creds``: client_secret_basic, or ``none`` if public."""
    method = "client_secret_basic" if creds.client_secret else "none"
    return OAuth2Session(creds.client_id, creds.client_secret, redirect_uri=creds.redirect_uri,
                         token_endpoint_auth_method=method,
                         token_endpoint=provider["token_endpoint"])


def push(session: OAuth2Session, provider: dict, params: dict, authenticate: bool = True):
    """POST the request to the PAR endpoint, the client authenticating as it does at the
    token endpoint (Authlib's own client authentication); the ``requests`` response."""
    data = dict(params)
    auth = None
    if authenticate:
        if session.token_endpoint_auth_method == "none":
            data["client_id"] = session.client_id
        else:
            auth = session.client_auth(session.token_endpoint_auth_method)
    return session.post(provider["pushed_authorization_request_endpoint"], data=data, auth=auth,
                        withhold_token=True)
