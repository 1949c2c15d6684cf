"""Passkeys and security keys through the hosted pages, with the software authenticator
(tests/support/soft_authenticator.py) answering as the browser's would."""

from __future__ import annotations

import json

from tests.support.account import answer_challenge, start_enrollment, submit_enrollment
from tests.support.journey import Browser, Page
from tests.support.soft_authenticator import SoftAuthenticator, options_from


def enroll(browser: Browser, world, soft: SoftAuthenticator, name: str | None = None) -> str:
    """Add a passkey on the account page of a signed-in browser; returns its credential id."""
    page = start_enrollment(browser, world, "webauthn")
    credential = soft.create(options_from(page.text))
    fields = {"credential": json.dumps(credential)} | ({"name": name} if name is not None else {})
    done = submit_enrollment(browser, world, "webauthn", page, **fields)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account"), done.text[:800]
    return credential["id"]


def answer(browser: Browser, world, page: Page, assertion: dict | str) -> Page:
    """Post an authenticator's assertion (or a raw string, as an attacker could) at sign-in."""
    value = assertion if isinstance(assertion, str) else json.dumps(assertion)
    return answer_challenge(browser, world, page, "webauthn", credential=value)
