"""When an account locks: the audit event and the lockout mail, once per lock.

The mail says when the lock ends and what to do, never what was typed; with the tenant's
``lock_email_admins`` its admins (and two-factor admins) get a copy. A mail that cannot be sent never changes the
answer the person at the keyboard gets (the lock stands either way).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import audit, notify, roles, user_status
from idp.models import Tenant, TenantPolicyRow, User

log = logging.getLogger(__name__)


def account_locked(db: Session, tenant: Tenant, user: User | None, tried_as: str, until: float,
                   cause: str) -> None:
    audit.record(db, tenant.id, "account.locked", user_id=user.id if user else None,
                 actor=tried_as[:320], until=int(until), cause=cause)
    if user is None:
        return  # no mailbox behind an unknown address; the same page was shown all the same
    ends = datetime.fromtimestamp(until, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    subject = f"Your {tenant.name} account is locked until {ends}"
    text = (
        f"Hello {user.name or user.email},\n\n"
        f"There were too many failed attempts to sign in to your {tenant.name} account "
        f"({user.email}), so it is locked until {ends}. After that you can sign in again.\n\n"
        "If these attempts were yours, wait until then, or ask your administrator to unlock "
        "the account. If they were not yours, someone may know your password: change it once "
        "you are signed in, and tell your administrator.\n"
    )
    recipients = [user.email]
    policy = db.get(TenantPolicyRow, tenant.id)
    if policy is not None and policy.lock_email_admins:
        # Whoever can unlock it: administrators and two-factor administrators still active.
        admins = db.scalars(select(User.email).where(
            User.tenant_id == tenant.id, User.role.in_(sorted(roles.CONSOLE)),
            User.status == user_status.ACTIVE, User.id != user.id))
        recipients += list(admins)
    sender = notify.mail_sender(current_app.config["IDP"], db)
    for to in recipients:
        try:
            sender.send(to, subject, text if to == user.email else
                        f"(A copy for the administrators of {tenant.name}.)\n\n" + text)
        except notify.SendError as e:
            log.error("lockout mail to a user of %s not sent: %s", tenant.slug, e)
