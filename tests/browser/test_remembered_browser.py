"""Remember this device, walked in Chromium through a real portal (the demo relying party:
Authlib, ID token verified against JWKS) on the test backend: a sign-in with an authenticator
app and "Don't ask again on this browser" ticked; signed out; signed in again with the password
only, and the portal told so. Then the account page's remembered browsers, and the console's
policy page and user page as an admin sees them.
"""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from tests.support.screens import look_at
from tests.support.live_portal import serve_portal
from tests.support.signin import set_policy
from tests.support.totp import with_totp



@pytest.fixture
def portal(app, live_world):
    served = serve_portal(app, live_world)
    yield served
    served.stop()


def looks_right(page: Page, name: str) -> None:
    wrong = [f"{width}: {problem}" for width, problems in look_at(page, name).items()
             for problem in problems]
    assert not wrong, "\n".join(wrong)


def portal_says(page: Page, term: str) -> str:
    return page.locator(f"dl.summary dt:has-text('{term}') + dd").inner_text()


def sign_in_at(page: Page, portal, email: str, password: str) -> None:
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Sign in with idp").click()
    page.fill("#email", email)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign in").click()


def test_a_remembered_browser_skips_the_app_next_time(page: Page, chromium, app, live_world,
                                                      portal):
    world = live_world
    seed = with_totp(app, world)
    set_policy(app, world, mode="required", factors=["totp", "backup"], remember_days=30)

    sign_in_at(page, portal, world.alice, world.password)
    box = page.get_by_label("Don't ask again on this browser for 30 days")
    expect(box).to_be_visible()
    expect(box).not_to_be_checked()
    looks_right(page, "challenge-with-remember")
    page.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(seed).now())
    box.check()
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name=re.compile("Signed in as"))).to_be_visible()
    assert portal_says(page, "Methods (amr)") == "pwd, otp, mfa"

    page.get_by_role("link", name="Sign out").click()  # the portal's, and the IdP's session
    confirm = page.get_by_role("button", name=re.compile("Sign out"))
    if confirm.count():
        confirm.first.click()
    expect(page.get_by_role("link", name="Sign in with idp")).to_be_visible()

    # The same browser: the password, and straight back to the portal. The token says what
    # happened in this sign-in: the password only.
    sign_in_at(page, portal, world.alice, world.password)
    expect(page.get_by_role("heading", name=re.compile("Signed in as"))).to_be_visible()
    assert (portal_says(page, "Methods (amr)"), portal_says(page, "Level (acr)")) == ("pwd", "pwd")

    page.goto(world.issuer + "/account")
    rows = page.locator("table.remembered tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("This browser")
    expect(rows.first).to_contain_text(re.compile(r"Chrome .* on Linux"))
    looks_right(page, "account-remembered-browsers")

    # The admin's view: the policy page's settings and alice's page with her browser.
    admin = chromium.new_context().new_page()
    try:
        admin_seed = with_totp_for_admin(app, world)
        admin.goto(world.issuer + "/admin/policy")
        admin.fill("#email", world.admin)
        admin.fill("#password", world.password)
        admin.get_by_role("button", name="Sign in").click()
        admin.get_by_label("Code from your authenticator app").fill(pyotp.TOTP(admin_seed).now())
        admin.get_by_role("button", name="Verify").click()
        expect(admin.locator("#remember_days")).to_have_value("30")
        expect(admin.get_by_label("Passkeys as the first step")).to_be_checked()
        looks_right(admin, "console-policy")
        admin.goto(world.issuer + "/admin/users")
        expect(admin.locator(f'tr[data-user="{world.alice}"] [data-remembered="1"]')).to_have_text(
            "1 remembered browser")
        admin.get_by_role("link", name=world.alice).click()
        expect(admin.locator("table.remembered tbody tr")).to_have_count(1)
        looks_right(admin, "console-user")
        expect(admin.locator("html")).to_have_attribute("data-console", "ready")
        admin.get_by_role("button", name=re.compile("^Revoke .* remembered")).click()
        expect(admin.locator("#confirm-dialog")).to_contain_text("Forget this browser of")
        admin.get_by_role("button", name="Confirm").click()
        expect(admin.get_by_role("status")).to_contain_text("is forgotten")
        expect(admin.locator("table.remembered")).to_have_count(0)
    finally:
        admin.context.close()

    page.reload()  # her account page: nothing remembered any more
    expect(page.locator("table.remembered")).to_have_count(0)


def with_totp_for_admin(app, world) -> str:
    """The tenant's admin sets up an authenticator app (the row an enrollment leaves)."""
    from dataclasses import replace

    return with_totp(app, replace(world, alice=world.admin))
