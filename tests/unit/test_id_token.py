"""What an ID token says of the sign-in comes from the code's getters (``IssuedCode``), as
Authlib's ``OpenIDCode`` reads them: the getters are the seam, not a second read of the row."""

from __future__ import annotations

from types import SimpleNamespace

from idp.oidc.grants.authorization_code import IssuedCode
from idp.oidc.id_token import OpenIDExtension


def code(**row) -> IssuedCode:
    fields = {"nonce": "n-0S6", "auth_time": 1_800_000_000, "acr": "mfa", "amr": ["pwd", "otp"],
              "sid": "sid-1"}
    return IssuedCode(SimpleNamespace(**(fields | row)))


def test_the_sign_in_reaches_the_id_token_through_the_getters():
    claims = OpenIDExtension().get_authorization_code_claims(code())
    assert claims == {"nonce": "n-0S6", "auth_time": 1_800_000_000, "acr": "mfa",
                      "amr": ["pwd", "otp"], "sid": "sid-1"}


def test_a_getter_overridden_is_what_the_token_says():
    class Pinned(IssuedCode):
        def get_acr(self):
            return "phr"

    issued = Pinned(code().row)
    assert OpenIDExtension().get_authorization_code_claims(issued)["acr"] == "phr"


def test_no_nonce_and_no_session_id_leave_those_claims_out():
    claims = OpenIDExtension().get_authorization_code_claims(code(nonce=None, sid=None))
    assert "nonce" not in claims and "sid" not in claims and claims["acr"] == "mfa"
