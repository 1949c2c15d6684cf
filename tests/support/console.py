"""Helpers for console tests: an admin's browser, ready to act."""

from __future__ import annotations

from tests.support.account import answer_challenge, enroll_backup_codes, password_sign_in
from tests.support.journey import Browser


def admin_browser(app, world) -> Browser:
    """The tenant's admin, signed in with a password and a backup code (the console asks for a
    second factor when the tenant has MFA on, as the test tenants do)."""
    browser = Browser(app.test_client())
    codes = enroll_backup_codes(browser, world, email=world.admin)
    page = password_sign_in(browser, world, world.admin)
    browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), "\0")
    browser.codes = codes[1:]
    return browser
