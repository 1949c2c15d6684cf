"""Branding in Chromium at 1280 and 360 px: an administrator sets a display name, colour,
support contacts and a logo on the console's Branding page; the sign-in page and the lock page
show them, under the strict CSP (no inline style). Screenshots in test-output/screens/ for a
person to look at."""

from __future__ import annotations

import requests
from playwright.sync_api import Page, expect

from tests.support.browser_console import to_console
from tests.support.branding import sample_logo
from tests.support.captcha import solve
from tests.support.journey import CSRF, TX, field
from tests.support.layout import problems
from tests.support.screens import look_at

GREEN = "rgb(11, 110, 79)"  # #0b6e4f


def lock(base: str, email: str) -> None:
    """Five wrong passwords over HTTP (solving the CAPTCHA the page shows after three)."""
    http, last = requests.Session(), ""
    for attempt in range(5):
        page = http.get(f"{base}/login").text
        data = {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email,
                "password": "wrong guess!"}
        if attempt >= 3:
            data["altcha"] = solve(last)
        last = http.post(f"{base}/login", data=data).text
    assert "locked" in last


def csp_violations(page: Page) -> list[str]:
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def looks_right(page: Page, name: str) -> None:
    """Screenshots at 1280 and 360 px beside the test's others (``tests.support.screens``),
    and nothing out of place at either width."""
    wrong = [f"{width}: {problem}" for width, problems in look_at(page, name).items()
             for problem in problems]
    assert not wrong, "\n".join(wrong)


def test_an_admin_brands_the_sign_in_page_and_sees_it_at_desktop_and_phone_widths(page: Page, chromium, live_world):
    world, base = live_world, live_world.issuer
    blocked = csp_violations(page)
    to_console(page, base, "/admin/branding", world.admin, world.password)
    expect(page.get_by_role("link", name="Branding", exact=True)).to_have_attribute("aria-current", "page")

    # A colour too light to read: refused under its field, which has the focus.
    page.locator("#brand-accent").fill("#ffff00")
    page.get_by_role("button", name="Save branding").click()
    expect(page.locator("#accent-error")).to_contain_text("too light to read")
    expect(page.locator("#brand-accent")).to_be_focused()
    looks_right(page, "console-branding-refused")

    page.locator("#brand-display_name").fill("Northwind Traders")
    page.locator("#brand-accent").fill("#0b6e4f")
    page.locator("#brand-support_url").fill("https://help.northwind.example/sign-in")
    page.locator("#brand-support_email").fill("it-help@northwind.example")
    page.get_by_role("button", name="Save branding").click()
    expect(page.locator(".notice")).to_contain_text("The branding is saved")
    page.locator("#brand-logo").set_input_files(
        files=[{"name": "northwind.png", "mimeType": "image/png", "buffer": sample_logo()}])
    page.get_by_role("button", name="Upload logo").click()
    expect(page.locator(".notice")).to_contain_text("The logo is saved")
    # The console wears it: header logo drawn, buttons in the colour.
    header_logo = page.locator(".console-header img.brand-logo")
    expect(header_logo).to_be_visible()
    assert header_logo.evaluate("img => img.naturalWidth") > 0
    expect(page.get_by_role("button", name="Save branding")).to_have_css("background-color", GREEN)
    looks_right(page, "console-branding")
    assert problems(page) == []

    # Someone else's browser: the sign-in page with the logo, name and colour.
    visitor = chromium.new_context().new_page()
    blocked += csp_violations(visitor)
    visitor.goto(base + "/login")
    card_logo = visitor.locator("main .brand-header img")
    expect(card_logo).to_be_visible()
    assert card_logo.evaluate("img => img.naturalWidth") > 0
    expect(visitor.locator("main .brand-header")).to_contain_text("Northwind Traders")
    expect(visitor.get_by_role("button", name="Sign in", exact=True)).to_have_css("background-color", GREEN)
    looks_right(visitor, "sign-in")
    assert problems(visitor) == []

    # Locked out (by someone guessing over HTTP): the page says where to get help.
    lock(base, world.bob)
    visitor.goto(base + "/login")
    visitor.locator("#email").fill(world.bob)
    visitor.locator("#password").fill(world.password)
    visitor.get_by_role("button", name="Sign in", exact=True).click()
    expect(visitor.locator("#locked-until")).to_be_visible()
    expect(visitor.locator(".support")).to_contain_text("Need help? Contact")
    expect(visitor.locator(".support a[href='mailto:it-help@northwind.example']")).to_be_visible()
    looks_right(visitor, "locked")
    assert problems(visitor) == []
    visitor.context.close()
    assert blocked == []  # nothing the CSP had to stop: no inline style anywhere
