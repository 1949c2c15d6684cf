"""The console's Portal security page in Chromium at 1280 and 360 px: an administrator reads
what each setting does, has a host that is not a host name refused under the field (which
gets the focus), and saves. Screenshots in test-output/screens/ for a person to look at."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, expect

from tests.support.browser_console import to_console
from tests.support.layout import problems
from tests.support.screens import look_at


def looks_right(page: Page, name: str) -> None:
    wrong = [f"{width}: {problem}" for width, problems in look_at(page, name).items()
             for problem in problems]
    assert not wrong, "\n".join(wrong)


def test_an_admin_requires_par_and_names_the_hosts_of_self_registered_portals(page: Page, live_world):
    world, base = live_world, live_world.issuer
    to_console(page, base, "/admin/portal-security", world.admin, world.password)
    expect(page.get_by_role("link", name="Portal security", exact=True)).to_have_attribute(
        "aria-current", "page")
    looks_right(page, "console-portal-security")

    page.get_by_label("Every portal must use pushed authorization requests (PAR)").check()
    page.get_by_label("Hosts they may send people to, one a line").fill(
        "portal.example.com\nhttps://apps.example.com/callback")
    page.get_by_role("button", name="Save portal security").click()
    expect(page.locator("#hosts-error")).to_contain_text("without https://")
    expect(page.locator("#registration_redirect_hosts")).to_be_focused()
    looks_right(page, "console-portal-security-refused")

    page.get_by_label("Hosts they may send people to, one a line").fill(
        "portal.example.com\n*.apps.example.com")
    page.get_by_role("button", name="Save portal security").click()
    expect(page.locator(".notice")).to_contain_text("Portal security is saved")
    expect(page.get_by_label("Every portal must use pushed authorization requests (PAR)")).to_be_checked()
    assert problems(page) == []
    discovery = requests.get(f"{base}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["require_pushed_authorization_requests"] is True
