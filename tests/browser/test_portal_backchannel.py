"""An administrator registers a portal's back-channel logout URI on its console page, in
Chromium: a wrong address is refused with the reason, a right one is kept."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from tests.support import screens


def test_an_admin_registers_a_back_channel_logout_uri(page: Page, live_world):
    world = live_world
    page.goto(f"{world.issuer}/admin/portals/{world.portal.client_id}")
    page.locator("#email").fill(world.admin)
    page.locator("#password").fill(world.password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("link", name="Authenticator app").click()  # the console asks for a 2nd step
    key = page.locator("#totp-setup-key").inner_text().replace(" ", "")
    page.get_by_label(re.compile("digit code the app shows")).fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm").click()
    page.locator("#continue").click()  # "Not now" on the backup-codes offer
    page.goto(f"{world.issuer}/admin/portals/{world.portal.client_id}")

    page.get_by_label("Back-channel logout URI (optional)").fill("http://portal.test/logout")
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_role("alert")).to_contain_text("must use https")
    screens.keep(page, "portal-error")

    page.get_by_label("Back-channel logout URI (optional)").fill("https://portal.test/logout")
    page.get_by_label(re.compile("which sign-in ended")).check()
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_text("is saved")).to_be_visible()
    expect(page.get_by_label("Back-channel logout URI (optional)")).to_have_value(
        "https://portal.test/logout")
    expect(page.get_by_label(re.compile("which sign-in ended"))).to_be_checked()
    screens.keep(page, "portal")
