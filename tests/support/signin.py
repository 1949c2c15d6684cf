"""A tenant's policy (and a user's second-factor setting) set as an admin would, and sign-ins
through it as a portal's user would."""

from __future__ import annotations

import re

from sqlalchemy import select

from idp import admin, db, directory
from idp.models import Group
from tests.support.account import CEREMONY
from tests.support.captcha import solve
from tests.support.journey import CSRF, TX, Browser, Page, field, pkce_pair, query
from tests.support.rp import jwt_claims, params_for, redeem
from tests.support.totp import TOTP_KEY, totp_code


def set_policy(app, world, **changes):
    with app.app_context():
        session = db.session()
        admin.set_policy(session, directory.get_tenant(session, world.slug), "test", **changes)
        session.commit()


def user_mfa(app, world, email, action):
    """An admin's second-factor action for one user (``admin.set_user_mfa``: require, exempt...)."""
    with app.app_context():
        session = db.session()
        admin.set_user_mfa(session, directory.get_tenant(session, world.slug), email, action, "test")
        session.commit()


def put_in_group(app, world, group: str, *emails: str) -> None:
    """The group made (if it is new) and ``emails`` added to it, as an admin would."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        if session.scalar(select(Group.id).where(Group.tenant_id == tenant.id,
                                                 Group.name == group)) is None:
            admin.create_group(session, tenant, group, "test")
        for email in emails:
            admin.add_to_group(session, tenant, group, email, "test")
        session.commit()


def fail_until_locked(client, world, email):
    """Wrong passwords at the tenant's login page (solving the CAPTCHA once it is asked for)
    until the account locks (the default five); returns the lock's answer."""
    last = ""
    for attempt in range(5):
        page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
        data = {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email, "password": "wrong!!!!"}
        if attempt >= 3:
            data["altcha"] = solve(last)
        r = client.post(f"/t/{world.slug}/login", data=data)
        last = r.get_data(as_text=True)
    assert r.status_code == 429
    return r


def start(browser: Browser, world, email: str | None = None, **extra):
    """An authorization request of the portal through the password step:
    (PKCE verifier, the page after the password, the request's parameters)."""
    verifier, challenge = pkce_pair()
    params = params_for(world.portal, code_challenge=challenge, **extra)
    page = browser.authorize(f"/t/{world.slug}", params)
    if page.status == 200 and 'autocomplete="current-password"' in page.text:
        page = browser.sign_in(page, email or world.alice, world.password, world.slug,
                               world.portal.redirect_uri)
    return verifier, page, params


def challenge_page(app, world, email: str | None = None):
    """A new browser past the password of the portal's authorization request:
    (the browser, the PKCE verifier, the page after the password)."""
    browser = Browser(app.test_client())
    verifier, challenge = pkce_pair()
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, code_challenge=challenge))
    page = browser.sign_in(page, email or world.alice, world.password, world.slug,
                           world.portal.redirect_uri)
    return browser, verifier, page


def tokens_for(browser: Browser, world, page: Page, verifier: str) -> dict:
    """The ID token's claims for the code the portal received on ``page``."""
    assert page.status == 302 and page.location.startswith(world.portal.redirect_uri), \
        (page.status, page.location, page.text[:400])
    r = redeem(browser.http, world, world.portal, query(page.location)["code"], verifier)
    assert r.status_code == 200, r.get_json()
    return jwt_claims(r.get_json()["id_token"])


def open_forced_setup(browser: Browser, world, setup_page: Page, factor_type: str = "totp") -> Page:
    """From the setup wizard, open one factor's setup page (where only one method is allowed,
    the wizard opened it already)."""
    if f'/login/setup/{factor_type}"' in setup_page.text and 'id="enroll-form"' in setup_page.text:
        return setup_page
    link = re.search(rf'href="([^"]*/login/setup/{factor_type}\?tx=[^"]+)"', setup_page.text)
    assert link, setup_page.text[:800]
    return browser.get(link.group(1).replace("&amp;", "&"))


def finish_forced_totp(browser: Browser, world, setup: Page) -> tuple[Page, str]:
    """Confirm the authenticator app shown on ``setup``; (the answer, the app's secret)."""
    secret = TOTP_KEY.search(setup.text).group(1).replace(" ", "")
    answer = browser.post(f"/t/{world.slug}/login/setup/totp", {
        "csrf_token": field(CSRF, setup.text), "tx": field(TX, setup.text),
        "ceremony": field(CEREMONY, setup.text), "code": totp_code(secret)})
    return answer, secret


def not_now_to_backup_codes(browser: Browser, page: Page) -> Page:
    """Past the backup-codes offer that follows a first method set up during sign-in, if shown."""
    onward = re.search(r'href="([^"]+)" id="continue"', page.text) if page.status == 200 else None
    return browser.get(onward.group(1).replace("&amp;", "&")) if onward else page
