"""``private_key_jwt`` client authentication (RFC 7523 2.2 and 3, OIDC Core 9): a client
proves itself with a JWT it signed with a private key whose public half it registered (its
``jwks`` or ``jwks_uri``, ``idp.oidc.client_keys``). Registered on Authlib's server for every
endpoint that authenticates clients: token, revocation, introspection and PAR.

What we require of the assertion, each refused with a 401 ``invalid_client`` that says why:

- ``client_assertion_type`` is RFC 7523's JWT bearer type; a ``client_id`` sent beside it
  names the same client;
- a JWS signed with an asymmetric algorithm we accept (``directory.CLIENT_SIGNING_ALGS``;
  never ``none``, never a MAC), by a key of the client's set (by ``kid`` when given);
- ``iss`` and ``sub`` are the client's id (RFC 7523 3, items 1 and 2);
- ``aud`` holds our issuer, our token endpoint's URL, or the URL of the endpoint it was sent
  to (OIDC Core 9 names the token endpoint; RFC 7523bis and FAPI 2.0 the issuer);
- ``exp`` is present, not past, and at most ``MAX_LIFETIME`` ahead; ``iat`` and ``nbf``,
  when present, not in the future (``LEEWAY`` for clocks);
- ``jti`` is present and used once: it is remembered (Redis, SET NX) until the assertion's
  ``exp`` (RFC 7523 3, item 7);
- the client registered ``private_key_jwt`` (a client with a secret proves itself with that).

``MAX_LIFETIME`` is an hour: it is what Authlib's and Okta's clients sign by default; the
``jti`` memory it implies is one short Redis key per assertion for at most that hour.

The check is written for speed (the benchmark's client credentials with ``private_key_jwt``):
the JWT is split and read with ``json``, its signature checked by ``cryptography`` on keys
imported once per client (``client_keys``), and one Redis command marks the ``jti``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc6749.authenticate_client import (authenticate_client_secret_basic,
                                                        authenticate_client_secret_post)
from authlib.oauth2.rfc6749.util import extract_basic_authorization

from idp.directory import CLIENT_SIGNING_ALGS
from idp.oidc import client_keys, dpop
from idp.web import issuer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME = 3600  # seconds an assertion's exp may lie ahead
LEEWAY = 60  # seconds of clock difference we forgive
MAX_ASSERTION = 8192  # characters: an assertion is a few hundred
USED_JTI = "client-assertion:{}:{}:{}"  # tenant id, client id, jti -> "1" until the exp


def refused(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


def _b64(part: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise refused("The client assertion is not a JWT (its parts are not base64url).") from None


def _json(part: str, what: str) -> dict:
    try:
        value = json.loads(_b64(part))
    except (ValueError, UnicodeError, RecursionError):
        raise refused(f"The client assertion's {what} is not JSON.") from None
    if not isinstance(value, dict):
        raise refused(f"The client assertion's {what} is not a JSON object.")
    return value


def authenticate_private_key_jwt(query_client, request):
    """Authlib's client authentication function for ``private_key_jwt``: the client when its
    assertion holds, None when the request carries no assertion (another method's turn)."""
    form = request.payload.data
    assertion = form.get("client_assertion")
    if assertion is None:
        return None
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise refused(f"client_assertion_type must be {ASSERTION_TYPE}.")
    if not isinstance(assertion, str) or len(assertion) > MAX_ASSERTION \
            or assertion.count(".") != 2:
        raise refused("The client assertion is not a signed JWT (JWS compact serialization).")
    head, body, signature = assertion.split(".")
    header = _json(head, "header")
    claims = _json(body, "claims")
    alg = header.get("alg")
    if alg not in CLIENT_SIGNING_ALGS:
        raise refused(f"The client assertion's alg must be one of {', '.join(CLIENT_SIGNING_ALGS)}"
                      f" (not {str(alg)[:20]!r}).")
    if "crit" in header:
        raise refused("The client assertion has a crit header we do not understand.")

    client_id = claims.get("sub")
    if not isinstance(client_id, str) or claims.get("iss") != client_id:
        raise refused("The client assertion's iss and sub must both be the client_id.")
    if form.get("client_id") not in (None, client_id):
        raise refused("The client assertion is not about the client_id sent with it.")
    client = query_client(client_id)
    if client is None:
        raise refused("The client does not exist on this server.")
    if client.row.auth_method != "private_key_jwt":
        raise refused("This client is not registered for private_key_jwt: it authenticates "
                      + ("with its client secret." if client.row.secret_hash else
                         "as a public client (none)."))

    _check_audience(claims.get("aud"), request.uri)
    exp = _check_times(claims)
    kid = header.get("kid")
    try:
        verified = client_keys.verify(client.row, kid if isinstance(kid, str) else None, alg,
                                      f"{head}.{body}".encode("ascii"), _b64(signature))
    except client_keys.NoClientKeys as error:
        raise refused(str(error)) from None
    if not verified:
        raise refused("The client assertion's signature does not verify with the client's keys.")

    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise refused("The client assertion needs a jti (a unique id).")
    ttl = max(1, int(exp - time.time()) + LEEWAY)
    # With the request's DPoP proof's mark, if it has one: one round trip for both.
    if not dpop.spend_request_proof((USED_JTI.format(client.row.tenant_id, client_id, jti), ttl)):
        raise refused("This client assertion was used already (its jti): sign a new one.")
    return client


def _check_audience(aud, uri: str) -> None:
    base = issuer()
    endpoint = urlsplit(uri).path.rstrip("/").rsplit("/", 1)[-1]
    accepted = {base, f"{base}/token", f"{base}/{endpoint}"}
    audiences = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a in accepted for a in audiences):
        raise refused(f"The client assertion's aud must be the issuer {base} or the endpoint's "
                      f"URL {base}/{endpoint}.")


def _check_times(claims: dict) -> float:
    now = time.time()
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise refused("The client assertion needs an exp (a NumericDate).")
    if exp <= now - LEEWAY:
        raise refused("The client assertion has expired (its exp).")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise refused(f"The client assertion's exp is too far ahead: at most {MAX_LIFETIME} "
                      "seconds.")
    for name in ("iat", "nbf"):
        value = claims.get(name)
        if value is None:
            continue
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise refused(f"The client assertion's {name} is not a NumericDate.")
        if value > now + LEEWAY:
            raise refused(f"The client assertion's {name} is in the future.")
    return exp


def _secret_method(authenticate, client_id_of):
    """Authlib's secret method, and for a client registered for private_key_jwt that sends a
    secret, a refusal that says how it must authenticate (rather than Authlib's list)."""

    def method(query_client, request):
        client = authenticate(query_client, request)
        if client is None:
            client_id = client_id_of(request)
            found = query_client(client_id) if client_id else None
            if found is not None and found.row.auth_method == "private_key_jwt":
                raise refused("This client authenticates with private_key_jwt (a signed "
                              "client_assertion), not a client secret.")
        return client

    return method


authenticate_secret_basic = _secret_method(
    authenticate_client_secret_basic,
    lambda request: extract_basic_authorization(request.headers)[0])
authenticate_secret_post = _secret_method(
    authenticate_client_secret_post,
    lambda request: request.form.get("client_secret") and request.form.get("client_id"))
