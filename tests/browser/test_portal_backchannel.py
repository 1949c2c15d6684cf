"""An administrator registers a portal's back-channel logout URI on its console page, in
Chromium: a wrong address is refused with the reason, a right one is kept."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.browser_console import to_console


def test_an_admin_registers_a_back_channel_logout_uri(page: Page, live_world):
    world = live_world
    to_console(page, world.issuer, f"/admin/portals/{world.portal.client_id}", world.admin,
               world.password)  # the console asks for a second step first

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
