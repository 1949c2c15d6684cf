"""Authlib's view of a registered client: ``query_client`` and the ``ClientMixin`` it returns.

The snapshot it wraps is ``idp.clients``'s (cached per worker); what this module adds is the
protocol's questions about it: which secret, redirect URI, grant type and scopes it may use.
"""

from __future__ import annotations

from flask import g

from idp import hashing
from idp.clients import API_SCOPES, ClientRef, client_ref

SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
CONFIDENTIAL_METHODS = SECRET_METHODS + ["private_key_jwt"]  # idp.oidc.client_auth
ALL_METHODS = CONFIDENTIAL_METHODS + ["none"]


class OAuthClient:
    """Authlib's view of a client (ClientMixin)."""

    def __init__(self, row: ClientRef):
        self.row = row
        self.id_token_signed_response_alg = row.id_token_signed_response_alg

    def get_client_id(self):
        return self.row.client_id

    def get_default_redirect_uri(self):
        return None  # OIDC requires redirect_uri; never guess one

    def get_allowed_scope(self, scope):
        """What a person's sign-in grants: the requested scopes the client is registered for,
        never an API scope (those are the service's own, ``ClientCredentialsGrant``'s)."""
        allowed = set(self.row.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed and s not in API_SCOPES)

    def scope_beyond(self, scope) -> list[str]:
        """The requested scopes this client is not registered for."""
        allowed = set(self.row.scope.split())
        return [s for s in (scope or "").split() if s not in allowed]

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.row.redirect_uris  # exact string match

    def check_client_secret(self, client_secret):
        return hashing.matches("client-secret", client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        """Only the way it registered: either secret method for a secret, else exactly its own."""
        wanted = self.row.auth_method
        if wanted in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == wanted

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in self.row.grant_types


def query_client(client_id) -> OAuthClient | None:
    """The request's tenant's client, as Authlib asks for it (``client_id`` as sent)."""
    found = client_ref(g.tenant.id, client_id)
    return OAuthClient(found) if found else None
