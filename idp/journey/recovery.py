"""A forgotten password: a single-use link mailed to the account's address, then a new password,
then the rest of the sign-in as the policy wants it.

- **Asking** (``request_reset``) gives the same answer, and does the same work, whether or not
  the address has an account: for one without (or whose account cannot sign in), a decoy link
  and a ``dropped`` mail are written in place of the real ones. Requests are counted per address
  and per client address by the guard: past ``CAPTCHA_AFTER`` in an hour a CAPTCHA, past
  ``LIMIT`` nothing more for an hour (the same answer for every address).
- **The link** is good once, for the tenant's ``reset_link_minutes``, and only while it is the
  newest (``idp.account_links``). Opening it spends nothing; the new password, checked by the
  password policy first, spends it.
- **A new password** (``set_password``: also for a change on the account page and an accepted
  invitation) voids open reset links, ends every SSO session and refresh token of the user,
  and mails them "your password was changed". Failed attempts stay counted (a lock for wrong
  codes outlives a reset).
- **Never a bypass**: a reset proves the mailbox, nothing more. The sign-in goes on from the
  password step (``signin.with_new_password``): the policy asks for the second factor as it
  would after a password, and the portal that was waiting gets its code only then.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import current_app, g, request, url_for
from flask_babel import gettext as _

from idp import (account_links, audit, db, directory, password_policy, store, tenant_policy,
                 web)
from idp.addresses import normalise_email
from idp.guard import CaptchaNeeded, Limits, Locked
from idp.journey import passkeys
from idp.journey import remembered
from idp.journey import session as sso
from idp.mfa import flow
from idp.models import User
from idp.notify import outbox

CAPTCHA_AFTER = 3  # requests for one address in an hour, before a CAPTCHA is asked
LIMIT = 5  # requests for one address in an hour
NETWORK_LIMIT = 20  # requests to one tenant from one client address in an hour
# Requests to one tenant in an hour, from everywhere, before every further one needs a CAPTCHA
# (a flood from many networks fills the outbox with decoys and real mailboxes with links).
TENANT_CAPTCHA_AFTER = 200


def settings_of(tenant) -> tenant_policy.AccountSettings:
    """The tenant's account settings (the per-worker snapshot of its policy row: the sign-in page
    asks whether to offer the link, and must not pay a statement for it)."""
    return tenant_policy.account_settings(db.session(), tenant)


# -- asking for a link ------------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    """The one answer: a link went to the address if it has an account."""

    email: str


@dataclass(frozen=True)
class TooMany:
    until: float


@dataclass(frozen=True)
class CaptchaFirst:
    widget: dict | None


def _guards():
    guard = current_app.extensions["idp.guard"]
    per_address = guard.with_limits(Limits(captcha_after=CAPTCHA_AFTER, lock_after=LIMIT,
                                           lock_seconds=3600))
    per_network = guard.with_limits(Limits(captcha_after=NETWORK_LIMIT + 1,
                                           lock_after=NETWORK_LIMIT, lock_seconds=3600))
    return per_address, per_network


def _address_key(email: str) -> str:
    # By the address, never the account: the count says nothing of whether one exists.
    return f"reset:{g.tenant.id}:{hashlib.sha256(email.encode()).hexdigest()[:32]}"


def network() -> str:
    """The client's network: its IPv4 address, or its IPv6 /64 (one subscriber's prefix, which
    hands out more addresses than anyone can count)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return str(request.remote_addr)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def captcha_needed(email: str) -> bool:
    per_address, _ = _guards()
    return per_address.needs_captcha(_address_key(normalise_email(email)))


def request_reset(email: str, captcha_solved) -> Sent | TooMany | CaptchaFirst:
    """Mail a reset link to ``email`` if it is an account that may sign in; the same answer,
    after the same work, either way."""
    email = normalise_email(email)[:320]
    per_address, per_network = _guards()
    key = _address_key(email)
    captcha_solved = functools.cache(captcha_solved)  # asked by two counts, accepted once
    tenant_wide = current_app.extensions["idp.guard"].with_limits(
        Limits(captcha_after=TENANT_CAPTCHA_AFTER, lock_after=10**9, lock_seconds=3600))
    try:
        tenant_wide.reserve(f"reset:{g.tenant.id}:all", captcha_solved)
    except CaptchaNeeded:
        return CaptchaFirst(flow.captcha_widget(key, needed=True))
    try:
        per_address.reserve(key, captcha_solved,
                            also=(per_network, f"reset:{g.tenant.id}:net:{network()}"))
    except Locked as locked:
        return TooMany(locked.until)
    except CaptchaNeeded:
        return CaptchaFirst(flow.captcha_widget(key, needed=True))
    session = db.session()
    user = directory.find_user(session, g.tenant, email)
    # An account without a password (signed in through its organisation's provider, or
    # invited and not yet in) gets none by mail: the mailbox would become a way around the
    # provider and its second factor. One whose owner removed its password (a passkey is
    # their way in) does, whatever it still holds: a lost passkey must not be the end of it
    # (the policy still asks for the second step after the new password).
    real = user is not None and user.status == "active" and passkeys.signs_in_here(user)
    minutes = settings_of(g.tenant).reset_link_minutes
    token = account_links.issue(session, g.tenant, user if real else None, "reset",
                                lifetime=timedelta(minutes=minutes), actor=email)
    # From the configured address, never the request's Host header (which the asker chooses).
    link = web.settings().base_url + url_for("recovery.reset", tenant=g.tenant.slug, token=token)
    outbox.mail(session, current_app.config["IDP"], g.tenant, email, "reset", deliver=real,
                name=(user.name or user.email) if real else email, link=link, minutes=minutes)
    audit.record(session, g.tenant.id, "user.password_reset_requested",
                 user_id=user.id if real else None, actor=email, known=real)
    return Sent(email)


# -- following the link -----------------------------------------------------------------------

def link_user(token: str) -> User | None:
    """The user whose good reset link this is (nothing spent), else None."""
    link = account_links.peek(db.session(), g.tenant, "reset", token)
    if link is None:
        return None
    user = db.session().get(User, link.user_id)
    return user if user is not None and user.status == "active" else None


def spend(token: str) -> User | None:
    """Spend the link (once, however many requests race); its user, else None."""
    user_id = account_links.spend(db.session(), g.tenant, "reset", token)
    user = db.session().get(User, user_id) if user_id else None
    return user if user is not None and user.status == "active" else None


# -- a new password ---------------------------------------------------------------------------

def password_problem(user: User, password: str, again: str) -> str | None:
    """What is wrong with ``password`` as ``user``'s new one, in words for them (the password
    policy: ``idp.password_policy``); None if nothing."""
    if password != again:
        return _("The two passwords are not the same.")
    return password_policy.problem(
        password, min_length=settings_of(g.tenant).password_min_length, email=user.email,
        tenant=g.tenant, pwned_url=current_app.config["IDP"].pwned_passwords_url)


def set_password(user: User, password: str, *, why: str, actor: str | None = None,
                 end_sessions: bool = True) -> None:
    """``user``'s password becomes ``password`` (checked by the policy already): open reset
    links are void, every session and refresh token ends (``end_sessions`` False: the caller
    ends all but its own), every remembered browser is forgotten (it remembered a sign-in
    with the old password), and the user is told by mail. ``why``: "reset", "change" or
    "invitation" (audited)."""
    session = db.session()
    user.password_hash = current_app.extensions["idp.passwords"].hash(password)
    user.password_changed_at = datetime.now(timezone.utc)
    user.password_removed_at = None
    account_links.void(session, user, purposes=("reset",))
    # Failed attempts stay counted: they include wrong second-factor codes, and a reset must
    # not buy a fresh set of guesses (a full sign-in clears them, as always).
    sessions, tokens = (sso.end_everything(session, user.id, store.get()) if end_sessions
                        else (None, None))
    remembered.forget_all(session, g.tenant.id, user.id, actor or user.email, f"password {why}")
    audit.record(session, g.tenant.id, "user.password_set", user_id=user.id,
                 actor=actor or user.email, why=why, sessions_ended=sessions,
                 tokens_revoked=tokens)
    if why == "invitation":
        return  # the invitee chose it a moment ago: no mail to say so
    outbox.mail(session, current_app.config["IDP"], g.tenant, user.email, "password_changed",
                locale=user.locale,
                name=user.name or user.email, email=user.email, why=why,
                at=user.password_changed_at)
