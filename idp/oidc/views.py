"""Protocol endpoints under each tenant's issuer, ``/t/<tenant>/...``."""

from __future__ import annotations

from authlib.common.urls import add_params_to_uri
from flask import Blueprint, current_app, g, jsonify, redirect, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from wtforms import ValidationError

from idp import audit, db, i18n, user_status
from idp.directory import CLIENT_SIGNING_ALGS
from idp.journey import session as sso
from idp.journey import transaction
from idp.models import Client, Token, User
from idp.oidc import authorize as authz
from idp.oidc import dpop, keys
from idp.oidc import par as pushed_authorization_request
from idp.oidc.id_token import user_claims
from idp.oidc.oauth_client import ALL_METHODS, CONFIDENTIAL_METHODS
from idp.oidc.subjects import for_client
from idp.oidc.tokens import InvalidToken, verify, verify_id_token_hint
from idp.web import (TenantRef, error_page, expired_page, issuer, load_tenant_following,
                     settings)

bp = Blueprint("oidc", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant_following)

ACR_VALUES = ["pwd", "mfa", "phr"]
# Discovery and JWKS: a rotation publishes its new keys this long before they sign
# (idp.oidc.keys), so an RP's cached copy has them before any token they sign.
PUBLIC_CACHE = f"public, max-age={keys.JWKS_MAX_AGE}"


def _server():
    return current_app.extensions["idp.oauth"]


def _keyring():
    return keys.current()


@bp.get("/.well-known/openid-configuration")
@bp.get("/.well-known/oauth-authorization-server")
def discovery():
    response = jsonify(discovery_document(issuer(), g.tenant))
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


def discovery_document(base: str, tenant: TenantRef) -> dict:
    """What the tenant's issuer supports (OpenID Connect Discovery 1.0 section 3, RFC 8414):
    the same for every tenant except what its settings decide (``tenant.protocol``)."""
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/authorize",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "jwks_uri": f"{base}/jwks",
        "revocation_endpoint": f"{base}/revoke",
        "introspection_endpoint": f"{base}/introspect",
        "end_session_endpoint": f"{base}/logout",
        "registration_endpoint": f"{base}/register",  # RFC 7591, behind an initial access token
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": list(ALL_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "revocation_endpoint_auth_methods_supported": list(ALL_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "code_challenge_methods_supported": ["S256"],
        "dpop_signing_alg_values_supported": list(dpop.ALGS),  # RFC 9449 5.1
        "prompt_values_supported": ["none", "login", "consent"],
        "acr_values_supported": ACR_VALUES,
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "sid",
                             "acr", "amr", "name", "preferred_username", "email", "email_verified"],
        "claims_parameter_supported": True,
        "ui_locales_supported": list(i18n.LANGUAGES),  # the hosted pages' languages (idp.i18n)
        # RFC 9126 5; RFC 9101 10.5: request objects by value or pushed, never fetched.
        "pushed_authorization_request_endpoint": f"{base}/par",
        "request_parameter_supported": True,
        "request_uri_parameter_supported": False,
        "request_object_signing_alg_values_supported": list(CLIENT_SIGNING_ALGS),
        "authorization_response_iss_parameter_supported": True,
        "frontchannel_logout_supported": False,
        # Back-Channel Logout 1.0 (2.1): logout tokens to each client's registered URI, and
        # always with the session's ``sid``, the one in the client's ID token.
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        # RFC 9126 5: every authorization request of this tenant through PAR.
        "require_pushed_authorization_requests": tenant.protocol.require_par,
    }


@bp.get("/jwks")
def jwks():
    response = current_app.response_class(_keyring().jwks_json(), mimetype="application/json")
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return response


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    return authz.start(request.values)


@bp.get("/authorize/resume")
def resume():
    try:
        tx = transaction.load(g.tenant.id, request.args.get("tx"))
    except transaction.TransactionGone:
        return expired_page()
    return authz.proceed(tx.params, tx)


def oauth_json(handler):
    """Run an Authlib endpoint; input it cannot even describe is still a clean OAuth error."""
    try:
        return handler()
    except ValueError:
        response = jsonify({"error": "invalid_request",
                            "error_description": "A parameter has characters that are not allowed."})
        response.status_code = 400
        response.headers["Cache-Control"] = "no-store"
        return response


@bp.post("/par")
def par():
    return oauth_json(pushed_authorization_request.push)


@bp.post("/token")
def token():
    return oauth_json(_server().create_token_response)


@bp.post("/revoke")
def revoke():
    return oauth_json(lambda: _server().create_endpoint_response("revocation"))


@bp.post("/introspect")
def introspect():
    return oauth_json(lambda: _server().create_endpoint_response("introspection"))


def _bearer_error(description: str, status: int = 401, error: str = "invalid_token"):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["WWW-Authenticate"] = f'Bearer error="{error}", error_description="{description}"'
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    form_token = request.form.get("access_token") if request.method == "POST" else None
    if header and scheme not in ("bearer", "dpop"):
        return _bearer_error("Use a Bearer or DPoP access token.", 400, "invalid_request")
    if header and form_token:
        return _bearer_error("Send the access token only once.", 400, "invalid_request")
    access_token = value.strip() if header else form_token
    if not access_token:
        response = _bearer_error("An access token is required.")
        response.headers["WWW-Authenticate"] = "Bearer"
        response.headers.add("WWW-Authenticate", dpop.challenge())
        return response
    try:
        claims = verify(_keyring(), access_token, issuer=issuer(), typ="at+jwt").claims
    except InvalidToken as e:
        if header and scheme == "dpop":  # answered in the scheme it was sent in (RFC 9449 7.1)
            return _dpop_refusal(dpop.ResourceRefused("invalid_token",
                                                      f"The access token is not valid ({e})."))
        return _bearer_error(f"The access token is not valid ({e}).")
    try:
        dpop.at_resource(scheme if header else "bearer", access_token, claims, request.headers,
                         request.method, settings().base_url + request.path)
    except dpop.ResourceRefused as refused:
        return _dpop_refusal(refused)
    row = db.session().scalar(select(Token).where(
        Token.jti == str(claims.get("jti")), Token.tenant_id == g.tenant.id))
    if row is None or row.revoked_at or row.access_revoked_at:
        return _bearer_error("The access token was revoked.")
    if row.user is None:
        return _bearer_error("This access token does not belong to a user.", 403, "insufficient_scope")
    if not user_status.may_sign_in(row.user.status):
        return _bearer_error("The access token was revoked.")
    if "openid" not in row.scope.split():
        return _bearer_error("The access token lacks the openid scope.", 403, "insufficient_scope")
    response = jsonify(user_claims(row.user, row.scope, row.client))
    response.headers["Cache-Control"] = "no-store"
    fresh = dpop.fresh_nonce()
    if fresh:
        response.headers["DPoP-Nonce"] = fresh  # RFC 9449 8.2: the newest nonce, for next time
    return response


def _dpop_refusal(refused: dpop.ResourceRefused):
    response = jsonify({"error": refused.error, "error_description": refused.description})
    response.status_code = refused.status
    response.headers["WWW-Authenticate"] = refused.challenge
    if refused.nonce:
        response.headers["DPoP-Nonce"] = refused.nonce
    return response


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """RP-Initiated Logout 1.0: end the SSO session, then return to the RP if it is allowed."""
    params = authz.single_valued(request.values)
    if isinstance(params, str):
        return error_page(400, _("This sign-out link is broken"), params)
    hint, claims = params.get("id_token_hint"), None
    if hint:
        try:
            claims = verify_id_token_hint(_keyring(), hint, issuer=issuer(),
                                          client_id=params.get("client_id"))
        except InvalidToken:
            return error_page(400, _("This sign-out link is broken"),
                              _("The application sent a sign-out request we cannot verify."))
    client = _logout_client(params, claims)
    target = params.get("post_logout_redirect_uri")
    if target and (client is None or target not in client.post_logout_redirect_uris):
        return error_page(400, _("This sign-out link is not allowed"),
                          _("The application asked to send you to an address it has not registered."))
    current = sso.current(g.tenant.id)
    user = db.session().get(User, current.user_id) if current else None
    hinted_here = bool(claims and user and client
                       and claims.get("sub") == for_client(user, client))
    # Without a hint that names this session's user, a cross-site link must not sign anyone
    # out silently (RP-Initiated Logout 2): ask.
    if current and not hinted_here:
        if request.method != "POST" or request.form.get("confirm") != "yes":
            return render_template("login/logout_confirm.html", tenant=g.tenant, user=user,
                                   params=params, client=client)
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            return error_page(400, _("This form has expired"), _("Reload the page and try again."))
    if current:
        sso.end(g.tenant.id)
        audit.record(db.session(), g.tenant.id, "user.signed_out", user_id=current.user_id,
                     actor=user.email if user else "", client_id=client.client_id if client else None)
    if target:
        query = [("state", params["state"])] if params.get("state") else []
        return redirect(add_params_to_uri(target, query))
    return render_template("login/signed_out.html", tenant=g.tenant)


def _logout_client(params: dict, claims: dict | None):
    """The client named by ``client_id`` or else by the hint (already checked to agree): the
    post-logout redirect URI must be one of its own."""
    client_id = params.get("client_id") or (claims["aud"][0] if claims else None)
    if not client_id:
        return None
    client = db.session().scalar(select(Client).where(
        Client.client_id == str(client_id), Client.tenant_id == g.tenant.id))
    return client
