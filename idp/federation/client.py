"""Talking to an upstream OpenID provider: here we are the relying party.

The round trip is the authorization code flow of OIDC Core 3.1 with PKCE S256 (RFC 7636),
``state`` and ``nonce``, run by Authlib's OAuth 2 client (``oauth_client``); the code is
exchanged over the back channel (``exchange_code``) and the ID token checked as OIDC Core
3.1.3.7 asks, with joserfc, against the upstream's published keys (``verified_claims``), then
completed from userinfo when it lacks the email (OIDC Core 5.3).

Discovery is checked before anything is sent (``endpoints.endpoint_problem``): an https
upstream keeps its back channel on https and on its own host, unless the admin listed another
host for it. Everything an upstream answers is read within the bounds of ``idp.untrusted``: a
broken or compromised upstream gets an error page, never a 500.

The hosted pages that send the browser there and take it back are ``idp.login.federation``;
which local account the upstream's subject is, ``idp.federation.linking``.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Callable

import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.federation.endpoints import endpoint_problem
from idp.models import Upstream
from idp.untrusted import UntrustedInput, parse_json_object
from idp.web import issuer

SCOPE = "openid email profile"
METADATA_TTL = 300  # discovery and JWKS are cached per process this long (seconds)
HTTP_TIMEOUT = (3.05, 10)  # (connect, read): a slow upstream must not hold a worker for long
LEEWAY = 60  # clock skew allowed on exp / iat / auth_time (RFC 7519 4.1.4 "small leeway")
MAX_UPSTREAM_JSON = 1024 * 1024  # discovery, a JWK set with certificate chains, a token response
# Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) are never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


# --- Talking to the upstream --------------------------------------------------------------------


class UpstreamUnavailable(Exception):
    """The upstream could not be reached, or what it published is unusable."""


_cache: dict[str, tuple[float, object]] = {}


def _cached(key: str, fetch: Callable[[], object], refresh: bool = False):
    """A per-process cache entry (a few minutes), fetched on a miss or when told to refresh."""
    hit = _cache.get(key)
    if hit and not refresh and hit[0] > time.monotonic():
        return hit[1]
    value = fetch()
    _cache[key] = (time.monotonic() + METADATA_TTL, value)
    return value


def _get_json(url: str) -> dict:
    try:
        # Redirects are not followed: the address checked is the address asked (endpoint_problem).
        response = requests.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"},
                                allow_redirects=False)
        if response.is_redirect:
            raise UpstreamUnavailable(f"{url}: answered with a redirect, which is not followed")
        response.raise_for_status()
        return _upstream_json(response, "document")
    except (requests.RequestException, UntrustedInput) as e:
        raise UpstreamUnavailable(f"{url}: {e}") from None


def _upstream_json(response: requests.Response, what: str) -> dict:
    """An upstream's answer, read within the bounds of ``idp.untrusted``: a compromised or
    broken upstream gets an error page, never a 500."""
    return parse_json_object(response.content, what=what, max_length=MAX_UPSTREAM_JSON)


def _read_token_response(response: requests.Response) -> requests.Response:
    """Authlib's compliance hook: the token response is checked before Authlib parses it."""
    _upstream_json(response, "token response")
    return response


class UpstreamMisconfigured(UpstreamUnavailable):
    """The upstream answered, but what it published may not be used (the message says why)."""


def _discovery(upstream_issuer: str) -> dict:
    """The upstream's discovery document (OIDC Discovery 4), cached for a few minutes."""

    def fetch():
        doc = _get_json(f"{upstream_issuer}/.well-known/openid-configuration")
        # OIDC Discovery 4.3: the issuer in the document MUST be exactly the one we asked.
        if doc.get("issuer") != upstream_issuer:
            raise UpstreamMisconfigured(f"its discovery document names the issuer "
                                        f"{doc.get('issuer')!r}, not {upstream_issuer!r}")
        return doc

    return _cached(f"discovery:{upstream_issuer}", fetch)


def metadata(upstream_issuer: str, back_channel_hosts=()) -> dict:
    """The discovery document, once every endpoint we use passes ``endpoint_problem``; else
    UpstreamMisconfigured. Checked on every use: upstreams sharing an issuer may list hosts
    differently, and the cached document may be newer than the upstream's last check."""
    doc = _discovery(upstream_issuer)
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        if name == "userinfo_endpoint" and name not in doc:
            continue
        problem = endpoint_problem(upstream_issuer, name, doc.get(name), back_channel_hosts)
        if problem:
            raise UpstreamMisconfigured(problem)
    return doc


def upstream_metadata(upstream: Upstream) -> dict:
    return metadata(upstream.issuer, tuple(upstream.back_channel_hosts or ()))


def signing_keys(jwks_uri: str, refresh: bool = False) -> KeySet:
    def fetch():
        try:
            return KeySet.import_key_set(_get_json(jwks_uri))
        except (JoseError, ValueError, KeyError, TypeError) as e:
            raise UpstreamUnavailable(f"{jwks_uri}: not a usable JWK set ({e})") from None

    return _cached(f"jwks:{jwks_uri}", fetch, refresh=refresh)


def oauth_client(upstream: Upstream, doc: dict) -> OAuth2Session:
    """Authlib's client for ``upstream``: our client id and secret there, PKCE S256, the
    token endpoint authentication it supports, and its token response read as untrusted."""
    secret = current_app.extensions["idp.secretbox"].decrypt(upstream.client_secret_sealed)
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_post" if "client_secret_basic" not in methods and \
        "client_secret_post" in methods else "client_secret_basic"
    session = OAuth2Session(upstream.client_id, secret, scope=SCOPE,
                            redirect_uri=callback_url(upstream), code_challenge_method="S256",
                            token_endpoint_auth_method=auth_method, default_timeout=HTTP_TIMEOUT)
    session.register_compliance_hook("access_token_response", _read_token_response)
    return session


def callback_url(upstream: Upstream) -> str:
    """Where the upstream sends the browser back; ``idp upstream add`` prints the same URL."""
    return f"{issuer()}/login/upstream/{upstream.slug}/callback"


# --- The ID token (OIDC Core 3.1.3.7) ----------------------------------------------------------


class UntrustedToken(ValueError):
    """The upstream's ID token failed a check; the message says which, for logs and the page."""


def _half_hash(value: str, alg: str) -> str:
    """``at_hash`` (OIDC Core 3.1.3.6): the left half of the hash that matches the JWS alg."""
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    raw = digest(value.encode()).digest()
    return base64.urlsafe_b64encode(raw[: len(raw) // 2]).rstrip(b"=").decode()


def validate_id_token(id_token, *, issuer: str, client_id: str, nonce: str,
                      keys: KeySet | Callable[[bool], KeySet], algorithms=ALGORITHMS,
                      access_token: str | None = None, max_age: int | None = None,
                      now: int | None = None) -> dict:
    """The ID token's claims, once every check of OIDC Core 3.1.3.7 passed; else UntrustedToken.

    ``keys`` is the upstream's JWK set, or a function ``keys(refresh)`` that fetches it (asked
    again once, with ``refresh=True``, when the token names a key id we do not have: the
    upstream may have rotated its keys since we cached them).
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2 or len(id_token) > 16384:
        raise UntrustedToken("the ID token is not a signed JWT")
    try:
        header = jws.extract_compact(id_token.encode()).protected
    except (JoseError, ValueError, UnicodeError):
        raise UntrustedToken("the ID token is malformed") from None
    alg = header.get("alg") if isinstance(header, dict) else None
    # 3.1.3.7 step 7: the alg is one we expect; never "none", never a MAC (RFC 8725 3.1).
    if alg not in algorithms or alg not in ALGORITHMS:
        raise UntrustedToken(f"the ID token is signed with {alg!r}, which is not accepted")
    kid = header.get("kid")
    key = _pick_key(keys(False) if callable(keys) else keys, alg, kid)
    if key is None and callable(keys):
        key = _pick_key(keys(True), alg, kid)
    if key is None:
        raise UntrustedToken("the ID token is not signed by a key the upstream publishes")
    # Step 6: the signature, with the upstream's key.
    try:
        claims = dict(jwt.decode(id_token, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError):
        raise UntrustedToken("the ID token's signature is not valid") from None
    # Steps 2, 3, 9, 10, 11: iss exactly, our client id among the audiences, exp, iat, nonce.
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as e:
        raise UntrustedToken(f"the ID token's claims do not check out ({e})") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    # Steps 3-5: other audiences are only acceptable when we are the authorized party.
    if claims.get("azp", client_id) != client_id or (len(audiences) > 1 and "azp" not in claims):
        raise UntrustedToken("the ID token was issued to another party (azp)")
    if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:
        raise UntrustedToken("the ID token's subject is not usable")
    # at_hash (3.1.3.8, 3.2.2.9): when present it binds the ID token to this access token.
    if "at_hash" in claims and access_token and alg != "EdDSA":
        if claims["at_hash"] != _half_hash(access_token, alg):
            raise UntrustedToken("the ID token does not belong to this access token (at_hash)")
    # Step 13: we asked for a recent sign-in (max_age), so auth_time must show one.
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, (int, float)) or isinstance(auth_time, bool) or \
                auth_time + max_age + LEEWAY < (now if now is not None else time.time()):
            raise UntrustedToken("the upstream did not sign the user in recently enough (auth_time)")
    return claims


# --- Userinfo (OIDC Core 5.3) -------------------------------------------------------------------

# What we read about the person; never sub, amr or acr, which only the ID token may say.
PROFILE_CLAIMS = ("email", "email_verified", "name", "given_name", "family_name")


def with_userinfo(claims: dict, doc: dict, access_token: str | None, *, issuer: str,
                  client_id: str, keys: Callable[[bool], KeySet]) -> dict:
    """The ID token's claims, completed from the userinfo endpoint when they lack the email.

    With the code flow, OIDC Core 5.4 lets a provider keep the ``email`` and ``profile`` scopes'
    claims out of the ID token and serve them at userinfo (panva's oidc-provider does, as do
    many corporate ones). The answer is about the ID token's subject or it is not used (5.3.2);
    an address from the ID token gets only its ``email_verified`` from userinfo, and only when
    both name the same address.
    """
    if "email" in claims and "email_verified" in claims:
        return claims
    endpoint = doc.get("userinfo_endpoint")
    if not endpoint or not access_token:
        return claims
    info = _userinfo(endpoint, access_token, issuer=issuer, client_id=client_id, keys=keys)
    if info.get("sub") != claims["sub"]:
        raise UntrustedToken("the userinfo answer is about someone else (sub)")
    merged = dict(claims)
    if "email" not in claims:
        for name in ("email", "email_verified"):
            if name in info:
                merged[name] = info[name]
    elif info.get("email") == claims["email"] and "email_verified" in info:
        merged["email_verified"] = info["email_verified"]
    for name in PROFILE_CLAIMS[2:]:
        if name not in merged and name in info:
            merged[name] = info[name]
    return merged


def _userinfo(endpoint: str, access_token: str, *, issuer: str, client_id: str,
              keys: Callable[[bool], KeySet]) -> dict:
    """The userinfo answer (JSON, or a JWT signed by the upstream, OIDC Core 5.3.2)."""
    try:
        response = requests.get(endpoint, timeout=HTTP_TIMEOUT, allow_redirects=False,
                                headers={"Authorization": f"Bearer {access_token}",
                                         "Accept": "application/json, application/jwt"})
        if response.is_redirect:
            raise UpstreamUnavailable(f"{endpoint}: answered with a redirect, which is not followed")
        response.raise_for_status()
    except requests.RequestException as e:
        raise UpstreamUnavailable(f"{endpoint}: {e}") from None
    if response.headers.get("Content-Type", "").split(";")[0].strip() != "application/jwt":
        try:
            return _upstream_json(response, "userinfo answer")
        except UntrustedInput as e:
            raise UpstreamUnavailable(f"{endpoint}: {e}") from None
    signed = response.text.strip()
    try:
        header = jws.extract_compact(signed.encode()).protected
        alg = header.get("alg")
        key = _pick_key(keys(False), alg, header.get("kid")) if alg in ALGORITHMS else None
        if key is None:
            raise UntrustedToken("the userinfo answer is not signed by a key the upstream "
                                 "publishes")
        info = dict(jwt.decode(signed, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError, UnicodeError, AttributeError):
        raise UntrustedToken("the signed userinfo answer is not valid") from None
    audiences = info.get("aud") if isinstance(info.get("aud"), list) else [info.get("aud")]
    if info.get("iss") != issuer or client_id not in audiences:
        raise UntrustedToken("the signed userinfo answer was not issued to us by the upstream")
    return info


def _pick_key(keyset: KeySet, alg: str, kid):
    wanted_type = KEY_TYPES.get(alg[:2])
    candidates = [k for k in keyset.keys
                  if k.key_type == wanted_type and k.get("use", "sig") == "sig"
                  and k.get("alg", alg) == alg]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
    # Without a kid, only an unambiguous key will do (OIDC Core 10.1).
    return candidates[0] if len(candidates) == 1 else None


# --- The answer to a sign-in --------------------------------------------------------------------


def exchange_code(upstream: Upstream, doc: dict, code: str, verifier: str) -> dict:
    """The upstream's token response for ``code``, fetched over the back channel with the PKCE
    verifier (RFC 7636 4.5). Authlib's OAuthError when the upstream refuses the code;
    requests' errors or ValueError when it cannot be reached or answers nonsense."""
    return oauth_client(upstream, doc).fetch_token(doc["token_endpoint"], code=code,
                                                   code_verifier=verifier, allow_redirects=False)


def verified_claims(upstream: Upstream, doc: dict, token: dict, *, nonce: str,
                    max_age: int | None) -> dict:
    """What the upstream says about the person: the ID token's claims once every check passed
    (``validate_id_token``), completed from userinfo (``with_userinfo``). UntrustedToken when a
    check fails; UpstreamUnavailable when its keys or userinfo cannot be read."""

    def keys(refresh: bool) -> KeySet:
        return signing_keys(doc["jwks_uri"], refresh)

    algorithms = [a for a in doc.get("id_token_signing_alg_values_supported") or ["RS256"]
                  if a in ALGORITHMS]
    claims = validate_id_token(
        token.get("id_token"), issuer=upstream.issuer, client_id=upstream.client_id,
        nonce=nonce, keys=keys, algorithms=algorithms,
        access_token=token.get("access_token"), max_age=max_age)
    return with_userinfo(claims, doc, token.get("access_token"), issuer=upstream.issuer,
                         client_id=upstream.client_id, keys=keys)
