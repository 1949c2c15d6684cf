"""People signing themselves up, where the tenant allows it (``self_registration``, off by
default): a CAPTCHA, the tenant's list of email domains (if any), the password policy, and a
verification mail before the account can sign in (status ``unverified`` until its link is
followed, ``idp.journey.verification``). Following that link asks for the password chosen at
sign-up too: an address signed up by someone else (who chose the password) must not become
their account because its owner pressed "confirm" in a mail they did not expect.

The answer is the same whether or not the address has an account, after the same work (the
password is hashed either way): a new address gets its account and a verification link; one
with an account gets a mail saying so ("you already have an account: sign in, or reset your
password"), or, when it signed up and never verified, a new verification link. Sign-ups are
counted per client network by the guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g
from flask_babel import gettext as _

from idp import audit, db, directory, password_policy, roles, tenant_policy, user_status, web
from idp.addresses import normalise_email
from idp.guard import CaptchaNeeded, Limits, Locked
from idp.journey import recovery, verification
from idp.models import User
from idp.notify import outbox

NETWORK_LIMIT = 10  # sign-ups to one tenant from one client network in an hour


@dataclass(frozen=True)
class CheckYourMail:
    email: str


@dataclass(frozen=True)
class Refused:
    message: str  # in words for the person on the page
    status: int = 400
    field: str | None = None  # the form field it is about, which gets the focus


def domain_allowed(email: str) -> bool:
    domains = tenant_policy.account_settings(db.session(), g.tenant).registration_domains
    return not domains or email.rpartition("@")[2] in domains


def sign_up(name: str, email: str, password: str, again: str, captcha_solved) -> CheckYourMail | Refused:
    email = normalise_email(email)[:320]
    if not directory.EMAIL.fullmatch(email):
        return Refused(_("Enter your email address."), field="email")
    if not domain_allowed(email):
        return Refused(_("Accounts here are for addresses of this organisation's own domains. "
                         "Use your work address, or ask your administrator to invite you."),
                       field="email")
    if password != again:
        return Refused(_("The two passwords are not the same."), field="confirm")
    refused = password_policy.problem(
        password, min_length=recovery.settings_of(g.tenant).password_min_length, email=email,
        tenant=g.tenant, pwned_url=current_app.config["IDP"].pwned_passwords_url)
    if refused:
        return Refused(refused, field="password")
    guard = current_app.extensions["idp.guard"].with_limits(
        Limits(captcha_after=0, lock_after=NETWORK_LIMIT, lock_seconds=3600))
    try:
        # Every sign-up needs a solved CAPTCHA (past 0 attempts), and a network only so many.
        guard.reserve(f"signup:{g.tenant.id}:net:{recovery.network()}", captcha_solved)
    except CaptchaNeeded:
        return Refused(_("Complete the check below to continue."))
    except Locked:
        return Refused(_("Too many sign-ups from your network within the hour. Try again later."),
                       429)
    session = db.session()
    password_hash = current_app.extensions["idp.passwords"].hash(password)  # the same work either way
    user = directory.find_user(session, g.tenant, email)
    if user is None:
        user = User(tenant_id=g.tenant.id, email=email, name=(name or email.split("@")[0])[:200],
                    role=roles.MEMBER, password_hash=password_hash,
                    status=user_status.UNVERIFIED)
        session.add(user)
        session.flush()
        audit.record(session, g.tenant.id, "user.signed_up", user_id=user.id, actor=email)
        verification.send_link(user)
    elif user.status == user_status.UNVERIFIED:
        # A new link, and nothing else: the password stays the first sign-up's (a second one
        # must not replace it, or whoever knew of a sign-up could set its password).
        audit.record(session, g.tenant.id, "user.signed_up", user_id=user.id, actor=email,
                     again=True)
        verification.send_link(user)
    else:
        audit.record(session, g.tenant.id, "user.sign_up_for_existing_account", user_id=user.id,
                     actor=email)
        outbox.mail(session, current_app.config["IDP"], g.tenant, email, "signup_exists",
                    name=user.name or email, email=email,
                    link=web.settings().base_url + f"/t/{g.tenant.slug}/login")
    return CheckYourMail(email)
