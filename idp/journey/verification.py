"""A verified address: ``User.email_verified`` becomes true only when its owner follows a link
mailed to it (or accepts an invitation, or resets the password by mail: each proves the
mailbox). The ID token's ``email_verified`` says so.

A tenant may require it (``require_verified_email``): then no code is issued to a portal for a
user whose address is not verified (``needed_before_code``). The sign-in stops on a page that
says so; a link is mailed (again only once the last one is ``RESEND_AFTER`` old), and once it
is followed in the same browser the authorization that was waiting goes on.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app, g, url_for

from idp import account_links, audit, db, tenant_policy, user_status, web
from idp.models import User
from idp.notify import outbox

RESUME_COOKIE = "idp_verify_resume"  # the authorization waiting in this browser
LIFETIME = timedelta(days=2)
RESEND_AFTER = timedelta(minutes=5)


def required(tenant) -> bool:
    return tenant_policy.account_settings(db.session(), tenant).require_verified_email


def needed_before_code(user: User) -> bool:
    """Whether the tenant holds back codes for ``user`` until the address is verified."""
    return not user.email_verified and required(g.tenant)


def send_link(user: User, actor: str | None = None) -> bool:
    """Mail a verification link to ``user``, unless one went out less than ``RESEND_AFTER``
    ago (a page opened again must not flood the mailbox); whether one was sent."""
    if user.email_verified:
        return False
    session = db.session()
    last = account_links.pending(session, user, "verify")
    if last is not None and last.created_at > datetime.now(timezone.utc) - RESEND_AFTER:
        return False
    token = account_links.issue(session, g.tenant, user, "verify", lifetime=LIFETIME,
                                actor=actor or user.email)
    outbox.mail(session, current_app.config["IDP"], g.tenant, user.email, "verify",
                locale=user.locale,
                name=user.name or user.email, email=user.email, days=LIFETIME.days,
                link=web.settings().base_url + url_for("recovery.verify_email",
                                                       tenant=g.tenant.slug, token=token))
    audit.record(session, g.tenant.id, "user.verification_sent", user_id=user.id,
                 actor=actor or user.email)
    return True


def link_user(token: str) -> User | None:
    link = account_links.peek(db.session(), g.tenant, "verify", token)
    return db.session().get(User, link.user_id) if link is not None else None


def confirm(token: str) -> User | None:
    """Spend the link and mark the address verified; its user, else None (used, expired,
    replaced by a newer one)."""
    user_id = account_links.spend(db.session(), g.tenant, "verify", token)
    user = db.session().get(User, user_id) if user_id else None
    if user is None:
        return None
    mark_verified(user, "link")
    return user


def mark_verified(user: User, how: str) -> None:
    """``user``'s address is proved (``how``: link, reset, invitation)."""
    if user.status == user_status.UNVERIFIED:  # signed itself up: the address was all it lacked
        user.status = user_status.ACTIVE
    if user.email_verified:
        return
    user.email_verified = True
    account_links.void(db.session(), user, purposes=("verify",))
    audit.record(db.session(), g.tenant.id, "user.email_verified", user_id=user.id,
                 actor=user.email, how=how)
