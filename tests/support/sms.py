"""Text messages as a user reads them: a valid mobile number of its own for each test (the
outbox is shared by all tenants), the codes sent to it (the outbox rows ``idp outbox`` lists),
and a number set up on the account page with the code it was sent."""

from __future__ import annotations

import re
import secrets

import phonenumbers
from sqlalchemy import select

from idp import db
from idp.mfa.sms import pretty, wait_key
from idp.models import OutboxMessage, Tenant, User
from tests.support.account import password_sign_in, start_enrollment, submit_enrollment
from tests.support.journey import Browser

CODE = re.compile(r"sign-in code is (\d{6})\.")


def new_mobile(prefix: str = "+336", digits: int = 8) -> str:
    while True:
        number = prefix + "".join(secrets.choice("0123456789") for _ in range(digits))
        parsed = phonenumbers.parse(number, None)
        if (phonenumbers.is_valid_number(parsed)
                and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE):
            return number


def texts(app, phone: str) -> list[OutboxMessage]:
    """The text messages sent to ``phone``, newest first."""
    with app.app_context():
        rows = db.session().scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "sms", OutboxMessage.recipient == phone)
            .order_by(OutboxMessage.id.desc())).all()
        db.session().expunge_all()  # readable after the context's session is gone
        return rows


def latest_code(app, phone: str) -> str:
    return CODE.search(texts(app, phone)[0].body).group(1)


def alice(app, world) -> User:
    """The world's alice, readable after the app context is gone."""
    with app.app_context():
        user = db.session().scalar(select(User).join(Tenant, User.tenant_id == Tenant.id).where(
            Tenant.slug == world.slug, User.email == world.alice.lower()))
        db.session().expunge_all()
        return user


def thirty_seconds_later(app, world) -> None:
    """The resend wait is over (its marker expires after 30 s)."""
    subject = alice(app, world).subject
    app.extensions["idp.store"].delete(wait_key(subject, "enroll"), wait_key(subject, "signin"))


def enroll_number(browser: Browser, world, typed: str):
    """The number page, then the number: returns the code page."""
    page = start_enrollment(browser, world, "sms")
    return submit_enrollment(browser, world, "sms", page, phone=typed)


def enroll_sms(app, browser: Browser, world, phone: str) -> None:
    """A password sign-in, then a number confirmed with the texted code; the wait ends."""
    password_sign_in(browser, world)
    code_page = enroll_number(browser, world, pretty(phone))
    assert code_page.status == 200, code_page.text[:800]
    done = submit_enrollment(browser, world, "sms", code_page, code=latest_code(app, phone))
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account"), done.text[:800]
    thirty_seconds_later(app, world)
