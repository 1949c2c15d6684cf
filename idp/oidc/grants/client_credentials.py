"""The client credentials grant (RFC 6749 4.4): a service's own access token.

The token is a self-contained JWT (RFC 9068) and no row is written for it (``save_token``
skips it): this is the token endpoint's busiest path (benchmarks/README.md). Introspection
and revocation still govern it (``idp.oidc.endpoints.ServiceToken``).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import InvalidScopeError, grants
from authlib.oauth2.rfc6749.hooks import hooked

from idp.oidc.oauth_client import CONFIDENTIAL_METHODS


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A service's own token. Its scope is what the client asked for, within what it is
    registered for (``invalid_scope`` beyond that); without a ``scope`` parameter, all of the
    registered scope (RFC 6749 3.3)."""

    TOKEN_ENDPOINT_AUTH_METHODS = CONFIDENTIAL_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        requested = self.request.payload.scope
        beyond = self.client.scope_beyond(requested)
        if beyond:
            raise InvalidScopeError(f"This client may not ask for: {' '.join(beyond)}.")
        self.request.scope = " ".join(dict.fromkeys((requested or self.client.row.scope).split()))

    @hooked
    def create_token_response(self):
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
