"""axe-core on every hosted page and every console page, in English and in German, in the light
and in the dark colour scheme (there: its colour rule): no serious or critical violation
(issue 21, point 3).

The hosted pages are walked as a portal's user would (a real authorization request, a wrong
password, the second factor, consent, sign-out, a locked account, an error page); the console,
account and setup pages are those of tests/browser/test_layout.py, on the same furnished tenant.
Runs ``idp serve`` on the test backend; axe runs from the copy bundled with
axe-playwright-python (nothing fetched).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pyotp
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.browser.test_layout import HELPDESK, LONG_GROUP, _furnish, _ids
from tests.support.axe import violations
from tests.support.captcha import solve
from tests.support.journey import CSRF, TX, field
from tests.support.relying_party import discovery, portal_request
from tests.support.signin import set_policy
from tests.support.totp import with_totp

LANGUAGES = ("en", "de")


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


class Audit:
    """axe on each page visited, in each colour scheme; what it found, page by page."""

    def __init__(self, lang: str):
        self.lang = lang
        self.found: list[str] = []
        self.seen: list[str] = []

    def check(self, page: Page, name: str) -> None:
        """Every rule in the light scheme; in the dark one the colours only (the rest of what
        axe checks is the same markup)."""
        expect(page.locator("html")).to_have_attribute("lang", self.lang)
        self.seen.append(name)
        self.found += violations(page, f"{name} [{self.lang}, light]")
        page.emulate_media(color_scheme="dark")
        self.found += violations(page, f"{name} [{self.lang}, dark]", rules=["color-contrast"])
        page.emulate_media(color_scheme="light")

    def assert_clean(self) -> None:
        assert not self.found, (f"{len(self.found)} serious or critical accessibility violations "
                                f"(axe-core):\n\n" + "\n\n".join(self.found))


def speaking(chromium, lang: str, issuer: str) -> Page:
    """A fresh browser that chose ``lang`` on the language switcher (?lang=, remembered)."""
    page = chromium.new_context().new_page()
    page.context.set_default_timeout(15_000)
    page.goto(f"{issuer}/login/forgot?lang={lang}")
    return page


def submit(page: Page, form: str = "form[method=post]") -> None:
    """Press the first button of the page's form (the pages' words differ by language)."""
    page.locator(f"{form} button[type=submit]").first.click()


def lock(issuer: str, email: str) -> str:
    """Five wrong passwords over HTTP (the CAPTCHA solved from the fourth); the last page."""
    http, last = requests.Session(), ""
    for attempt in range(5):
        page = http.get(f"{issuer}/login").text
        data = {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email,
                "password": "wrong guess!"}
        if attempt >= 3:
            data["altcha"] = solve(last)
        last = http.post(f"{issuer}/login", data=data).text
    return last


@pytest.mark.parametrize("lang", LANGUAGES)
def test_hosted_pages_have_no_serious_accessibility_violations(lang, chromium, app, live_world):
    world = live_world
    base = world.issuer
    set_policy(app, world, self_registration=True)
    seed = with_totp(app, world)  # Alice is asked for a code after her password
    provider = discovery(base)
    audit = Audit(lang)
    page = speaking(chromium, lang, base)
    callbacks: list[str] = []
    page.context.route(world.portal.redirect_uri + "**", lambda route: (
        callbacks.append(route.request.url),
        route.fulfill(status=200, content_type="text/html", body="<h1>Portal</h1>")))
    try:
        audit.check(page, "forgot")
        page.locator("#email").fill(world.alice)
        submit(page)
        expect(page.locator("#email")).to_have_count(0)
        audit.check(page, "forgot-sent")
        page.goto(base + "/signup")
        audit.check(page, "signup")

        # A portal sends Alice to sign in; she mistypes her password first.
        pending = portal_request(world.portal, provider, scope="openid profile email")
        page.goto(pending.url)
        expect(page.locator("#email")).to_be_focused()
        audit.check(page, "login")
        page.locator("#email").fill(world.alice)
        page.locator("#password").fill("not her password")
        submit(page)
        expect(page.locator("#login-error")).to_be_visible()
        audit.check(page, "login-wrong-password")
        page.locator("#email").fill(world.alice)
        page.locator("#password").fill(world.password)
        submit(page)
        expect(page.locator("#factor-form")).to_be_visible()
        audit.check(page, "second-factor")
        page.locator("#code").fill(pyotp.TOTP(seed).now())
        submit(page, "#factor-form")
        expect(page.get_by_role("heading", name="Portal")).to_be_visible()
        assert pending.finish(provider, callbacks[-1])["email"] == world.alice.lower()

        # The portal asks for consent again; then a sign-out link without a hint asks first.
        page.goto(portal_request(world.portal, provider, prompt="consent").url)
        expect(page).to_have_url(re.compile(re.escape(base) + r"/consent\b"))
        audit.check(page, "consent")
        page.goto(base + "/")
        audit.check(page, "home")
        page.goto(base + "/logout")
        audit.check(page, "logout-confirm")
        submit(page)
        expect(page.locator("form[method=post]")).to_have_count(0)
        audit.check(page, "signed-out")

        # An authorization request from no portal we know: the error page.
        response = page.goto(base + "/authorize?client_id=nobody&response_type=code&scope=openid"
                                    "&redirect_uri=https%3A%2F%2Fnowhere.test%2Fcb")
        assert response and response.status == 400, response and response.status
        audit.check(page, "error")
        response = page.goto(base.rsplit("/t/", 1)[0] + "/t/no-such-tenant/login")
        assert response and response.status == 404, response and response.status
        audit.check(page, "unknown-tenant")

        # Three wrong passwords for Ada: the page asks for a CAPTCHA.
        page.goto(base + "/login")
        for _ in range(3):
            page.locator("#email").fill(world.admin)
            page.locator("#password").fill("not her password")
            submit(page)
            expect(page.locator("#login-error")).to_be_visible()
        expect(page.locator("altcha-widget")).to_have_count(1)
        audit.check(page, "login-captcha")

        # Bob's account is locked by someone guessing: the lock page.
        lock(base, world.bob)
        page.goto(base + "/login")
        page.locator("#email").fill(world.bob)
        page.locator("#password").fill(world.password)
        submit(page)
        expect(page.locator("#locked-until")).to_be_visible()
        audit.check(page, "locked")
    finally:
        page.context.close()
    audit.assert_clean()


def _people_pages(world, ids: dict) -> dict[str, str]:
    """The console's pages about people (those of tests/browser/test_layout.py)."""
    return {
        "console-users": "/admin/users",
        "console-user": f"/admin/users/{ids['long']}",
        "console-user-alice": f"/admin/users/{ids['alice']}",
        "console-user-deactivated": f"/admin/users/{ids['former']}",
        "console-user-invited": f"/admin/users/{ids['invited']}",
        "console-user-delete": f"/admin/users/{ids['long']}/delete",
        "console-users-filtered": f"/admin/users?mfa=off&status=deactivated&group={quote(LONG_GROUP)}",
        "console-policy": "/admin/policy",
        "console-policy-what-if": f"/admin/policy?email={world.alice}&portal={world.portal.client_id}&acr=mfa#what-if",
        "console-groups": "/admin/groups",
        "console-group": f"/admin/groups/{ids['group']}",
        "console-report": "/admin/report",
    }


def _application_pages(world, ids: dict) -> dict[str, str]:
    """The console's pages about applications, upstreams, webhooks and the audit log."""
    return {
        "console-portals": "/admin/portals",
        "console-portal": f"/admin/portals/{world.portal.client_id}",
        "console-service": f"/admin/portals/{world.service.client_id}",
        "console-audit": "/admin/audit",
        "console-upstreams": "/admin/upstreams",
        "console-upstream": "/admin/upstreams/corp",
        "console-webhooks": "/admin/webhooks",
        "console-webhook": f"/admin/webhooks/{ids['webhook']}",
        "console-branding": "/admin/branding",
    }


def sign_in(page: Page, issuer: str, path: str, email: str, password: str) -> None:
    page.goto(issuer + path)
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    submit(page)


def set_up_an_app(page: Page, audit: Audit | None) -> None:
    """On the setup page a sign-in shows: an authenticator app, then "Not now" to backup codes."""
    page.locator("a[href*='/login/setup/totp']").click()
    key = page.locator("#totp-setup-key").inner_text().replace(" ", "")
    if audit:
        audit.check(page, "login-setup-totp")
    page.locator("#code").fill(pyotp.TOTP(key).now())
    submit(page, "#enroll-form")
    expect(page.locator("#continue")).to_be_visible()
    if audit:
        audit.check(page, "login-backup-offer")
    page.locator("#continue").click()


class Browsers:
    """Fresh browsers speaking one language, all closed at the end."""

    def __init__(self, chromium, lang: str, issuer: str):
        self.chromium, self.lang, self.issuer, self.opened = chromium, lang, issuer, []

    def new(self) -> Page:
        self.opened.append(speaking(self.chromium, self.lang, self.issuer))
        return self.opened[-1]

    def close(self) -> None:
        for page in self.opened:
            page.context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_setup_pages_and_the_consoles_people_pages_have_no_serious_accessibility_violations(
        lang, chromium, app, live_world):
    world = live_world
    _furnish(app, world)
    ids = _ids(app, world)
    base = world.issuer
    audit = Audit(lang)
    browsers = Browsers(chromium, lang, base)
    try:
        # Bob, whom an administrator made set up a second step: the setup pages.
        bob = browsers.new()
        sign_in(bob, base, "/account", world.bob, world.password)
        expect(bob).to_have_url(re.compile(re.escape(base) + r"/login/setup\b"))
        audit.check(bob, "login-setup")
        bob.locator("a[href*='/login/setup/kba']").click()
        expect(bob.locator("#question-1")).to_be_visible()
        audit.check(bob, "login-setup-questions")

        # The administrator sets up an app on the way to the console.
        page = browsers.new()
        sign_in(page, base, "/admin/users", world.admin, world.password)
        set_up_an_app(page, audit)
        expect(page).to_have_url(re.compile(re.escape(base) + r"/admin/users\b"))
        for name, path in _people_pages(world, ids).items():
            response = page.goto(base + path)
            assert response and response.status == 200, (name, response and response.status)
            audit.check(page, name)

        # The confirmation dialog open, and the sign-in link a confirmed action shows.
        page.goto(base + f"/admin/users/{ids['long']}")
        expect(page.locator("html")).to_have_attribute("data-console", "ready")
        page.locator("form[action$='/deactivate'] button").click()
        expect(page.locator("#confirm-dialog")).to_be_visible()
        audit.check(page, "console-confirm-dialog")
        page.keyboard.press("Escape")
        page.locator("form[action$='/login-token'] button").click()
        page.locator("#confirm-yes").click()
        expect(page.locator("#login-token-url")).to_be_visible()
        audit.check(page, "console-login-link")
    finally:
        browsers.close()
    assert {"login-setup", "console-users", "console-login-link"} <= set(audit.seen)
    audit.assert_clean()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_consoles_application_pages_have_no_serious_accessibility_violations(
        lang, chromium, app, live_world):
    world = live_world
    _furnish(app, world)
    ids = _ids(app, world)
    base = world.issuer
    audit = Audit(lang)
    browsers = Browsers(chromium, lang, base)
    try:
        page = browsers.new()
        sign_in(page, base, "/admin/portals", world.admin, world.password)
        set_up_an_app(page, None)
        expect(page).to_have_url(re.compile(re.escape(base) + r"/admin/portals\b"))
        for name, path in _application_pages(world, ids).items():
            response = page.goto(base + path)
            assert response and response.status == 200, (name, response and response.status)
            audit.check(page, name)

        # A new portal's secret, shown once.
        page.goto(base + "/admin/portals")
        page.locator("#portal-name").fill("Expense claims for the Lisbon office (staging)")
        page.locator("#portal-redirect-uris").fill("https://expenses.lisbon.example.com/callback")
        submit(page, "form.portal-form")
        expect(page.locator("#client-secret")).to_be_visible()
        audit.check(page, "console-portal-new-secret")
    finally:
        browsers.close()
    assert {"console-portals", "console-webhook", "console-portal-new-secret"} <= set(audit.seen)
    audit.assert_clean()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_account_pages_and_an_mfa_admins_console_have_no_serious_accessibility_violations(
        lang, chromium, app, live_world):
    world = live_world
    _furnish(app, world)
    ids = _ids(app, world)
    base = world.issuer
    audit = Audit(lang)
    browsers = Browsers(chromium, lang, base)
    try:
        # Alice's account page, her password page and the pages where she adds a method.
        alice = browsers.new()
        sign_in(alice, base, "/account", world.alice, world.password)
        expect(alice.locator("#signed-in-as")).to_have_text(world.alice.lower())
        audit.check(alice, "account")
        for name, path in (("account-password", "/account/password"),
                           *((f"account-add-{factor}", f"/account/add/{factor}")
                             for factor in ("kba", "totp", "webauthn", "email", "sms", "backup"))):
            response = alice.goto(base + path)
            assert response and response.status == 200, (name, response and response.status)
            audit.check(alice, name)

        # A two-factor administrator's console, where an administrator's page has no buttons.
        helpdesk = browsers.new()
        sign_in(helpdesk, base, "/admin/users", HELPDESK, world.password)
        set_up_an_app(helpdesk, None)
        expect(helpdesk).to_have_url(re.compile(re.escape(base) + r"/admin/users\b"))
        audit.check(helpdesk, "console-users-mfa-admin")
        helpdesk.goto(base + f"/admin/users/{ids['admin']}")
        audit.check(helpdesk, "console-user-mfa-admin")
    finally:
        browsers.close()
    assert {"account", "account-add-backup", "console-user-mfa-admin"} <= set(audit.seen)
    audit.assert_clean()
