"""Client metadata as dynamic registration sends and answers it (RFC 7591 2, OIDC
Registration 2, RFC 9126 6, RFC 9449 5.2, RFC 9101 10.5): a JSON object read into the options of
``directory.create_client`` — which checks a registered portal as it checks an admin's — and a
stored client written back as that object.

What is refused is refused with the RFC's error code and a description a developer can act
on (``Refused``): ``invalid_redirect_uri`` for a redirect URI, ``invalid_client_metadata`` for
anything else. Unknown metadata is ignored (RFC 7591 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.clients import API_SCOPES, DEFAULT_SCOPE, USER_SCOPES
from idp.directory import (AUTH_METHODS, CLIENT_SIGNING_ALGS, GRANT_TYPES, ID_TOKEN_ALGS,
                           SUBJECT_TYPES, DirectoryError, _check_uri)
from idp.models import Client

MAX_URIS = 50
MAX_URI_LENGTH = 2000
MAX_TEXT = 200
MAX_CONTACTS = 20
# Kept only to show back (RFC 7591 2): they change nothing we do, so they live in
# ``registration_metadata``. The URLs are pages people open: https only.
INFORMATIONAL_URLS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
INFORMATIONAL_TEXT = ("software_id", "software_version")
# RFC 7591 2: "If omitted, the default is that the client will use only the
# authorization_code Grant Type", authenticating with client_secret_basic.
DEFAULT_GRANTS = ["authorization_code"]
DEFAULT_AUTH_METHOD = "client_secret_basic"


class Refused(ValueError):
    """Registration metadata we do not accept (RFC 7591 3.2.2)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


def _bad(description: str) -> Refused:
    return Refused("invalid_client_metadata", description)


@dataclass(frozen=True)
class Registration:
    """What a registration asks for: ``options`` for ``directory.create_client``."""

    name: str
    redirect_uris: list[str]
    options: dict


def _text(body: dict, key: str, limit: int = MAX_TEXT) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{key} must be a string")
    if len(value) > limit:
        raise _bad(f"{key} is at most {limit} characters")
    return value


def _flag(body: dict, key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(f"{key} must be true or false")
    return value


def _strings(body: dict, key: str, limit: int = MAX_URIS, *, default=None) -> list[str]:
    value = body.get(key)
    if value is None:
        return list(default or [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"{key} must be an array of strings")
    if len(value) > limit:
        raise _bad(f"{key} holds at most {limit} values")
    return list(dict.fromkeys(value))


def host_allowed(host: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """``host`` matches one of the tenant's patterns: "portal.example.com" exactly,
    "*.example.com" any sub-domain of example.com (not example.com itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = str(pattern).lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def _addresses(body: dict, key: str, what: str, hosts: tuple[str, ...], error: str) -> list[str]:
    """Redirect (or post-logout redirect) URIs: the usual rules (absolute, https or loopback
    http, no fragment; ``directory``), and within the tenant's hosts when it names some."""
    uris = _strings(body, key)
    for uri in uris:
        if len(uri) > MAX_URI_LENGTH:
            raise Refused(error, f"a {what} is at most {MAX_URI_LENGTH} characters")
        try:
            _check_uri(uri, what)
        except DirectoryError as e:
            raise Refused(error, str(e)) from None
        # Browsers read "\\" as "/" (WHATWG URL): "https://evil.test\\@app.example/cb" goes to
        # evil.test, though its host is app.example to urlsplit; a user name misleads alike.
        if "\\" in uri or "@" in urlsplit(uri).netloc:
            raise Refused(error, f"a {what} must not hold a user name or a backslash: {uri!r}")
        if hosts and not host_allowed(urlsplit(uri).hostname or "", hosts):
            raise Refused(error, f"{what} {uri!r} is not at a host this organisation allows for "
                                 f"registered clients ({', '.join(hosts)})")
    return uris


def _https_url(body: dict, key: str) -> str | None:
    url = _text(body, key, MAX_URI_LENGTH)
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        raise _bad(f"{key} is not a valid URL") from None
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in url):
        raise _bad(f"{key} must be an https URL")
    return url


def _jwks(body: dict) -> dict | None:
    """The client's public keys inline (RFC 7591 2): a JWK Set of public keys only."""
    jwks = body.get("jwks")
    if jwks is None:
        return None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise _bad('jwks must be a JWK Set: {"keys": [...]} with at least one key')
    if len(jwks["keys"]) > 20:
        raise _bad("jwks holds at most 20 keys")
    for key in jwks["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in ("RSA", "EC", "OKP"):
            raise _bad("each key in jwks must be an RSA, EC or OKP public key")
        if any(private in key for private in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise _bad("jwks must hold public keys only: never send a private key")
    try:
        KeySet.import_key_set(jwks)
    except (JoseError, ValueError, TypeError, KeyError):
        raise _bad("jwks holds a key that cannot be read") from None
    return jwks


def _scope(body: dict) -> str:
    scope = _text(body, "scope", 1000)
    if scope is None:
        return DEFAULT_SCOPE
    names = list(dict.fromkeys(scope.split()))
    admin = [s for s in names if s in API_SCOPES]
    if admin:
        raise _bad(f"the scope {admin[0]} is not for a registered client: an administrator "
                   "grants admin API scopes in the console")
    unknown = [s for s in names if s not in USER_SCOPES]
    if unknown:
        raise _bad(f"unknown scope {unknown[0]!r}: a registered client may ask for "
                   f"{', '.join(USER_SCOPES)}")
    return " ".join(names)


def read(body: dict, redirect_hosts: tuple[str, ...] = ()) -> Registration:
    """RFC 7591 2's metadata as ``create_client``'s options; raises ``Refused``."""
    grant_types = _strings(body, "grant_types", 10, default=DEFAULT_GRANTS)
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown or not grant_types:
        raise _bad(f"grant type {(unknown or [''])[0]!r} is not supported: grant_types must be "
                   f"among {', '.join(GRANT_TYPES)}")
    code = "authorization_code" in grant_types
    response_types = _strings(body, "response_types", 10, default=["code"] if code else [])
    if [r for r in response_types if r != "code"]:
        raise _bad("response_types: only code is supported")
    if ("code" in response_types) != code:
        raise _bad("response_types code goes with the authorization_code grant type, and only "
                   "with it (RFC 7591 2.1)")
    method = _text(body, "token_endpoint_auth_method") or DEFAULT_AUTH_METHOD
    if method not in AUTH_METHODS:
        raise _bad(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}")
    jwks, jwks_uri = _jwks(body), _text(body, "jwks_uri", MAX_URI_LENGTH)
    if jwks and jwks_uri:
        raise _bad("send jwks or jwks_uri, not both (RFC 7591 2)")
    alg = _text(body, "id_token_signed_response_alg") or "RS256"
    if alg not in ID_TOKEN_ALGS:
        raise _bad(f"id_token_signed_response_alg must be one of {', '.join(ID_TOKEN_ALGS)}")
    subject_type = _text(body, "subject_type") or "public"
    if subject_type not in SUBJECT_TYPES:
        raise _bad(f"subject_type must be one of {', '.join(SUBJECT_TYPES)}")
    request_alg = _text(body, "request_object_signing_alg")
    if request_alg is not None and request_alg not in CLIENT_SIGNING_ALGS:
        raise _bad(f"request_object_signing_alg must be one of {', '.join(CLIENT_SIGNING_ALGS)}")
    redirect_uris = _addresses(body, "redirect_uris", "redirect URI", redirect_hosts,
                               "invalid_redirect_uri")
    if code and not redirect_uris:
        raise Refused("invalid_redirect_uri", "the authorization_code grant needs at least one "
                                              "redirect URI in redirect_uris")
    logout_uris = _addresses(body, "post_logout_redirect_uris", "post-logout redirect URI",
                             redirect_hosts, "invalid_client_metadata")
    name = (_text(body, "client_name") or "").strip()
    if not name:
        hosts = [urlsplit(u).hostname for u in redirect_uris]
        name = hosts[0] if hosts else (_text(body, "software_id") or "Registered client")
    informational: dict = {}
    for key in INFORMATIONAL_URLS:
        if (url := _https_url(body, key)) is not None:
            informational[key] = url
    for key in INFORMATIONAL_TEXT:
        if (text := _text(body, key)) is not None:
            informational[key] = text
    contacts = _strings(body, "contacts", MAX_CONTACTS)
    if any(len(c) > 320 or not c.strip() for c in contacts):
        raise _bad("contacts must be e-mail addresses (at most 320 characters each)")
    if contacts:
        informational["contacts"] = contacts
    options = dict(
        post_logout_redirect_uris=logout_uris, grant_types=grant_types, id_token_alg=alg,
        backchannel_logout_uri=_text(body, "backchannel_logout_uri", MAX_URI_LENGTH),
        backchannel_logout_session_required=_flag(body, "backchannel_logout_session_required"),
        scope=_scope(body), auth_method=method, jwks=jwks, jwks_uri=jwks_uri,
        subject_type=subject_type,
        sector_identifier_uri=_text(body, "sector_identifier_uri", MAX_URI_LENGTH),
        require_par=_flag(body, "require_pushed_authorization_requests"),
        dpop_bound_access_tokens=_flag(body, "dpop_bound_access_tokens"),
        request_object_signing_alg=request_alg,
        require_signed_request_object=_flag(body, "require_signed_request_object"),
        registration_metadata=informational)
    return Registration(name[:MAX_TEXT], redirect_uris, options)


def auth_method(client: Client) -> str:
    """The method registered (``ClientRef.auth_method``'s rule, on the row)."""
    if client.token_endpoint_auth_method:
        return client.token_endpoint_auth_method
    return "client_secret_basic" if client.secret_hash is not None else "none"


def written(client: Client) -> dict:
    """The client's metadata as stored (RFC 7591 3.2.1), without secrets or tokens."""
    metadata = {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.name,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"] if "authorization_code" in client.grant_types else [],
        "token_endpoint_auth_method": auth_method(client),
        "scope": client.scope,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "subject_type": client.subject_type or "public",
        "sector_identifier_uri": client.sector_identifier_uri,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "backchannel_logout_session_required": client.backchannel_logout_session_required,
        "require_pushed_authorization_requests": client.require_par,
        "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
        "request_object_signing_alg": client.request_object_signing_alg,
        "require_signed_request_object": client.require_signed_request_object,
        **dict(client.registration_metadata or {}),
    }
    return {k: v for k, v in metadata.items() if v is not None}
