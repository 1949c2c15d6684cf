"""Helpers for console tests: an admin's browser, ready to act, and the actions of its pages."""

from __future__ import annotations

import re

from tests.support.account import answer_challenge, enroll_backup_codes, password_sign_in
from tests.support.journey import CSRF, Browser, Page, field


def admin_browser(app, world, email: str | None = None) -> Browser:
    """The tenant's admin (or the console user ``email``), signed in with a password and a
    backup code (the console asks for a second factor when the tenant has MFA on, as the test
    tenants do)."""
    return sign_in_to_console(Browser(app.test_client()), world, email)


def sign_in_to_console(browser: Browser, world, email: str | None = None) -> Browser:
    """``browser`` (in-process or live) signed in as the admin ``email`` (default the
    tenant's), with backup codes left in ``browser.codes``."""
    codes = enroll_backup_codes(browser, world, email=email or world.admin)
    page = password_sign_in(browser, world, email or world.admin)
    browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), "\0")
    browser.codes = codes[1:]
    return browser


def user_id_of(browser: Browser, world, email: str) -> int:
    """The console's id of ``email``, read from the users list as an admin finds it."""
    page = browser.get(f"/t/{world.slug}/admin/users?q={email}").text
    return int(re.search(rf'/admin/users/(\d+)"[^>]*>{re.escape(email)}<', page).group(1))


def console_action(browser: Browser, world, email: str, action: str, **form) -> Page:
    """Press ``action``'s button on the user page of ``email`` (the confirmation accepted);
    ``form``: the button's other fields (a role, a confirmation)."""
    user_id = user_id_of(browser, world, email)
    page = browser.get(f"/t/{world.slug}/admin/users/{user_id}").text
    if not CSRF.search(page):  # a page that offers no action: the form is made by hand
        page = browser.get(f"/t/{world.slug}/login").text
    return browser.post(f"/t/{world.slug}/admin/users/{user_id}/{action}",
                        {"csrf_token": field(CSRF, page), "back": f"/t/{world.slug}/admin/users/{user_id}",
                         **form})
