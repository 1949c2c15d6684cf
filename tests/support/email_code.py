"""Codes by email as a user reads them: the mails a real SMTP server (``tests.support.mailbox``)
received from the outbox's sender, and the factor set up on the account page with the code
mailed there."""

from __future__ import annotations

import re
import time

from idp.mfa.email_code import CODES
from tests.support.account import password_sign_in, start_enrollment, submit_enrollment
from tests.support.journey import Browser
from tests.support.mailbox import Mail, Mailbox, tenant_mail

CODE = re.compile(r"^ {4}(\d{6})\r?$", re.MULTILINE)  # the code stands alone, indented


def code_mails(box: Mailbox, world, address: str | None = None) -> list[Mail]:
    """The code mails to ``address`` (alice by default) from ``world``'s tenant, oldest first."""
    return [m for m in tenant_mail(box, world, address or world.alice)
            if re.search(r" (setup|sign-in) code$", m.subject)]


def nth_code(box: Mailbox, world, n: int, address: str | None = None,
             within: float = 15.0) -> str:
    """The code of the ``n``-th code mail (from 1) once it arrived: mail leaves after the
    request, from the outbox's sender. Fails when it does not arrive ``within`` seconds (a
    deadline, not a measurement)."""
    deadline = time.monotonic() + within
    while len(found := code_mails(box, world, address)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"code mail {n} never arrived; got {[m.subject for m in found]}")
        time.sleep(0.02)
    return CODE.search(found[n - 1].text).group(1)


def resend_wait_over(app, subject: str) -> None:
    """The 30 seconds before a resend have passed (their markers expire then)."""
    app.extensions["idp.store"].delete(CODES.wait_key(subject, "enroll"),
                                       CODES.wait_key(subject, "signin"))


def enroll_email(app, browser: Browser, world, box: Mailbox, subject: str) -> str:
    """A password sign-in, then codes by email set up on the account page with the mailed
    code (the first code mail of the test); the resend wait ends. Returns the code used."""
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "email")
    code_page = submit_enrollment(browser, world, "email", page)
    assert code_page.status == 200, code_page.text[:800]
    code = nth_code(box, world, 1)
    done = submit_enrollment(browser, world, "email", code_page, code=code)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account"), done.text[:800]
    resend_wait_over(app, subject)
    return code
