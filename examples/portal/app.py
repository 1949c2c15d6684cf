"""Demo portal: a tiny OpenID Connect relying party for the idp.

Built on Authlib's Flask OAuth client. It signs users in with the authorization
code flow (confidential client, client_secret_basic, plus PKCE S256), validates
the ID token (signature via JWKS, iss, aud, nonce, exp) and the RFC 9207 ``iss``
authorization-response parameter, shows every ID-token claim, and supports
step-up (``acr_values``), forced re-authentication (``prompt=login``) and
RP-initiated logout.  Usage::

    from examples.portal.app import create_portal_app
    app = create_portal_app(issuer="http://127.0.0.1:5000/t/demo", client_id="...",
                            client_secret="...", base_url="http://127.0.0.1:5001",
                            secret_key="...")

Nothing talks to the IdP until the first request that needs it (Authlib loads the
discovery document lazily), so the portal may start before the IdP.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from flask import Flask, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

LOGIN_PASSTHROUGH = ("acr_values", "prompt", "max_age", "login_hint")
TIME_CLAIMS = {"iat", "exp", "nbf", "auth_time"}


def create_portal_app(
    issuer: str, client_id: str, client_secret: str, base_url: str, secret_key: str
) -> Flask:
    """Build the portal Flask app for one client registered at ``issuer``."""
    issuer, base_url = issuer.rstrip("/"), base_url.rstrip("/")
    app = Flask(__name__, template_folder="templates")
    app.config.update(
        SECRET_KEY=secret_key,
        # Cookies ignore ports: keep clear of the IdP's "session" cookie on 127.0.0.1.
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=client_id,
        client_secret=client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile email offline_access",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )

    def error_page(title: str, detail: str | None, status: int):
        return render_template("portal/error.html", title=title, detail=detail), status

    @app.template_filter("claim")
    def format_claim(value, name: str) -> str:
        if name in TIME_CLAIMS and isinstance(value, (int, float)):
            when = datetime.fromtimestamp(value, timezone.utc)
            return f"{value} ({when:%Y-%m-%d %H:%M:%S} UTC)"
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return str(value)

    @app.get("/")
    def home():
        state = request.args.get("state")
        signed_out = bool(state) and state == session.pop("logout_state", None)
        return render_template(
            "portal/home.html", claims=session.get("claims"), signed_out=signed_out
        )

    @app.get("/login")
    def login():
        extra = {k: request.args[k] for k in LOGIN_PASSTHROUGH if request.args.get(k)}
        return oauth.idp.authorize_redirect(f"{base_url}/callback", **extra)

    @app.get("/callback")
    def callback():
        # RFC 9207: reject responses that name another issuer (mix-up defence).
        iss = request.args.get("iss")
        if iss is None and oauth.idp.load_server_metadata().get(
            "authorization_response_iss_parameter_supported"
        ):
            return error_page("Sign-in failed", "The response has no iss parameter.", 400)
        if iss is not None and iss != issuer:
            return error_page("Sign-in failed", f"Unexpected issuer {iss!r}.", 400)
        if request.args.get("error"):
            return error_page(
                f"Sign-in failed: {request.args['error']}",
                request.args.get("error_description"),
                400,
            )
        try:
            token = oauth.idp.authorize_access_token()
        except (AuthlibBaseError, JoseError) as exc:
            return error_page("Sign-in failed", str(exc), 400)
        if not token.get("userinfo"):
            return error_page("Sign-in failed", "No ID token was returned.", 400)
        session["claims"] = dict(token["userinfo"])
        session["id_token"] = token["id_token"]
        session["refresh_token"] = token.get("refresh_token")
        return redirect(url_for("home"))

    @app.get("/logout")
    def logout():
        id_token = session.get("id_token")
        session.clear()
        metadata = oauth.idp.load_server_metadata()
        if not metadata.get("end_session_endpoint"):
            return redirect(url_for("home"))
        session["logout_state"] = secrets.token_urlsafe(16)
        logout_url = oauth.idp.create_logout_url(
            post_logout_redirect_uri=f"{base_url}/",
            id_token_hint=id_token,
            state=session["logout_state"],
            client_id=client_id,
        )["url"]
        return redirect(logout_url)

    @app.errorhandler(requests.RequestException)
    def idp_unreachable(exc):
        return error_page("The identity provider could not be reached", str(exc), 502)

    return app
