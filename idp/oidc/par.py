"""The pushed authorization request endpoint, ``POST {issuer}/par`` (RFC 9126 2).

The client authenticates as at the token endpoint, by its registered method (a public client
names itself with ``client_id``, RFC 9126 2.1); the request is validated as /authorize would
validate it (``idp.oidc.authorize.validated``), a signed request object included, and kept
for /authorize under a ``request_uri`` (``idp.oidc.pushed``). Every error is JSON (RFC 9126
2.3): no browser is here to redirect.
"""

from __future__ import annotations

from authlib.oauth2 import OAuth2Error
from flask import current_app, g, jsonify, request

from idp.oidc import authorize as authz
from idp.oidc import pushed
from idp.oidc.grants.authorization_code import AuthorizationCodeGrant

# How the client proves who it is, not part of its authorization request.
CLIENT_AUTHENTICATION = {"client_secret", "client_assertion", "client_assertion_type"}


def _error(error: str, description: str, status: int = 400):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def push():
    server = current_app.extensions["idp.oauth"]
    oauth_request = server.create_oauth2_request(request)
    try:
        # The token endpoint's methods, private_key_jwt among them once registered; the
        # client's own registered method is the only one it passes
        # (``OAuthClient.check_endpoint_auth_method``).
        client = server.authenticate_client(oauth_request,
                                            AuthorizationCodeGrant.TOKEN_ENDPOINT_AUTH_METHODS,
                                            "pushed_authorization_request")
    except OAuth2Error as e:
        return server.handle_error_response(oauth_request, e)
    params = authz.single_valued(request.form)
    if isinstance(params, str):
        return _error("invalid_request", params)
    params = {k: v for k, v in params.items() if k not in CLIENT_AUTHENTICATION}
    if params.get("client_id", client.get_client_id()) != client.get_client_id():
        return _error("invalid_request", "client_id is not the client that authenticated.")
    params["client_id"] = client.get_client_id()
    if "request_uri" in params:
        return _error("invalid_request", "request_uri cannot be pushed (RFC 9126 2.1).")
    try:
        params = authz.requested(params, client)
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or not client.check_redirect_uri(redirect_uri):
            # Exact match, as at /authorize.
            return _error("invalid_request", "redirect_uri is missing or not registered for "
                                             "this client.")
        authz.validated(params, None, before_sign_in=True)
    except authz.ClientError as e:
        return _error(e.error, e.description)
    except OAuth2Error as e:
        return _error(e.error, e.get_error_description() or e.error)
    request_uri = pushed.push(g.tenant.id, client.get_client_id(), params)
    response = jsonify({"request_uri": request_uri, "expires_in": pushed.EXPIRES_IN})
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response
