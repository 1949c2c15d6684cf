"""``idp demo``: an embedded IdP with a demo tenant, two users and a portal, on loopback.

Each run prints fresh passwords and a fresh portal secret (the old ones stop working), so
nothing guessable is ever left listening, even on loopback.
"""

from __future__ import annotations

import secrets
import sys
import threading

from sqlalchemy import select
from werkzeug.serving import make_server

from idp import admin, directory, hashing
from idp.config import Settings
from idp.installation import database, init
from idp.models import Client
from idp.password import Passwords

TENANT = "demo"
USERS = (("admin@demo.test", "admin", "Ada Admin"), ("alice@demo.test", "member", "Alice Member"))


def prepare(settings: Settings, portal_url: str) -> dict:
    """Create or refresh the demo tenant, users and portal client; return what to print."""
    init(settings)
    passwords = Passwords.from_settings(settings)
    out = {"users": []}
    with database(settings) as session:
        try:
            tenant = directory.get_tenant(session, TENANT)
        except directory.NotFound:
            tenant = directory.create_tenant(session, TENANT, "Demo Organisation")
            # Second factors on offer from the start; `idp policy set demo ...` changes it.
            admin.policy_row(session, tenant).mode = "optional"
        for email, role, name in USERS:
            password = secrets.token_urlsafe(9)
            user = directory.find_user(session, tenant, email)
            if user is None:
                directory.create_user(session, passwords, tenant, email, password, name=name,
                                      role=role)
            else:
                user.password_hash = passwords.hash(password)
            out["users"].append((email, password, role))
        client = session.scalar(select(Client).where(Client.tenant_id == tenant.id,
                                                     Client.name == "Demo portal"))
        if client is None:
            client = directory.create_client(
                session, tenant, "Demo portal", [f"{portal_url}/callback"],
                post_logout_redirect_uris=[f"{portal_url}/"],
            ).client
        secret = hashing.new_secret()
        client.secret_hash = hashing.digest("client-secret", secret)
        client.redirect_uris = [f"{portal_url}/callback"]
        client.post_logout_redirect_uris = [f"{portal_url}/"]
        out["client_id"], out["client_secret"] = client.client_id, secret
    return out


def run_demo(settings: Settings, host: str, port: int, portal_port: int) -> None:
    from examples.portal.app import create_portal_app
    from idp import create_app

    # Browsers refuse WebAuthn for an IP address, so loopback is published as "localhost".
    public_host = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
    base = f"http://{public_host}:{port}"
    if settings.base_url != base:
        settings = Settings.from_env(base_url=base)
    portal_url = f"http://{public_host}:{portal_port}"
    demo = prepare(settings, portal_url)
    issuer = f"{base}/t/{TENANT}"
    idp_server = make_server(host, port, create_app(settings), threaded=True)
    portal = create_portal_app(issuer=issuer, client_id=demo["client_id"],
                               client_secret=demo["client_secret"], base_url=portal_url,
                               secret_key=secrets.token_hex(32))
    portal_server = make_server(host, portal_port, portal, threaded=True)
    threading.Thread(target=idp_server.serve_forever, daemon=True).start()
    lines = [
        "",
        "idp demo is running.",
        f"  Open the demo portal:  {portal_url}/",
        f"  Identity provider:     {issuer}  (discovery: {issuer}/.well-known/openid-configuration)",
        "  Sign in as:",
        *[f"    {email:<18} password {pw:<14} ({role})" for email, pw, role in demo["users"]],
        "  Passwords change each time the demo starts. Stop with Ctrl+C.",
        "",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    try:
        portal_server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        idp_server.shutdown()
