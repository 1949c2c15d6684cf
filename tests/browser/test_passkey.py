"""A passkey end to end in Chromium: added on the IdP's account page, then used to sign in to
the demo portal, with Chromium's virtual authenticator (DevTools protocol, WebAuthn domain)
standing in for a phone or laptop.

WebAuthn needs a domain as RP ID (an IP address is refused), so this relies on the demo
publishing loopback as "localhost" (idp/demo.py). The demo tenant offers second factors
(policy "optional"); the passkey is removed at the end, so the other demo tests still sign
in with the password alone.
"""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.support.demo_pages import (ALICE, idp_on_demo, open_login, sign_in, submit_login,
                                      summary, under)

VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


def idp_cli(demo, *args: str) -> dict:
    """``idp ...`` on the demo's own database (its SQLite file beside its log)."""
    done = idp_on_demo(demo, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def sign_out(page: Page, demo) -> None:
    page.goto(demo.portal_url + "/")
    page.get_by_role("link", name="Sign out").click()
    signed_out = page.get_by_role("status").filter(has_text="You have been signed out.")
    confirm = page.get_by_role("heading", name="Sign out?")
    expect(signed_out.or_(confirm)).to_be_visible()
    if confirm.is_visible():
        page.get_by_role("button", name="Sign out").click()
    expect(signed_out).to_be_visible()


def test_add_a_passkey_and_sign_in_with_it(page: Page, demo):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator",
                             {"options": VIRTUAL_AUTHENTICATOR})["authenticatorId"]

    # The demo tenant offers second factors out of the box.
    assert idp_cli(demo, "policy", "show", "demo")["mode"] == "optional"
    # Alice signs in with her password and adds a passkey on the IdP's account page.
    sign_in(page, demo)
    expect(summary(page, "Methods (amr)")).to_have_text("pwd")
    page.goto(demo.issuer + "/account")
    expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()
    page.get_by_role("link", name="Add passkey or security key").click()
    expect(page).to_have_url(under(demo.issuer + "/account/add/webauthn"))
    page.get_by_label("Name this passkey or security key").fill("Test laptop")
    page.get_by_role("button", name="Register").click()

    expect(page).to_have_url(under(demo.issuer + "/account"))
    expect(page.get_by_role("status").filter(has_text="Passkey or security key added.")).to_be_visible()
    row = page.locator('tr[data-factor="webauthn"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Test laptop")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"], credentials
    assert credentials[0]["rpId"] == "localhost", credentials

    # Signed out, she signs in again: the password, then the passkey.
    sign_out(page, demo)
    open_login(page, demo)
    submit_login(page, ALICE, demo.passwords[ALICE])
    expect(page).to_have_url(under(demo.issuer + "/login/verify"))
    page.get_by_role("button", name="Use passkey or security key").click()

    expect(page).to_have_url(under(demo.portal_url))
    expect(page.get_by_role("heading", name=f"Signed in as {ALICE}")).to_be_visible()
    amr = summary(page, "Methods (amr)")
    expect(amr).to_contain_text("hwk")
    assert {"pwd", "hwk", "user", "mfa"} <= {m.strip() for m in amr.inner_text().split(",")}
    expect(summary(page, "Level (acr)")).to_have_text("phr")
    signed = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert signed[0]["signCount"] >= 1, signed

    # Adding the same authenticator again: the browser refuses (excludeCredentials) and
    # the page says why, in the page, without leaving it.
    page.goto(demo.issuer + "/account/add/webauthn")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#webauthn-status")).to_have_text(
        "This passkey or security key is registered on your account already. Use another one.")
    expect(page).to_have_url(under(demo.issuer + "/account/add/webauthn"))

    # The passkey is removed again from the account page (the session proved it).
    page.goto(demo.issuer + "/account")
    row.get_by_text("Manage").click()
    row.get_by_role("button", name="Remove Test laptop").click()
    expect(page.get_by_role("status").filter(has_text="Test laptop removed.")).to_be_visible()
    expect(page.locator('tr[data-factor="webauthn"]')).to_have_count(0)

    # Our script ran under the CSP (default-src 'self') without a violation.
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
