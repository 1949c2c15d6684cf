"""The demo in a real browser: the portal signs in through the IdP's hosted pages and out again."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.demo_pages import ALICE, open_login, sign_in, submit_login, summary, under

INCORRECT = "Incorrect email or password."


def test_sign_in_through_the_hosted_login_page(page: Page, demo):
    open_login(page, demo)
    assert page.url.startswith(demo.issuer + "/"), page.url
    expect(page.locator("#email")).to_have_attribute("autocomplete", "username webauthn")
    expect(page.locator("#password")).to_have_attribute("autocomplete", "current-password")
    expect(page.locator("#password")).to_have_attribute("type", "password")

    submit_login(page, ALICE, demo.passwords[ALICE])

    expect(page).to_have_url(demo.portal_url + "/")
    expect(page.get_by_role("heading", name=f"Signed in as {ALICE}")).to_be_visible()
    expect(summary(page, "Methods (amr)")).to_have_text("pwd")
    expect(summary(page, "Level (acr)")).to_have_text("pwd")


def test_wrong_password_and_unknown_email_get_the_same_answer(page: Page, demo):
    open_login(page, demo)
    submit_login(page, ALICE, demo.passwords[ALICE] + "-wrong")
    error = page.locator("#login-error")
    expect(error).to_have_text(INCORRECT)
    expect(page).to_have_url(under(demo.issuer + "/login"))
    wrong_password = error.inner_text().strip()

    submit_login(page, "nobody@demo.test", demo.passwords[ALICE])
    expect(error).to_have_text(INCORRECT)
    expect(page).to_have_url(under(demo.issuer + "/login"))
    unknown_email = error.inner_text().strip()

    assert unknown_email == wrong_password == INCORRECT
    # Still signed out: the form is offered again, nothing reached the portal.
    expect(page.locator("#email")).to_be_visible()
    expect(page.get_by_text("Signed in as")).to_have_count(0)


def test_signing_out_of_the_portal_ends_the_idp_session(page: Page, demo):
    sign_in(page, demo)

    page.get_by_role("link", name="Sign out").click()
    # The IdP may ask first (RP-Initiated Logout without a usable hint) or go straight back.
    signed_out = page.get_by_role("status").filter(has_text="You have been signed out.")
    confirm = page.get_by_role("heading", name="Sign out?")
    expect(signed_out.or_(confirm)).to_be_visible()
    if confirm.is_visible():
        assert page.url.startswith(demo.issuer + "/logout"), page.url
        page.get_by_role("button", name="Sign out").click()
    expect(signed_out).to_be_visible()
    expect(page).to_have_url(under(demo.portal_url))
    expect(page.get_by_text("Signed in as")).to_have_count(0)

    # Signing in again asks for the password: the IdP's SSO session is gone, not just the portal's.
    page.get_by_role("link", name="Sign in with idp").click()
    login_form = page.locator("#email")
    silently_signed_in = page.get_by_role("heading", name=re.compile("^Signed in as "))
    expect(login_form.or_(silently_signed_in)).to_be_visible()
    assert not silently_signed_in.is_visible(), (
        "after signing out of the portal, the IdP signed the user in again without a password: "
        "its SSO session survived the logout")
    expect(page).to_have_url(under(demo.issuer + "/login"))
    expect(page.locator("#password")).to_be_visible()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()


def test_login_page_sends_anti_framing_headers(page: Page, demo):
    response = open_login(page, demo)
    assert response.status == 200
    csp = response.header_value("content-security-policy")
    assert csp is not None, response.all_headers()
    assert "frame-ancestors 'none'" in csp, csp
    assert response.header_value("x-frame-options") == "DENY"
