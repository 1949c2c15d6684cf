"""Corporate SSO in Chromium, with panva's oidc-provider (Node.js) as the upstream: defect 5 of
issue 16.

oidc-provider is what a standards-conformant corporate provider looks like: with the code flow
its ID token carries ``sub`` only, and the email (and whether it was verified) comes from its
userinfo endpoint (OIDC Core 5.4). The journey is the one a person walks: a portal sends them
to our login page, they press "Sign in with Corp SSO", sign in on oidc-provider's own page, come
back, and the portal receives an ID token (verified with our JWKS) that says ``amr: fed``.

Our side is ``idp serve`` on the test backend (SQLite + embedded store, or PostgreSQL + Redis);
the portal is its redirect URI, answered by Playwright, which redeems the code like a portal.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from playwright.sync_api import Page, expect

from idp import admin, db, directory
from tests.support import screens
from tests.support import node_provider
from tests.support.browser_portal import Portal
from tests.support.world import World

NAME = "Corp SSO"


def corp_provider(live_server, world: World, tmp_path: Path, verified) -> node_provider.NodeProvider:
    account = {"sub": f"corp-{secrets.token_hex(4)}", "email": world.alice,
               "password": secrets.token_urlsafe(12), "name": "Alice Corp"}
    if verified is not None:
        account["email_verified"] = verified
    return node_provider.start(
        f"{live_server.url}/t/{world.slug}/login/upstream/corp/callback", account,
        tmp_path / "oidc-provider.log")


def add_corp(app, world: World, provider: node_provider.NodeProvider) -> None:
    with app.app_context():
        session = db.session()
        admin.add_upstream(session, app.extensions["idp.secretbox"],
                           directory.get_tenant(session, world.slug), slug="corp", name=NAME,
                           issuer=provider.issuer, client_id=provider.client_id,
                           client_secret=provider.client_secret, email_domains=["example.com"],
                           trust_mfa="never", actor="test")
        session.commit()


def sign_in_with_corp(page: Page, portal: Portal, provider: node_provider.NodeProvider,
                      shots: str | None = None, signed_in_there: bool = False) -> None:
    """From the portal, through our login page, to oidc-provider's page and back (straight
    back when the browser already has a session at oidc-provider)."""
    page.goto(portal.url)
    button = page.get_by_role("button", name=f"Sign in with {NAME}")
    expect(button).to_be_visible()
    if shots:
        screens.keep(page, f"{shots}-login")
    button.click()
    if signed_in_there:
        return
    expect(page).to_have_url(re.compile(re.escape(provider.issuer) + "/interaction/"))
    page.get_by_label("Work email").fill(provider.account["email"])
    page.get_by_label("Password").fill(provider.account["password"])
    page.get_by_role("button", name="Sign in to Corp").click()


def test_corporate_sso_with_oidc_provider_reaches_the_portal(page: Page, app, live_server,
                                                              live_world, tmp_path):
    provider = corp_provider(live_server, live_world, tmp_path, verified=True)
    try:
        add_corp(app, live_world, provider)
        portal = Portal(page, live_world)
        sign_in_with_corp(page, portal, provider, shots="corp-sso")
        expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()

        claims = portal.id_token()
        with app.app_context():
            session = db.session()
            subject = directory.find_user(session, directory.get_tenant(session, live_world.slug),
                                          live_world.alice).subject
        assert claims["sub"] == subject
        assert claims["amr"] == ["fed"] and claims["acr"] == "pwd"
    finally:
        provider.stop()


def sign_in_as_admin(page: Page, world: World) -> None:
    page.goto(f"{world.issuer}/admin/upstreams")
    page.locator("#email").fill(world.admin)
    page.locator("#password").fill(world.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Identity providers")).to_be_visible()


def test_an_unverified_email_is_refused_until_the_admin_says_corp_runs_the_domain(
        chromium, page: Page, app, live_server, live_world, tmp_path):
    provider = corp_provider(live_server, live_world, tmp_path, verified=False)
    with app.app_context():  # no second step for the admin's console here: it is not the point
        session = db.session()
        admin.set_policy(session, directory.get_tenant(session, live_world.slug), "test",
                         mode="disabled")
        session.commit()
    try:
        add_corp(app, live_world, provider)
        portal = Portal(page, live_world)
        sign_in_with_corp(page, portal, provider)
        expect(page.get_by_role("heading", name="No account here")).to_be_visible()
        screens.keep(page, "corp-sso-no-account")
        assert portal.received == []

        # The admin, in the console (another browser), marks Corp SSO as running example.com.
        context = chromium.new_context()
        console = context.new_page()
        try:
            sign_in_as_admin(console, live_world)
            screens.keep(console, "console-upstreams")
            console.get_by_role("link", name=NAME).click()
            box = console.get_by_label(re.compile("runs the mailboxes of these domains"))
            expect(box).not_to_be_checked()
            screens.keep(console, "console-upstream")
            # Without a domain it cannot vouch for anything: said in words, nothing saved.
            console.get_by_label("Email domains, one a line").fill("")
            box.check()
            console.get_by_role("button", name="Save").click()
            expect(console.get_by_role("alert")).to_contain_text("list its domains first")
            screens.keep(console, "console-upstream-error")
            console.get_by_label("Email domains, one a line").fill("example.com")
            console.get_by_role("button", name="Save").click()
            expect(console.get_by_role("status")).to_contain_text(f"{NAME} is saved")
            expect(console.get_by_label(re.compile("runs the mailboxes"))).to_be_checked()
            screens.keep(console, "console-upstream-saved")
        finally:
            context.close()

        sign_in_with_corp(page, portal, provider, signed_in_there=True)
        expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
        assert "fed" in portal.id_token()["amr"]
    finally:
        provider.stop()
