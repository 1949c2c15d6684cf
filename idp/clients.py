"""The registered clients (portals and services) as requests read them.

One frozen snapshot per worker and client (``idp.cache``): the token endpoint authenticates a
client on every call, and the sign-in pages read the portal's name and acr floor, without a
database round trip. Reading is all this module does; Authlib's view of a client (secrets,
redirect URIs, grant types) is ``idp.oidc.oauth_client``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from idp import db
from idp.cache import Snapshots
from idp.models import Client

# What a person's sign-in may grant a portal (OIDC Core 5.4, 11), and what a service may be
# granted over our own APIs (``idp.oidc.bearer``: the admin API, SCIM). A client is registered
# for some of these; it is granted only those it asks for within them.
USER_SCOPES = ("openid", "profile", "email", "offline_access")
API_SCOPES = {
    "admin:read": "read users, groups, sessions, the sign-in policy, portals and the audit log",
    "admin:write": "change users, groups, sessions, the sign-in policy and portals",
    "mfa:manage": "enforce, exempt, reset and unlock a user's second step; forget their browsers",
    "users:provision": "create, update, deactivate and delete users and groups (SCIM included)",
}
DEFAULT_SCOPE = "openid profile email offline_access"


@dataclass(frozen=True)
class ClientRef:
    """A ``Client`` row as requests read it, cached per worker (``idp.cache``)."""

    id: int
    tenant_id: int
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    id_token_signed_response_alg: str
    min_acr: str | None
    token_endpoint_auth_method: str | None = None  # None: its kind's default (see auth_method)
    jwks: dict | None = None
    jwks_uri: str | None = None
    subject_type: str = "public"
    sector_identifier_uri: str | None = None
    require_par: bool = False
    dpop_bound_access_tokens: bool = False
    request_object_signing_alg: str | None = None
    require_signed_request_object: bool = False

    @classmethod
    def of(cls, row: Client) -> ClientRef:
        return cls(row.id, row.tenant_id, row.client_id, row.name, row.secret_hash,
                   tuple(row.redirect_uris), tuple(row.post_logout_redirect_uris),
                   tuple(row.grant_types), row.scope, row.id_token_signed_response_alg,
                   row.min_acr, row.token_endpoint_auth_method, row.jwks, row.jwks_uri,
                   row.subject_type or "public", row.sector_identifier_uri,
                   bool(row.require_par), bool(row.dpop_bound_access_tokens),
                   row.request_object_signing_alg, bool(row.require_signed_request_object))

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None and self.auth_method == "none"

    @property
    def auth_method(self) -> str:
        """How it authenticates at our endpoints: its registered method, else a secret when it
        has one ("client_secret_basic" stands for both secret methods), else "none"."""
        if self.token_endpoint_auth_method:
            return self.token_endpoint_auth_method
        return "client_secret_basic" if self.secret_hash is not None else "none"


CLIENTS: Snapshots[tuple[int, str], ClientRef] = Snapshots("clients")


def client_ref(tenant_id: int, client_id) -> ClientRef | None:
    """The tenant's client ``client_id``; None for no such client, or for a value that cannot
    be one (``client_id`` comes from the request as it was sent)."""
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 64 or "\x00" in client_id:
        return None  # no such client (a NUL would reach PostgreSQL from a Basic header)
    return CLIENTS.get((tenant_id, client_id), lambda: _load_client(tenant_id, client_id))


def _load_client(tenant_id: int, client_id: str) -> ClientRef | None:
    row = db.session().scalar(
        select(Client).where(Client.client_id == client_id, Client.tenant_id == tenant_id))
    return ClientRef.of(row) if row else None
