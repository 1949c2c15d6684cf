"""Authlib's authorization server, wired to our tables, keys and tenants.

Authlib runs the protocol (grants, client authentication, PKCE, revocation, introspection);
we supply what it asks for, one module each: the client (``idp.oidc.oauth_client``), the
grants (``idp.oidc.grants``), the tokens they issue and store (``idp.oidc.issue``), the ID
token (``idp.oidc.id_token``) and the revocation and introspection endpoints
(``idp.oidc.endpoints``). This module is the server itself and its wiring.
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request
from flask import Flask, current_app, g

from idp.oidc import dpop
from idp.oidc.client_auth import (authenticate_private_key_jwt, authenticate_secret_basic,
                                  authenticate_secret_post)
from idp.oidc.endpoints import Introspection, Revocation
from idp.oidc.grants.authorization_code import AuthorizationCodeGrant, S256Only
from idp.oidc.grants.client_credentials import ClientCredentialsGrant
from idp.oidc.grants.refresh_token import RefreshTokenGrant
from idp.oidc.id_token import OpenIDExtension
from idp.oidc.issue import generate_token, save_token
from idp.oidc.oauth_client import query_client
from idp.web import issuer


@dataclass(frozen=True)
class PlainResponse:
    """An endpoint's answer as idp.oidc.direct sends it: what Authlib's Flask integration puts
    in a ``Response`` (the JSON body, its headers, then Content-Length), without building one."""

    status_code: int
    headers: list
    data: bytes


class Server(AuthorizationServer):
    def handle_response(self, status_code, payload, headers):
        fresh = g.get("dpop_nonce")
        if fresh:  # RFC 9449 8.2: the client keeps the newest nonce it was given
            headers = list(headers) + [("DPoP-Nonce", fresh)]
        if not g.get("plain_response"):
            return super().handle_response(status_code, payload, headers)
        body = (current_app.json.dumps(payload) if isinstance(payload, dict) else payload).encode()
        return PlainResponse(status_code, list(headers) + [("Content-Length", str(len(body)))], body)

    def create_oauth2_request(self, request):
        # The authorization endpoint and idp.oidc.direct hand us requests of their own.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def create_token_response(self, request=None):
        # "Request and response parameters MUST NOT be included more than once" (RFC 6749
        # 3.2): which of two refresh tokens or scopes was meant is not ours to guess.
        request = self.create_oauth2_request(request)
        repeated = [name for name, values in request.payload.datalist.items() if len(values) > 1]
        if repeated:
            return self.handle_error_response(
                request, InvalidRequestError(f"Multiple '{repeated[0]}' in request."))
        # DPoP (RFC 9449 5): the proof is checked before any grant runs; the grants bind
        # what they issue to ``g.dpop`` (idp.oidc.issue) and check earlier bindings.
        g.dpop_nonce = dpop.fresh_nonce()
        try:
            # Its jti is spent once the client is authenticated, in one round trip with the
            # client assertion's (``authenticate_client``, ``client_auth``).
            g.dpop = dpop.of_request(_dpop_headers(request.headers), "POST",
                                     f"{issuer()}/token", spend=False)
        except dpop.InvalidProof as refused:
            return self.handle_error_response(request, dpop.TokenRequestError(refused))
        return super().create_token_response(request)

    def authenticate_client(self, request, methods, endpoint="token"):
        client = super().authenticate_client(request, methods, endpoint)
        if endpoint == "token":
            dpop.spend_request_proof()  # unless the client's assertion spent it already
        if endpoint == "token" and client.row.dpop_bound_access_tokens and g.get("dpop") is None:
            # RFC 9449 5.2: a client registered for DPoP-bound tokens gets no other kind.
            raise dpop.TokenRequestError(dpop.InvalidProof(
                "This client's tokens are DPoP-bound: send a DPoP proof with each token request."))
        return client


def _dpop_headers(headers) -> list[str]:
    if hasattr(headers, "getlist"):
        return headers.getlist("DPoP")
    return [headers["DPoP"]] if "DPoP" in headers else []


def init_app(app: Flask) -> Server:
    server = Server()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_token)
    server.register_client_auth_method("private_key_jwt", authenticate_private_key_jwt)
    server.register_client_auth_method("client_secret_basic", authenticate_secret_basic)
    server.register_client_auth_method("client_secret_post", authenticate_secret_post)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True), OpenIDExtension()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    app.extensions["idp.oauth"] = server
    return server
