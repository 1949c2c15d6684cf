"""Signed request objects (JAR, RFC 9101): an authorization request as a JWT the client signed.

Accepted only signed by one of the client's own keys (``idp.oidc.client_keys``) with an
asymmetric algorithm it may use: never ``none`` (RFC 9101 10.1 leaves it to us; an unsigned
request proves nothing) and never an HMAC (its secret is ours to verify only as a hash). The
request object's parameters are the request: those outside it are not used (RFC 9101 6.3);
only ``client_id`` must agree with it.
"""

from __future__ import annotations

import json
import time

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jws import extract_compact

from idp.clients import ClientRef
from idp.directory import CLIENT_SIGNING_ALGS
from idp.oidc import client_keys

# A request object is made just before it is sent: one valid longer than this is a standing
# permission, not a request (FAPI 2.0 message signing asks for at most 60 minutes).
MAX_LIFETIME = 3600
LEEWAY = 60  # seconds of clock difference forgiven on ``exp``'s upper bound and on ``nbf``
# The JWT's own claims (RFC 7519 4.1): about the request object, not parameters of the request.
JWT_CLAIMS = {"iss", "aud", "exp", "nbf", "iat", "jti", "sub"}


class BadRequestObject(Exception):
    """The request object cannot be used; the message says why (``invalid_request_object``)."""


def algorithms(client: ClientRef) -> list[str]:
    """The algorithms a request object of ``client`` may be signed with."""
    if client.request_object_signing_alg:
        return [client.request_object_signing_alg]
    return list(CLIENT_SIGNING_ALGS)


def parameters(client: ClientRef, token: str, issuer: str, now: float | None = None) -> dict:
    """The authorization request inside ``token``, as single string parameters, once its
    signature and its claims are checked (RFC 9101 6.2, 6.3)."""
    now = time.time() if now is None else now
    try:
        header = extract_compact(token.encode()).protected
    except (JoseError, ValueError, TypeError):
        raise BadRequestObject("The request object is not a signed JWT (JWS compact "
                               "serialization).") from None
    alg = header.get("alg")
    if alg not in algorithms(client):
        raise BadRequestObject(f"The request object's alg {alg!r} is not accepted; use one of "
                               f"{', '.join(algorithms(client))}.")
    claims = _verified_claims(client, token, alg, header.get("kid"))
    _check_claims(client, claims, issuer, now)
    return _as_parameters(claims)


def _verified_claims(client: ClientRef, token: str, alg: str, kid) -> dict:
    try:
        keys = client_keys.keyset(client)
    except client_keys.NoClientKeys as e:
        raise BadRequestObject(str(e)) from None
    # Without a ``kid``, any of the client's keys that suits the algorithm may have signed it.
    candidates = [key for key in keys.keys if kid is None or key.kid == kid]
    for key in candidates:
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError, TypeError):
            continue
        if not isinstance(claims, dict):
            break
        return claims
    raise BadRequestObject("The request object's signature does not verify with the "
                           "client's registered keys.")


def _check_claims(client: ClientRef, claims: dict, issuer: str, now: float) -> None:
    if claims.get("iss") != client.client_id:
        raise BadRequestObject("The request object's iss must be the client_id.")
    aud = claims.get("aud")
    if not (aud == issuer or (isinstance(aud, list) and issuer in aud)):
        raise BadRequestObject(f"The request object's aud must be the issuer, {issuer}.")
    if claims.get("client_id") != client.client_id:
        raise BadRequestObject("The request object's client_id must be the client_id of the "
                               "request.")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not _number(exp):
        raise BadRequestObject("The request object must have an exp (expiry time).")
    if exp <= now:
        raise BadRequestObject("The request object has expired.")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise BadRequestObject(f"The request object must expire within {MAX_LIFETIME} seconds.")
    if nbf is not None and (not _number(nbf) or nbf > now + LEEWAY):
        raise BadRequestObject("The request object is not valid yet (nbf).")
    for nested in ("request", "request_uri"):
        if nested in claims:
            raise BadRequestObject(f"A request object must not contain {nested}.")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_parameters(claims: dict) -> dict:
    """The request's parameters as /authorize receives them: strings. OIDC Core 6.1 lets a
    number be a number (``max_age``) and ``claims`` be an object; nothing else is guessed at."""
    params = {}
    for name, value in claims.items():
        if name in JWT_CLAIMS:
            continue
        if isinstance(value, str):
            params[name] = value
        elif _number(value) and float(value).is_integer():
            params[name] = str(int(value))
        elif name == "claims" and isinstance(value, dict):
            params[name] = json.dumps(value, separators=(",", ":"))
        else:
            raise BadRequestObject(f"The request object's {name} must be a string.")
    return params
