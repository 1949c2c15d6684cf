"""The demo (``idp demo``, the ``demo`` fixture of tests/browser) as a person uses it in
Chromium: the portal's "Sign in with idp", the hosted login form, the portal's sign-in summary;
and the ``idp`` command on the demo's own database, as its operator would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from playwright.sync_api import Page, expect

from tests.support.paths import ROOT

ALICE = "alice@demo.test"


def under(prefix: str) -> re.Pattern:
    """A URL at ``prefix`` or below it (a path, a query), for ``expect(page).to_have_url``."""
    return re.compile("^" + re.escape(prefix.rstrip("/")) + r"(/|\?|$)")


def summary(page: Page, term: str):
    """The <dd> that follows the <dt> named ``term`` in the portal's sign-in summary."""
    return page.locator("dl.summary dt", has_text=term).locator("xpath=following-sibling::dd[1]")


def open_login(page: Page, demo):
    """From the portal's home page to the IdP's hosted login form; returns its response."""
    page.goto(demo.portal_url + "/")
    with page.expect_response(
        lambda r: r.url.startswith(demo.issuer + "/login") and r.request.resource_type == "document"
    ) as login:
        page.get_by_role("link", name="Sign in with idp").click()
    expect(page).to_have_url(under(demo.issuer + "/login"))
    expect(page.locator("#email")).to_be_visible()
    return login.value


def submit_login(page: Page, email: str, password: str) -> None:
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_in(page: Page, demo, email: str = ALICE) -> None:
    open_login(page, demo)
    submit_login(page, email, demo.passwords[email])
    expect(page).to_have_url(under(demo.portal_url))
    expect(page.get_by_role("heading", name=f"Signed in as {email}")).to_be_visible()


def idp_on_demo(demo, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``idp ...`` on the demo's own database (its SQLite file and keys beside its log)."""
    env = {**os.environ, "IDP_DATABASE_URL": f"sqlite:///{demo.log.parent / 'idp.sqlite3'}",
           "IDP_KEYS_DIR": str(demo.log.parent / "keys")}
    env.pop("IDP_REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "idp", *args], input=stdin, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
