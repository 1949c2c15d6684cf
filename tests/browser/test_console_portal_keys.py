"""An administrator registers portals on the console's register form in Chromium, at 1280 and
360 px: one that proves itself with a private key (private_key_jwt) and gets only DPoP-bound
tokens — a pasted private key is refused with the reason, the public keys are kept, no secret
is shown, and the portal then gets tokens by signing with its key and proving it holds its
DPoP key — and one that must push and sign its sign-in requests (FAPI 2.0)."""

from __future__ import annotations

import json
import re
import time
import uuid

import requests
from joserfc import jwt
from joserfc.jwk import ECKey
from playwright.sync_api import Page, expect

from tests.support.browser_console import to_console
from tests.support.dpop import Holder
from tests.support.screens import look_at


def wrong_in(found: dict) -> list[str]:
    return [f"{name} at {device}: {problem}" for name, devices in found.items()
            for device, problems in devices.items() for problem in problems]


def test_an_admin_registers_a_portal_with_its_public_keys(page: Page, live_world):
    world, base = live_world, live_world.issuer
    key = ECKey.generate_key("P-256", parameters={"kid": "payroll-2026"})
    found = {}
    to_console(page, base, "/admin/portals", world.admin, world.password)
    page.locator("#portal-name").fill("Payroll batch")
    page.locator("#portal-redirect-uris").fill("")
    page.locator("#grant-authorization_code").uncheck()
    page.locator("#grant-refresh_token").uncheck()
    page.locator("#grant-client_credentials").check()
    page.get_by_label(re.compile("A private key it keeps")).check()
    page.get_by_label("Tokens only for the portal's own key (DPoP)").check()
    page.get_by_label("Its public keys (a JWKS, pasted)").fill(
        json.dumps({"keys": [key.as_dict(private=True)]}))
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_contain_text("private part")
    # Said under the field it is about, and read out with it.
    jwks_field = page.get_by_label("Its public keys (a JWKS, pasted)")
    expect(page.locator("#portal-jwks + .error")).to_contain_text("private part")
    expect(jwks_field).to_have_accessible_description(re.compile("private part"))
    found["refused"] = look_at(page, "console-portal-key-refused")

    page.get_by_label("Its public keys (a JWKS, pasted)").fill(
        json.dumps({"keys": [key.as_dict(private=False)]}, indent=2))
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("is registered")).to_be_visible()
    expect(page.locator("#portal-type")).to_contain_text("private_key_jwt")
    expect(page.locator("#portal-keys")).to_contain_text("payroll-2026")
    expect(page.locator("#client-secret")).to_have_count(0)
    expect(page.get_by_role("button", name="Rotate the secret")).to_have_count(0)
    expect(page.get_by_role("heading", name="Removal", exact=True)).to_be_visible()
    expect(page.get_by_label("Tokens only for the portal's own key (DPoP)")).to_be_checked()
    found["registered"] = look_at(page, "console-portal-with-keys")

    client_id = page.locator("#client-id").inner_text()
    now = int(time.time())

    def token(proof: str | None):
        signed = jwt.encode({"alg": "ES256", "kid": "payroll-2026"},
                            {"iss": client_id, "sub": client_id, "aud": f"{base}/token",
                             "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}, key)
        return requests.post(f"{base}/token", timeout=10, headers={"DPoP": proof} if proof else {},
                             data={"grant_type": "client_credentials", "client_assertion": signed,
                                   "client_assertion_type":
                                       "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})

    refused = token(None)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dpop_proof"
    bound = token(Holder().proof("POST", f"{base}/token"))
    assert bound.status_code == 200 and bound.json()["token_type"] == "DPoP", bound.text

    wrong = wrong_in(found)
    assert not wrong, "\n".join(wrong)


def test_an_admin_registers_a_portal_that_must_push_and_sign_its_sign_in_requests(
        page: Page, live_world):
    world, base = live_world, live_world.issuer
    found = {}
    to_console(page, base, "/admin/portals", world.admin, world.password)
    page.locator("#portal-name").fill("Bank of Lisbon — customer portal")
    page.locator("#portal-redirect-uris").fill("https://bank.example.com/cb")
    par = re.compile("send each sign-in request to us directly")
    signed = re.compile("sign each sign-in request with its own key")
    page.get_by_label("Tokens only for the portal's own key (DPoP)").check()
    page.get_by_label(par).check()
    page.get_by_label(signed).check()
    page.get_by_label("Signature algorithm of its sign-in requests").select_option("PS256")
    found["filled"] = look_at(page, "console-portal-register-fapi")
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text("is registered")).to_be_visible()

    # The portal's own page shows what was chosen on the register form.
    for box in ("Tokens only for the portal's own key (DPoP)", par, signed):
        expect(page.get_by_label(box)).to_be_checked()
    expect(page.get_by_label("Signature algorithm of its sign-in requests")).to_have_value("PS256")
    found["registered"] = look_at(page, "console-portal-fapi")
    wrong = wrong_in(found)
    assert not wrong, "\n".join(wrong)
