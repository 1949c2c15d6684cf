"""An administrator reaching a console page in Chromium: signed in (the sign-in pages in
English, the browser's default here), with the authenticator app the console asks for set
up on the way, and "Not now" to the backup codes."""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect


def to_console(page: Page, base: str, path: str, email: str, password: str) -> None:
    """Sign in at ``base + path`` (a console page) and land on it."""
    page.goto(base + path)
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_role("link", name="Authenticator app").click()
    key = page.locator("#totp-setup-key").inner_text().replace(" ", "")
    page.get_by_label(re.compile("digit code the app shows")).fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm").click()
    page.locator("#continue").click()  # "Not now" on the backup-codes offer
    # The page itself or below it; not \b, which fails after a client id ending in "-".
    expect(page).to_have_url(re.compile("^" + re.escape(base + path) + r"(/|\?|#|$)"))
