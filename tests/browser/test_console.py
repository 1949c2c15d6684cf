"""The admin console in Chromium: the demo's admin secures the console with an authenticator
app, turns on two-step verification for a user with the shield (confirm dialog), and that
user's next sign-in asks for setup; reset and unlock from the console."""

from __future__ import annotations

import csv
import io
import re
import secrets
import sqlite3
import time

import pyotp
import requests
from playwright.sync_api import Page, expect

from tests.support.captcha import solve
from tests.support.demo_pages import idp_on_demo, submit_login, under
from tests.support.journey import CSRF, TX, field

ADMIN = "admin@demo.test"


def new_user(demo) -> tuple[str, str]:
    """A user of the demo tenant of this test's own (the other browser tests use alice)."""
    email, password = f"carol-{secrets.token_hex(3)}@demo.test", secrets.token_urlsafe(12)
    done = idp_on_demo(demo, "user", "create", "demo", email, "--password-stdin",
                       stdin=password + "\n")
    assert done.returncode == 0, done.stderr
    return email, password


ADMIN_TOTP: dict[str, str] = {}  # demo issuer -> the admin's authenticator-app key
USED_CODES: set[tuple[str, str]] = set()


def _fresh_code(key: str) -> str:
    """A code the app shows now, never one already accepted (a TOTP code is spent once)."""
    totp = pyotp.TOTP(key)
    while (key, code := totp.now()) in USED_CODES:
        time.sleep(1)
    USED_CODES.add((key, code))
    return code


def admin_into_console(page: Page, demo) -> None:
    """Sign in as the admin; the console asks for a second factor, set one up if needed."""
    page.goto(demo.issuer + "/admin/users")
    expect(page.locator("#email")).to_be_visible()
    submit_login(page, ADMIN, demo.passwords[ADMIN])
    if "/login/setup" in page.url:  # no factor yet: set up an authenticator app
        page.get_by_role("link", name="Authenticator app").click()
        key = page.locator("#totp-setup-key").inner_text().replace(" ", "")
        ADMIN_TOTP[demo.issuer] = key
        page.get_by_label(re.compile("digit code the app shows")).fill(_fresh_code(key))
        page.get_by_role("button", name="Confirm").click()
        page.locator("#continue").click()  # "Not now" on the backup-codes offer
    else:  # set up by an earlier test: answer with the app
        page.get_by_label("Code from your authenticator app").fill(_fresh_code(ADMIN_TOTP[demo.issuer]))
        page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(under(demo.issuer + "/admin/users"))


def confirmations_on(page: Page) -> None:
    """The deferred console script has bound its confirm dialog (until then a form posts at
    once, as it does without JavaScript)."""
    expect(page.locator("html")).to_have_attribute("data-console", "ready")


def shield(page: Page, email: str):
    return page.locator(f'tr[data-user="{email}"] [data-shield]')


def lock(demo, email: str) -> None:
    """Five wrong passwords over HTTP (solving the CAPTCHA the page shows after three)."""
    http, last = requests.Session(), ""
    for attempt in range(5):
        page = http.get(f"{demo.issuer}/login").text
        data = {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email, "password": "wrong guess!"}
        if attempt >= 3:
            data["altcha"] = solve(last)
        last = http.post(f"{demo.issuer}/login", data=data).text
    assert "locked" in last


def test_shield_reset_and_unlock_from_the_console(page: Page, demo, chromium):
    email, password = new_user(demo)
    admin_into_console(page, demo)

    page.get_by_label("Search by email or name").fill(email)
    page.get_by_role("button", name="Search").click()
    expect(shield(page, email)).to_have_attribute("data-shield", "optional")  # the demo's MFA is optional
    confirmations_on(page)
    page.get_by_role("button", name=f"Turn on two-step verification for {email}").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Turn on two-step verification for {email}?")
    page.get_by_role("button", name="Confirm").click()
    expect(shield(page, email)).to_have_attribute("data-shield", "required")
    expect(page.get_by_role("status")).to_contain_text(f"Two-step verification is on for {email}")

    # That user's next sign-in asks for setup before anything else.
    other = chromium.new_context().new_page()
    other.goto(demo.issuer + "/login")
    submit_login(other, email, password)
    expect(other).to_have_url(under(demo.issuer + "/login/setup"))
    expect(other.get_by_role("heading", name="Set up two-step verification")).to_be_visible()
    other.context.close()

    # Reset from the user's page: confirm, and the page says so.
    page.get_by_role("link", name=email).click()
    confirmations_on(page)
    page.get_by_role("button", name="Reset").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("status")).to_contain_text("sets up two-step verification again")

    # Locked by failed attempts: the shield says so, Unlock ends it.
    lock(demo, email)
    page.goto(demo.issuer + f"/admin/users?q={email}")
    expect(page.locator(f'tr[data-user="{email}"] [data-locked]')).to_be_visible()
    confirmations_on(page)
    page.locator(f'tr[data-user="{email}"]').get_by_role("button", name="Unlock").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator(f'tr[data-user="{email}"] [data-locked]')).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text(f"{email} is unlocked")


def test_the_report_chart_renders_and_the_csv_holds_every_users_state(page: Page, demo, chromium):
    email, _ = new_user(demo)
    admin_into_console(page, demo)
    page.get_by_label("Search by email or name").fill(email)
    page.get_by_role("button", name="Search").click()
    confirmations_on(page)
    page.get_by_role("button", name=f"Turn on two-step verification for {email}").click()
    page.get_by_role("button", name="Confirm").click()
    expect(shield(page, email)).to_have_attribute("data-shield", "required")

    page.get_by_role("link", name="MFA report").click()
    chart = page.get_by_role("img", name="Two-step verification adoption, overall and per group")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 40  # drawn, not an empty element
    overall = page.locator("tr[data-overall]")
    expect(overall.locator('[data-count="required"]')).not_to_have_text(re.compile(r"^0 "))
    # Each bar's segments are drawn with a width; the overall bar spans users of every state.
    widths = [float(w) for w in page.locator("g.bar").first.locator("rect").evaluate_all(
        "rects => rects.map(r => r.getAttribute('width'))")]
    assert widths and sum(widths) > 0

    with page.expect_download() as download:
        page.get_by_role("link", name="Download every user's status (CSV)").click()
    text = open(download.value.path(), encoding="utf-8").read()
    rows = {row["email"]: row for row in csv.DictReader(io.StringIO(text))}
    with sqlite3.connect(demo.log.parent / "idp.sqlite3") as db:
        everyone = {e for (e,) in db.execute(
            "SELECT users.email FROM users JOIN tenants ON tenants.id = users.tenant_id "
            "WHERE tenants.slug = 'demo'")}
    assert set(rows) == everyone
    assert rows[email]["state"] == "required" and rows[email]["admin_state"] == "enforced"
    assert rows[ADMIN]["state"] == "on" and "totp" in rows[ADMIN]["factor_types"]
    total = int(overall.locator('[data-count="total"]').inner_text())
    assert total == len(everyone)
