"""Issue 16, defects 1 and 3, walked in Chromium against ``idp serve`` on the test backend,
with a portal (Authlib's client) that verifies the ID token with the issuer's JWKS.

3. An admin presses "Turn off" on a user's page: the user page, the users list and the MFA
   report then agree the user is off, and the user signs in at the portal with the password
   only (``amr`` ["pwd"]).
1. A Klearcom-style tenant (security questions only, seed 000): the policy page warns before
   saving that the console would then ask a question, and an admin then opens the console
   after answering one — never "The application requires level mfa".
"""

from __future__ import annotations

import re

import pyotp
import pytest
import requests
from playwright.sync_api import Page, expect

from idp import db, directory
from tests.support import screens
from tests.support.account import password_sign_in
from tests.support.journey import Browser
from tests.support.questions import ANSWERS, enroll
from tests.support.relying_party import discovery, portal_request


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def under(prefix: str) -> re.Pattern:
    return re.compile("^" + re.escape(prefix.rstrip("/")) + r"(/|\?|$)")


def log_in(page: Page, world, email: str) -> None:
    page.locator("#email").fill(email)
    page.locator("#password").fill(world.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def confirm(page: Page, button) -> None:
    """Press a console action and confirm it in the page's dialog."""
    expect(page.locator("html")).to_have_attribute("data-console", "ready")
    button.click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()


def admin_with_an_app(page: Page, world) -> None:
    """The admin opens the console; it asks for a second factor, and they set up an app."""
    page.goto(world.issuer + "/admin/users")
    log_in(page, world, world.admin)
    expect(page).to_have_url(under(world.issuer + "/login/setup"))
    page.get_by_role("link", name="Authenticator app").click()
    key = page.locator("#totp-setup-key").inner_text().replace(" ", "")
    page.get_by_label(re.compile("digit code the app shows")).fill(pyotp.TOTP(key).now())
    page.get_by_role("button", name="Confirm").click()
    page.locator("#continue").click()  # "Not now" on the backup-codes offer
    expect(page).to_have_url(under(world.issuer + "/admin/users"))


def user_id(app, world, email: str) -> int:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).id


def test_turn_off_then_the_list_the_page_and_the_report_agree_and_the_portal_sees_pwd(
        app, live_server, live_world, page: Page, chromium):
    world = live_world
    # Alice has security questions (the tenant allows every method; MFA is optional).
    own = Browser(requests.Session(), origin=live_server.url)
    password_sign_in(own, world, world.alice)
    enroll(own, world)

    admin_with_an_app(page, world)
    row = page.locator(f'tr[data-user="{world.alice}"]')
    expect(row.locator("[data-shield]")).to_have_attribute("data-shield", "on")
    expect(row.locator("[data-shield]")).to_have_text("On: Security questions")

    page.goto(f"{world.issuer}/admin/users/{user_id(app, world, world.alice)}")
    confirm(page, page.get_by_role("button", name="Turn off"))
    expect(page.get_by_role("status")).to_contain_text(f"Two-step verification is off for {world.alice}")
    expect(page.locator("[data-shield]")).to_have_attribute("data-shield", "exempt")
    expect(page.locator("[data-shield]")).to_have_text("Off (turned off by an administrator)")
    expect(page.get_by_role("button", name="Turn off")).to_have_count(0)
    expect(page.get_by_role("button", name="Turn on")).to_be_visible()
    screens.keep(page, "user-page")

    page.get_by_role("link", name="Users", exact=True).click()
    row = page.locator(f'tr[data-user="{world.alice}"]')
    expect(row.locator("[data-shield]")).to_have_attribute("data-shield", "exempt")
    expect(row.locator("[data-shield]")).to_have_text("Off (turned off by an administrator)")
    expect(row.get_by_role("button", name=f"Turn on two-step verification for {world.alice}")).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("Turn off"))).to_have_count(0)
    screens.keep(page, "users-list")

    page.get_by_role("link", name="MFA report").click()
    overall = page.locator("tr[data-overall]")
    expect(overall.locator('[data-count="off"]')).to_have_attribute("data-exempt", "1")
    expect(overall.locator('[data-count="on"]')).to_have_text(re.compile(r"^1 "))  # the admin
    screens.keep(page, "report")

    # Alice signs in at the portal: the password is all she is asked for, and the token says so.
    provider = discovery(world.issuer)
    pending = portal_request(world.portal, provider)
    user = chromium.new_context()
    callbacks: list[str] = []
    user.route(world.portal.redirect_uri + "**", lambda route: (
        callbacks.append(route.request.url),
        route.fulfill(status=200, content_type="text/html", body="<h1>Portal</h1>")))
    tab = user.new_page()
    tab.goto(pending.url)
    log_in(tab, world, world.alice)
    expect(tab.get_by_role("heading", name="Portal")).to_be_visible()
    user.close()
    claims = pending.finish(provider, callbacks[-1])
    assert (claims["amr"], claims["acr"]) == (["pwd"], "pwd")


def test_a_questions_only_tenant_warns_first_then_its_admin_opens_the_console_after_a_question(
        app, live_server, live_world, page: Page, chromium):
    world = live_world
    admin_with_an_app(page, world)
    page.get_by_role("link", name="Policy").click()
    expect(page.locator("#console-demand")).to_have_attribute("data-level", "mfa")
    for factor in ("webauthn", "totp", "email", "sms", "backup"):
        page.locator(f"#factor-{factor}").uncheck()
    page.locator("#factor-questions").check()
    page.get_by_role("button", name="Save the policy").click()
    warning = page.locator("#console-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("an answer to one of their security questions")
    screens.keep(page, "policy-warning")
    warning.get_by_role("button", name="Save anyway").click()
    expect(page.locator("#console-demand")).to_have_attribute("data-level", "pwd")
    screens.keep(page, "policy")

    # The admin's app is not allowed any more: next time they set up questions for the console.
    second = chromium.new_context().new_page()
    second.goto(world.issuer + "/admin/users")
    log_in(second, world, world.admin)
    # Questions are the only method allowed: straight to their setup, no choice page.
    expect(second).to_have_url(under(world.issuer + "/login/setup/kba"))
    answers = {}
    for i, answer in enumerate(ANSWERS, start=1):
        second.locator(f"#question-{i}").select_option(index=2 * i)
        answers[second.locator(f"#question-{i} option:checked").inner_text().strip()] = answer
        second.locator(f"#answer-{i}").fill(answer)
    second.get_by_role("button", name="Save my answers").click()
    expect(second).to_have_url(under(world.issuer + "/admin/users"))
    second.context.close()

    # And from then on: password, one question, the console.
    third = chromium.new_context().new_page()
    third.goto(world.issuer + "/admin/users")
    log_in(third, world, world.admin)
    question = third.locator("#kba-question")
    expect(question).to_be_visible()
    third.locator("#answer").fill(answers[question.inner_text().strip()])
    third.get_by_role("button", name="Verify").click()
    expect(third).to_have_url(under(world.issuer + "/admin/users"))
    expect(third.get_by_role("heading", name="Users")).to_be_visible()
    expect(third.get_by_text("requires level")).to_have_count(0)
    third.context.close()
