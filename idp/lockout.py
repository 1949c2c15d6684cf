"""When an account locks: the audit event and the lockout mail, once per lock.

The mail says when the lock ends and what to do, never what was typed; with the tenant's
``lock_email_admins`` its admins (and two-factor admins) get a copy. A mail that cannot be
sent never changes the answer the person at the keyboard gets (the lock stands either way): it
is written to the outbox with the lock's audit event, and sent after the request.

Each reads it in their own language (``User.locale``): the user, without one, in the page's;
an admin, without one, in English, never in the language of the browser that failed to sign
in (whoever typed may not be the user).
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import audit, i18n, roles, user_status
from idp.models import Tenant, TenantPolicyRow, User
from idp.notify import outbox


def account_locked(db: Session, tenant: Tenant, user: User | None, tried_as: str, until: float,
                   cause: str) -> None:
    audit.record(db, tenant.id, "account.locked", user_id=user.id if user else None,
                 actor=tried_as[:320], until=int(until), cause=cause)
    if user is None:
        return  # no mailbox behind an unknown address; the same page was shown all the same
    ends = datetime.fromtimestamp(until, timezone.utc)  # written in the mail's language
    recipients = [(user.email, user.locale)]
    policy = db.get(TenantPolicyRow, tenant.id)
    if policy is not None and policy.lock_email_admins:
        # Whoever can unlock it: administrators and two-factor administrators still active.
        admins = db.execute(select(User.email, User.locale).where(
            User.tenant_id == tenant.id, User.role.in_(sorted(roles.CONSOLE)),
            User.status == user_status.ACTIVE, User.id != user.id))
        recipients += [(email, locale or i18n.SOURCE) for email, locale in admins]
    settings = current_app.config["IDP"]
    for to, locale in recipients:
        outbox.mail(db, settings, tenant, to, "lockout", locale=locale,
                    name=user.name or user.email, email=user.email, ends=ends,
                    copy=to != user.email)
