"""Remembered browsers as a portal's user meets them: sign-ins through a live server driven by
Authlib's client (ID tokens verified against the issuer's JWKS), answering the second step with
a backup code and ticking "Don't ask again" or not; and the rows an admin or time changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dataclass_field

import requests
from sqlalchemy import select

from idp import db, directory
from idp.models import RememberedDevice
from tests.support.account import answer_challenge, enroll_backup_codes
from tests.support.journey import Browser, Page
from tests.support.relying_party import portal_request
from tests.support.signin import set_policy

COOKIE = "idp_remember"
CHECKBOX = re.compile(r'<input type="checkbox" id="remember" name="remember" value="yes"')


@dataclass
class Person:
    """A user with backup codes, and their browser on the live server."""

    email: str
    codes: list[str]
    browser: Browser = dataclass_field(default=None)

    def code(self) -> str:
        return self.codes.pop(0)


@dataclass
class Outcome:
    claims: dict
    asked: bool  # the second step was asked for
    offered: bool  # ... with "Don't ask again on this browser"
    page: Page | None = None  # the challenge page, when asked


def remembering(app, world, days: int = 30, **changes) -> None:
    """The tenant requires a second step, and remembers browsers for ``days``."""
    set_policy(app, world, mode="required", remember_days=days, **changes)


def person(app, live_server, world, email: str | None = None) -> Person:
    """``email`` (alice by default) with backup codes, and a fresh browser of the live server."""
    email = email or world.alice
    codes = enroll_backup_codes(Browser(app.test_client()), world, email=email)
    return Person(email, codes, Browser(requests.Session(), origin=live_server.url))


def sign_in(world, provider, who: Person, tick: bool = True, creds=None, **params) -> Outcome:
    """The portal ``creds`` (the world's by default) signs ``who`` in, with request ``params``;
    a second step asked for is answered with a backup code, "Don't ask again" ticked when
    offered and ``tick``."""
    creds = creds or world.portal
    browser = who.browser
    pending = portal_request(creds, provider, **params)
    page = browser.follow(browser.get(pending.url), creds.redirect_uri)
    if page.status == 200 and 'autocomplete="current-password"' in page.text:
        page = browser.sign_in(page, who.email, world.password, world.slug, creds.redirect_uri)
    asked = page.status == 200 and 'action="/t/' in page.text and "/login/verify" in page.text
    offered = asked and bool(CHECKBOX.search(page.text))
    challenge = page if asked else None
    if asked:
        extra = {"remember": "yes"} if tick else {}
        page = browser.follow(answer_challenge(browser, world, page, "backup", code=who.code(),
                                               **extra), creds.redirect_uri)
    assert page.location and page.location.startswith(creds.redirect_uri), \
        (page.status, page.location, page.text[:800])
    return Outcome(pending.finish(provider, page.location), asked, offered, challenge)


def signed_out(who: Person) -> None:
    """The browser loses its SSO session (as after signing out), keeping its other cookies."""
    jar = who.browser.http.cookies
    for cookie in [c for c in jar if c.name == "idp_sso"]:
        jar.clear(cookie.domain, cookie.path, cookie.name)


def remember_cookie(who: Person):
    return next((c for c in who.browser.http.cookies if c.name == COOKIE), None)


def devices(app, world, email: str) -> list[RememberedDevice]:
    """The user's remembered browsers, as the database has them."""
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        rows = list(session.scalars(select(RememberedDevice).where(
            RememberedDevice.user_id == user.id).order_by(RememberedDevice.id)))
        session.expunge_all()
        return rows


def age_devices(app, world, email: str, **older) -> None:
    """Move the user's remembered browsers back in time (``expires_at``, ``created_at``:
    timedelta each) instead of waiting."""
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        for row in session.scalars(select(RememberedDevice).where(RememberedDevice.user_id == user.id)):
            for column, by in older.items():
                setattr(row, column, getattr(row, column) - by)
        session.commit()

