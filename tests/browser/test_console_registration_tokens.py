"""The Portals page's "Let developers register portals themselves" in Chromium at 1280 and
360 px: an administrator creates a registration token (shown once, copied with the button),
sees it listed, and revokes it after confirming."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser_console import to_console
from tests.support.screens import look_at


def test_an_admin_hands_out_and_revokes_a_registration_token(page: Page, app, live_world):
    world, base = live_world, live_world.issuer
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    to_console(page, base, "/admin/portals", world.admin, world.password)
    found = {"list": look_at(page, "console-portals-tokens-empty")}
    expect(page.get_by_role("heading", name="Let developers register portals themselves")).to_be_visible()

    page.get_by_label("Who is it for?").fill("Payroll app team (Lisbon office)")
    page.get_by_label("Valid for (days)").fill("14")
    page.get_by_label("Number of portals").fill("3")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#registration-token")
    expect(token).to_be_visible()
    assert len(token.input_value()) >= 40
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == token.input_value()
    found["new"] = look_at(page, "console-portals-token-new")

    page.goto(base + "/admin/portals")
    row = page.locator("table.tokens tbody tr").first
    expect(row).to_contain_text("Payroll app team (Lisbon office)")
    expect(row).to_contain_text("Active")
    expect(page.locator("#registration-token")).to_have_count(0)
    row.get_by_role("button", name="Revoke").click()
    page.locator("#confirm-yes").click()
    expect(page.locator("table.tokens tbody tr").first).to_contain_text("Revoked")
    found["revoked"] = look_at(page, "console-portals-token-revoked")

    wrong = [f"{name} at {device}: {problem}" for name, devices in found.items()
             for device, problems in devices.items() for problem in problems]
    assert not wrong, "\n".join(wrong)
