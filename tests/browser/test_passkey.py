"""Passkeys and security keys end to end in Chromium, with Chromium's virtual authenticator
(DevTools protocol, WebAuthn domain) standing in for a phone, a laptop or a USB key: a security
key added on the IdP's account page and used as the second step; a passkey created there and
used as the whole sign-in, through the email field's autofill (conditional mediation) and
through the "Sign in with a passkey" button; and a passkey that did not verify its user,
which counts as one factor. The portal's own verified ID token says what happened.

WebAuthn needs a domain as RP ID (an IP address is refused), so this relies on the demo
publishing loopback as "localhost" (idp/demo.py). The demo tenant offers second factors
(policy "optional"); the passkey is removed at the end, so the other demo tests still sign
in with the password alone.
"""

from __future__ import annotations

import json

from playwright.sync_api import Page, expect

from tests.support import screens

from tests.support.demo_pages import (ALICE, idp_on_demo, open_login, sign_in, submit_login,
                                      summary, under)

# A phone or laptop: it keeps passkeys (resident keys) and verifies its user.
VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
# A USB security key that keeps no passkey: it can only be a second step.
SECURITY_KEY = {**VIRTUAL_AUTHENTICATOR, "transport": "usb", "hasResidentKey": False}


def virtual_authenticator(page: Page, options: dict) -> tuple:
    """Chromium's virtual authenticator on ``page``: (the DevTools session, its id)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    return cdp, cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]


def remove_methods(page: Page, demo) -> None:
    """Every method Alice added is removed again from her account page (the other demo tests
    sign in with the password alone)."""
    page.goto(demo.issuer + "/account")
    rows = page.locator('tr[data-factor="webauthn"]')
    while rows.count():
        rows.first.get_by_text("Manage").click()
        rows.first.get_by_role("button", name="Remove").click()
        expect(page.get_by_role("status")).to_contain_text("removed.")
    expect(rows).to_have_count(0)


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


def test_add_a_security_key_and_use_it_as_the_second_step(page: Page, demo):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    cdp, authenticator = virtual_authenticator(page, SECURITY_KEY)

    # The demo tenant offers second factors out of the box.
    assert idp_cli(demo, "policy", "show", "demo")["mode"] == "optional"
    # Alice signs in with her password and adds a passkey on the IdP's account page.
    sign_in(page, demo)
    expect(summary(page, "Methods (amr)")).to_have_text("pwd")
    page.goto(demo.issuer + "/account")
    expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()
    page.get_by_role("link", name="Add a security key").click()
    expect(page).to_have_url(under(demo.issuer + "/account/add/webauthn"))
    page.get_by_label("Name this passkey or security key").fill("Test laptop")
    page.get_by_role("button", name="Register").click()

    expect(page).to_have_url(under(demo.issuer + "/account"))
    expect(page.get_by_role("status").filter(has_text="Passkey or security key added.")).to_be_visible()
    row = page.locator('tr[data-factor="webauthn"]')
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Test laptop")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and not credentials[0]["isResidentCredential"], credentials
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


def test_create_a_passkey_and_sign_in_with_it_alone(page: Page, demo):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    cdp, authenticator = virtual_authenticator(page, VIRTUAL_AUTHENTICATOR)
    # Nothing in the authenticator yet: the sign-in page waits, offering both ways.
    open_login(page, demo)
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    expect(page.locator("#email")).to_have_attribute("autocomplete", "username webauthn")
    screens.keep(page, "login")
    submit_login(page, ALICE, demo.passwords[ALICE])
    expect(page).to_have_url(under(demo.portal_url))

    # Alice creates a passkey on her account page and names it.
    page.goto(demo.issuer + "/account")
    page.get_by_role("link", name="Create a passkey").click()
    expect(page.get_by_role("heading", name="Create a passkey")).to_be_visible()
    screens.keep(page, "create")
    page.get_by_label("Name this passkey").fill("Alice's laptop")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("status").filter(has_text="added.")).to_be_visible()
    row = page.locator('tr[data-factor="webauthn"]')
    expect(row).to_contain_text("Alice's laptop")
    expect(row).to_contain_text("Passkey: signs you in by itself")
    screens.keep(page, "account")
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"], credentials

    # Signed out, she comes back: the browser offers her passkey in the email field's autofill
    # (Chromium's virtual authenticator answers such a request at once) and she is in,
    # without typing anything. The portal's ID token: two kinds of factor, phishing-resistant.
    sign_out(page, demo)
    page.goto(demo.portal_url + "/")
    page.get_by_role("link", name="Sign in with idp").click()
    expect(page).to_have_url(under(demo.portal_url))
    expect(page.get_by_role("heading", name=f"Signed in as {ALICE}")).to_be_visible()
    expect(summary(page, "Methods (amr)")).to_have_text("hwk, user, mfa")
    expect(summary(page, "Level (acr)")).to_have_text("phr")
    screens.keep(page, "portal")

    # In a browser without autofill for passkeys, the button does the same.
    sign_out(page, demo)
    page.add_init_script("window.PublicKeyCredential && "
                         "(PublicKeyCredential.isConditionalMediationAvailable = "
                         "() => Promise.resolve(false));")
    open_login(page, demo)
    expect(page.locator("#email")).to_be_visible()
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page).to_have_url(under(demo.portal_url))
    expect(summary(page, "Methods (amr)")).to_have_text("hwk, user, mfa")
    expect(summary(page, "Level (acr)")).to_have_text("phr")

    # A passkey that did not verify its user (no PIN, fingerprint or face) is one factor: for
    # an account outside the second-step policy, the sign-in ends there and says so.
    sign_out(page, demo)
    idp_cli(demo, "user", "mfa", "demo", ALICE, "exempt")
    try:
        # Chromium itself never offers a passkey without verifying its user (it refuses to
        # list them on a key that cannot): what sends one is a client that skips it, played
        # here by asking the authenticator to "discourage" verification.
        page.add_init_script("""(() => {
          const get = navigator.credentials.get.bind(navigator.credentials);
          navigator.credentials.get = (options) => {
            if (options && options.publicKey) options.publicKey.userVerification = "discouraged";
            return get(options);
          };
        })();""")
        open_login(page, demo)
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect(page).to_have_url(under(demo.portal_url))
        expect(summary(page, "Methods (amr)")).to_have_text("hwk")
        expect(summary(page, "Level (acr)")).to_have_text("pwd")
    finally:
        idp_cli(demo, "user", "mfa", "demo", ALICE, "default")

    # Where the second step is asked of her, it sends her to her password, saying why.
    sign_out(page, demo)
    open_login(page, demo)
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.locator("#login-error")).to_contain_text("counts as one step")
    expect(page.locator("#email")).to_have_value(ALICE)
    screens.keep(page, "one-step")
    page.locator("#password").fill(demo.passwords[ALICE])
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(under(demo.issuer + "/login/verify"))
    page.get_by_role("button", name="Use passkey or security key").click()
    expect(page).to_have_url(under(demo.portal_url))
    expect(summary(page, "Level (acr)")).to_have_text("phr")

    remove_methods(page, demo)
    assert not [e for e in console_errors if "Content Security Policy" in e], console_errors
