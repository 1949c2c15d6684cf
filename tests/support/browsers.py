"""One person signed in on several browsers (each a test client with its own User-Agent and
address), and the account page's list of them: read it, sign one out, or all but this one."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from tests.support.account import password_sign_in
from tests.support.journey import CSRF, Browser, Page, field

FIREFOX_ON_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 "
                      "Firefox/133.0")
SAFARI_ON_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
CHROME_ON_LINUX = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/131.0.0.0 Safari/537.36")

_ROW = re.compile(r'<tr data-browser="([0-9a-f]{64})"( data-this="yes")?>(.*?)</tr>', re.S)
_TAG = re.compile(r"<[^>]+>")


@dataclass
class Listed:
    """A row of "Where you're signed in", as its words read."""

    public_id: str
    this: bool
    text: str  # the row's words, tags and runs of spaces removed


def browser_at(app, user_agent: str, address: str = "127.0.0.1") -> Browser:
    """A browser that sends ``user_agent`` from ``address``, signed in nowhere yet."""
    client = app.test_client()
    client.environ_base.update(HTTP_USER_AGENT=user_agent, REMOTE_ADDR=address)
    return Browser(client)


def signed_in_browser(app, world, email: str, user_agent: str, address: str = "127.0.0.1") -> Browser:
    browser = browser_at(app, user_agent, address)
    password_sign_in(browser, world, email)
    assert is_signed_in(browser, world)
    return browser


def account_page(browser: Browser, world) -> Page:
    page = browser.get(f"/t/{world.slug}/account")
    assert page.status == 200, (page.status, page.location)
    return page


def is_signed_in(browser: Browser, world) -> bool:
    """Does the account page show (rather than send the browser to sign in)?"""
    page = browser.get(f"/t/{world.slug}/account")
    assert page.status in (200, 302), page.status
    return page.status == 200


def listed(browser: Browser, world) -> list[Listed]:
    rows = _ROW.findall(account_page(browser, world).text)
    return [Listed(public_id, bool(this),
                   " ".join(html.unescape(_TAG.sub(" ", cells)).split()))
            for public_id, this, cells in rows]


def sign_out_browser(browser: Browser, world, public_id: str, csrf: bool = True) -> Page:
    """Press "Sign out" on the row of ``public_id`` (any id may be posted, as an attacker
    would)."""
    form = {"csrf_token": field(CSRF, account_page(browser, world).text)} if csrf else {}
    return browser.post(f"/t/{world.slug}/account/browsers/{public_id}/sign-out", form)


def sign_out_others(browser: Browser, world) -> Page:
    form = {"csrf_token": field(CSRF, account_page(browser, world).text)}
    return browser.post(f"/t/{world.slug}/account/browsers/sign-out-others", form)
