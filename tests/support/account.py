"""Helpers for tests of the account page and second factors, through the hosted pages."""

from __future__ import annotations

import re

from tests.support.journey import CSRF, TX, Browser, Page, field, query

CEREMONY = re.compile(r'name="ceremony"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="ceremony"')


def password_sign_in(browser: Browser, world, email: str | None = None) -> Page:
    """Sign in at the tenant's login page (no client); returns the page after the password."""
    page = browser.get(f"/t/{world.slug}/login")
    form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "email": email or world.alice, "password": world.password}
    return browser.follow(browser.post(f"/t/{world.slug}/login", form), stop_at="\0")


def start_enrollment(browser: Browser, world, factor_type: str) -> Page:
    page = browser.get(f"/t/{world.slug}/account/add/{factor_type}")
    assert page.status == 200, (page.status, page.location, page.text[:500])
    return page


def submit_enrollment(browser: Browser, world, factor_type: str, page: Page, **fields) -> Page:
    form = {"csrf_token": field(CSRF, page.text), "ceremony": field(CEREMONY, page.text), **fields}
    return browser.post(f"/t/{world.slug}/account/add/{factor_type}", form)


def answer_challenge(browser: Browser, world, page: Page, factor_type: str, **fields) -> Page:
    """Post an answer on the second-factor page; follows redirects until the RP or a page."""
    form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "factor": factor_type, **fields}
    return browser.post(f"/t/{world.slug}/login/verify", form)


def code_from(page: Page) -> str:
    return query(page.location)["code"]


def enroll_backup_codes(browser: Browser, world, email: str | None = None) -> list[str]:
    """A password sign-in, then backup codes made on the account page; the codes shown."""
    password_sign_in(browser, world, email)
    page = start_enrollment(browser, world, "backup")
    codes = re.findall(r"<code>([a-z0-9-]+)</code>", page.text)
    done = submit_enrollment(browser, world, "backup", page)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account")
    return codes


def age_sessions(app, world, email: str, seconds: int) -> None:
    """Make every SSO session of ``email`` ``seconds`` older: its sign-in and its last step
    (as if its user had walked away)."""
    import json

    from idp import db, directory, store

    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        r = store.get()
        aged = 0
        for key in r.scan_iter("sso:*"):
            data = json.loads(r.get(key))
            if data["user_id"] == user.id:
                data["stepped_at"] = (data.get("stepped_at") or data["auth_time"]) - seconds
                data["auth_time"] -= seconds
                r.set(key, json.dumps(data), keepttl=True)
                aged += 1
        assert aged
