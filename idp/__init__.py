"""idp: an OpenID Connect provider that runs every second factor for its portals."""

from __future__ import annotations

import logging
import os

from flask import Flask
from flask_wtf import CSRFProtect

from idp.config import ROOT, Settings

log = logging.getLogger("idp")
csrf = CSRFProtect()


def create_app(settings: Settings | None = None, **flask_config) -> Flask:
    """The app: configuration, extensions, blueprints — nothing else."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, template_folder=str(ROOT / "templates"))
    app.config.update(
        IDP=settings,
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME="idp_form",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        WTF_CSRF_TIME_LIMIT=3600,
        MAX_CONTENT_LENGTH=256 * 1024,
        **flask_config,
    )
    # Transport security is decided by IDP_BASE_URL (warned about when http), not by the
    # scheme a proxy happens to forward.
    os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

    # The app's parts are imported here, not at the top: every module of the package imports
    # this one first, so a top-level import of the blueprints would make `import idp.policy`
    # load the whole app (and each layer's import of the core a cycle through it).
    from idp import captcha, db, i18n, logs, store, web
    from idp.journey import session as sso
    from idp.journey import transaction
    from idp.account.views import bp as account_bp
    from idp.api import bp as api_bp
    from idp.health import bp as health_bp
    from idp.metrics import bp as metrics_bp
    from idp.console import areas  # noqa: F401  (each console area adds its routes)
    from idp.console.views import bp as console_bp
    from idp.login.brand_assets import bp as branding_bp
    from idp.login.federation import bp as federation_bp
    from idp.guard import Guard
    from idp.password import Passwords
    from idp.mfa.secrets import SecretBox
    from idp.login.views import bp as login_bp
    from idp.login.recovery import bp as recovery_bp
    from idp.login.signup import bp as signup_bp
    from idp.oidc import server
    from idp.oidc.keys import Keyrings
    from idp.oidc.views import bp as oidc_bp
    from idp.scim.views import bp as scim_bp

    logs.init_app(app)  # first: its request id and clock start before anything else
    store.init_app(app)
    db.init_app(app)  # its sessions bump the cache generation in the store (idp.cache)
    web.init_app(app)
    i18n.init_app(app)
    csrf.init_app(app)
    app.extensions["idp.keyrings"] = Keyrings(
        settings.keys_dir, grace=max(settings.id_token_ttl, settings.access_token_ttl)
    )
    app.extensions["idp.passwords"] = Passwords.from_settings(settings)
    app.extensions["idp.secretbox"] = SecretBox(settings.secret_key)
    app.extensions["idp.captcha"] = captcha.from_setting(settings.captcha, settings.secret_key)
    app.extensions["idp.security_headers"] = web.security_headers(app)  # needs the CAPTCHA's
    app.extensions["idp.guard"] = Guard(app.extensions["idp.store"])
    server.init_app(app)
    # Protocol endpoints are called by clients, not by our forms; they authenticate otherwise.
    for view in ("authorize", "par", "token", "revoke", "introspect", "userinfo", "logout"):
        csrf.exempt(f"idp.oidc.views.{view}")
    app.register_blueprint(oidc_bp)
    app.register_blueprint(login_bp)
    app.register_blueprint(recovery_bp)
    app.register_blueprint(signup_bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(federation_bp)
    app.register_blueprint(branding_bp)
    app.register_blueprint(console_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(metrics_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(scim_bp)
    for machine in (api_bp, scim_bp):
        csrf.exempt(machine)  # called by services with a bearer token, never by our forms
    app.after_request(sso.write_cookie)
    app.after_request(transaction.write_cookie)

    @app.get("/")
    def index():
        return {"service": "idp", "tenants": "/t/<tenant>/.well-known/openid-configuration"}

    from idp.oidc import direct

    direct.init_app(app)  # the token endpoint, JWKS and discovery skip Flask's per-request work
    if settings.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    from idp import notify
    from idp.notify import outbox

    outbox.init_app(app)  # a background sender of the outbox in each process (with SMTP)
    for warning in settings.warnings() + notify.problems(settings):
        log.warning(warning)
    return app
