"""Who calls our own APIs (the admin API, SCIM): a service with a client-credentials access
token of this tenant (RFC 6750 bearer, RFC 9068 JWT), holding the scope the call needs.

A token is accepted when it is ours (signature, ``typ at+jwt``), of this issuer (so another
tenant's token is refused), unexpired, not revoked (``ServiceToken``), a service's own (no
user's token, whatever its scope) and of a client that still exists here. Its scopes are
what it was granted *and* the client is registered for now: taking a scope from a client
takes it from the tokens it already holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import after_this_request, request

from idp.clients import API_SCOPES, ClientRef
from idp.oidc import dpop, keys
from idp.oidc.endpoints import ServiceToken
from idp.oidc.tokens import InvalidToken, verify
from idp.web import issuer, settings


@dataclass(frozen=True)
class Caller:
    """The service behind a request: its client and the API scopes it holds."""

    client: ClientRef
    scopes: frozenset[str]
    jti: str

    @property
    def actor(self) -> str:
        """How the audit log names it."""
        return f"client:{self.client.client_id}"


class Refused(Exception):
    """The request may not be served; ``status``, ``error`` and ``description`` say why
    (RFC 6750 3.1), ``challenge`` is the ``WWW-Authenticate`` header to send."""

    def __init__(self, status: int, error: str | None, description: str, scope: str | None = None):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        parts = ['Bearer realm="' + issuer() + '"']
        if error:
            parts.append(f'error="{error}"')
            parts.append('error_description="' + description.replace('"', "'") + '"')
        if scope:
            parts.append(f'scope="{scope}"')
        self.challenge = ", ".join(parts)


def token_of_request() -> tuple[str, str]:
    """The scheme ("bearer" or "dpop", RFC 9449 7.1) and the access token."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if not header:
        raise Refused(401, None, "This API needs an access token (OAuth 2 client credentials).")
    if scheme not in ("bearer", "dpop") or not value.strip():
        raise Refused(400 if scheme not in ("bearer", "dpop") else 401, "invalid_request",
                      "Send the access token as: Authorization: Bearer <token> (or DPoP <token> "
                      "with a DPoP proof).")
    return scheme, value.strip()


def _send_nonce(value: str | None) -> None:
    """Send ``DPoP-Nonce`` with this answer, whichever handler makes it (RFC 9449 8, 8.2)."""
    if value:
        @after_this_request
        def _with_nonce(response):
            response.headers["DPoP-Nonce"] = value
            return response


def caller(*needed: str) -> Caller:
    """The service calling, holding every scope in ``needed`` (or raise ``Refused``). A
    DPoP-bound token must come with a proof of its key for the URL called (RFC 9449 7)."""
    scheme, access_token = token_of_request()
    try:
        claims = verify(keys.current(), access_token, issuer=issuer(), typ="at+jwt").claims
    except InvalidToken as e:
        refused = Refused(401, "invalid_token", f"The access token is not valid here ({e}).")
        if scheme == "dpop":  # answered in the scheme it was sent in (RFC 9449 7.1)
            refused.challenge = dpop.challenge("invalid_token", refused.description)
        raise refused from None
    try:
        dpop.at_resource(scheme, access_token, claims, request.headers, request.method,
                         settings().base_url + request.path)
    except dpop.ResourceRefused as refused:
        _send_nonce(refused.nonce)
        error = Refused(refused.status, refused.error, refused.description)
        error.challenge = refused.challenge
        raise error from None
    _send_nonce(dpop.fresh_nonce())
    token = ServiceToken.of(claims)
    if token is None:
        raise Refused(401, "invalid_token", "The access token is not a service's token of "
                                            "this tenant (use the client credentials grant).")
    if token.is_revoked():
        raise Refused(401, "invalid_token", "The access token was revoked.")
    if token.client.is_public:
        raise Refused(401, "invalid_token", "A public client cannot call this API.")
    granted = set(str(claims.get("scope", "")).split())
    held = frozenset(s for s in granted & set(token.client.scope.split()) if s in API_SCOPES)
    missing = [s for s in needed if s not in held]
    if missing:
        raise Refused(403, "insufficient_scope",
                      f"This call needs the scope {' '.join(missing)}.", " ".join(needed))
    return Caller(token.client, held, token.jti)
