"""Seed journeys walked in Chromium through a real portal on the test backend (issue 16,
findings 2, 4 and 8): a login link reaching the portal with no second factor, SMS right after
SMS setup, and the one-method setup with its backup-codes offer and the lock's local time.

The portal is the demo relying party (Authlib, ID token verified against JWKS); the IdP is
``idp serve`` on the test database and Redis.
"""

from __future__ import annotations

import json
import re

import pyotp
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from idp import db
from idp.models import OutboxMessage
from tests.support import screens
from tests.support.live_portal import serve_portal
from tests.support.signin import set_policy
from tests.support.sms import new_mobile

CODE = re.compile(r"sign-in code is (\d{6})\.")


@pytest.fixture
def portal(app, live_world):
    served = serve_portal(app, live_world)
    yield served
    served.stop()


def sign_in_at(page: Page, portal, email: str, password: str) -> None:
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Sign in with idp").click()
    page.fill("#email", email)
    page.fill("#password", password)
    page.get_by_role("button", name=re.compile("Sign in|Continue")).first.click()


def amr_shown(page: Page) -> str:
    return page.locator("dt:has-text('Methods (amr)') + dd").inner_text()


def test_a_login_link_then_the_portal_without_a_code_page(page: Page, app, live_world, portal, idp):
    # Alice signs in once and sets up an authenticator app (only one method: straight to it).
    set_policy(app, live_world, mode="required", factors=["totp", "backup"])
    sign_in_at(page, portal, live_world.alice, live_world.password)
    expect(page.locator("#totp-setup-key")).to_be_visible()
    screens.keep(page, "setup-one-method")
    secret = page.locator("#totp-setup-key").inner_text().replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.locator("#enroll-form button[type=submit]").first.click()
    expect(page.get_by_role("heading", name="Save backup codes in case you lose your phone")).to_be_visible()
    screens.keep(page, "backup-offer")
    page.locator("#continue").click()
    expect(page.get_by_role("heading", name=re.compile("Signed in as"))).to_be_visible()
    page.context.clear_cookies()

    # The admin sends her a login link (the bypass is on by default); she opens it in a fresh
    # browser and presses Continue.
    status, out, err = idp("login-token", "create", live_world.slug, live_world.alice)
    assert status == 0, err
    link = json.loads(out)["url"]
    page.goto(live_world.issuer + link[link.index("/login/token/"):])
    screens.keep(page, "login-link")
    page.locator("#use-token").click()
    expect(page.get_by_role("heading", name="You are signed in")).to_be_visible()
    # Then the portal: signed in at once, the token says how.
    page.goto(portal.url + "/")
    page.get_by_role("link", name="Sign in with idp").click()
    expect(page.get_by_role("heading", name=re.compile("Signed in as"))).to_be_visible()
    assert amr_shown(page) == "login_token"


def test_sms_right_after_sms_setup_sends_a_code(page: Page, app, live_world, portal):
    set_policy(app, live_world, mode="required", factors=["sms"])
    sign_in_at(page, portal, live_world.alice, live_world.password)
    phone = new_mobile()
    page.fill("#phone", phone)
    page.locator("#enroll-form button[type=submit]").first.click()
    page.fill("#code", last_code(app, phone))
    page.locator("#enroll-form button[type=submit]").first.click()
    expect(page.get_by_role("heading", name=re.compile("Signed in as"))).to_be_visible()
    # Seconds later, a new sign-in (the portal's "sign in again"): a code is sent at once.
    page.get_by_role("link", name=re.compile("prompt=login")).click()
    page.fill("#email", live_world.alice)
    page.fill("#password", live_world.password)
    page.get_by_role("button", name=re.compile("Sign in|Continue")).first.click()
    expect(page.locator("#code")).to_be_visible()
    expect(page.get_by_text("We sent a code a moment ago")).to_have_count(0)
    screens.keep(page, "sms-challenge")
    page.fill("#code", last_code(app, phone))
    page.locator("form button[type=submit]").first.click()
    expect(page.get_by_role("heading", name=re.compile("Signed in as"))).to_be_visible()
    assert "sms" in amr_shown(page)


def last_code(app, phone: str) -> str:
    with app.app_context():
        body = db.session().scalar(select(OutboxMessage.body).where(
            OutboxMessage.channel == "sms", OutboxMessage.recipient == phone)
            .order_by(OutboxMessage.id.desc()).limit(1))
    return CODE.search(body).group(1)


def test_the_locked_page_shows_the_local_time(page: Page, app, live_world, portal):
    set_policy(app, live_world, captcha_after=5, lock_after=2)
    for _ in range(2):
        sign_in_at(page, portal, live_world.bob, "not the password")
    when = page.locator("#locked-until time")
    expect(when).to_contain_text("UTC (")
    expect(when).to_contain_text("your time)")
    assert "mfa" not in page.inner_text("body")
    screens.keep(page, "locked")
