"""Signed tokens: JWT access tokens (RFC 9068, ES256), ID token hints, and their checks.

Access tokens are self-contained so resource servers can verify them with JWKS alone; the
``tokens`` row behind each ``jti`` lets userinfo and introspection honour revocation.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws, jwt
from joserfc.errors import JoseError

from idp.oidc.keys import Keyring

ACCESS_TOKEN_ALG = "ES256"


class InvalidToken(ValueError):
    """The token is not one we issued for this issuer, or it has expired."""


def issue_access_token(
    keyring: Keyring, *, issuer: str, client_id: str, subject: str | None, scope: str, ttl: int,
    auth_time: int | None = None, acr: str | None = None, jti: str | None = None,
    now: int | None = None, jkt: str | None = None,
) -> tuple[str, str]:
    """Return (jwt, jti); ``jti`` and ``now`` when the token's row was written before it was
    signed (a refresh rotated in one statement); ``jkt``: the DPoP key it is bound to (RFC 9449
    6.1: ``cnf.jkt``)."""
    kid, key = keyring.active(ACCESS_TOKEN_ALG)
    now = int(time.time()) if now is None else now
    jti = jti or new_jti()
    claims = {
        "iss": issuer,
        "sub": subject or client_id,
        "aud": client_id,
        "client_id": client_id,
        "scope": scope,
        "jti": jti,
        "iat": now,
        "exp": now + ttl,
    }
    if auth_time is not None:
        claims["auth_time"] = auth_time
    if acr:
        claims["acr"] = acr
    if jkt:
        claims["cnf"] = {"jkt": jkt}
    header = {"alg": ACCESS_TOKEN_ALG, "kid": kid, "typ": "at+jwt"}
    return sign_es256(header, claims, key.private_key), jti


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def sign_es256(header: dict, claims: dict, private_key: ec.EllipticCurvePrivateKey) -> str:
    """A compact JWS (RFC 7515 3.1) signed with ES256 (RFC 7518 3.4: the P-256 signature as
    r || s, 32 bytes each): what ``joserfc.jwt.encode`` makes of the same header and claims,
    without its per-call registry checks, which cost as much as the signature itself on the
    busiest path (every access token). Tokens are still read with joserfc (``verify``)."""
    signing_input = (_b64(json.dumps(header, separators=(",", ":")).encode()) + b"."
                     + _b64(json.dumps(claims, separators=(",", ":")).encode()))
    r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return (signing_input + b"." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))).decode()


def new_jti() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Verified:
    header: dict
    claims: dict


def verify(keyring: Keyring, token: str, *, issuer: str, check_expiry: bool = True,
           typ: str | None = None) -> Verified:
    """Check signature (a published key of ours), issuer and, unless told not to, expiry."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 8192:
        raise InvalidToken("not a signed token")
    try:
        compact = jws.extract_compact(token.encode())
    except (JoseError, ValueError, UnicodeError):
        raise InvalidToken("malformed token") from None
    header = compact.protected
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    key = keyring.verification_key(str(header.get("kid", "")))
    alg = header.get("alg")
    if key is None or alg not in ("RS256", "ES256"):
        raise InvalidToken("not signed by a key of ours")
    if typ is not None and header.get("typ") != typ:
        raise InvalidToken("wrong token type")
    try:
        decoded = jwt.decode(token, key, algorithms=[alg])
    except (JoseError, ValueError):
        raise InvalidToken("bad signature") from None
    claims = dict(decoded.claims)
    if claims.get("iss") != issuer:
        raise InvalidToken("issued by another issuer")
    if check_expiry and not (isinstance(claims.get("exp"), int) and claims["exp"] > time.time()):
        raise InvalidToken("expired")
    return Verified(header, claims)


def verify_id_token_hint(keyring: Keyring, token: str, *, issuer: str,
                         client_id: str | None) -> dict:
    """The claims of ``token`` when it is an ID token this issuer gave ``client_id`` (any
    client when None), expired or not: what ``id_token_hint`` may carry at the authorization
    endpoint (OIDC Core 3.1.2.1) and at logout (RP-Initiated Logout 1.0, 2).

    Our access tokens are signed by the same keys for the same issuer, and a relying party
    may hand one to anyone it calls: one must not stand for the user's ID token. They say
    ``typ: at+jwt`` and carry ``client_id`` (RFC 9068 2.1, 2.2), which an ID token never does.
    """
    verified = verify(keyring, token, issuer=issuer, check_expiry=False)
    claims = verified.claims
    if verified.header.get("typ", "JWT") != "JWT" or "client_id" in claims:
        raise InvalidToken("not an ID token")
    audiences = claims.get("aud")
    audiences = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(claims.get("sub"), str) or not isinstance(audiences, list) \
            or not audiences or not all(isinstance(a, str) for a in audiences):
        raise InvalidToken("not an ID token")
    if client_id is not None and client_id not in audiences:
        raise InvalidToken("issued to another application")
    return {**claims, "aud": audiences}
