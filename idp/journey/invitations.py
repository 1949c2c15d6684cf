"""Accepting an invitation (``idp.admin.invitations``): the invitee's link, a password chosen
through the policy, and the sign-in goes on from there, so the tenant's MFA policy (a forced
setup where it requires one) meets them at once. Opening the link spends nothing."""

from __future__ import annotations

from flask import g

from idp import account_links, audit, db
from idp.journey import recovery, verification
from idp.models import User


def invited_user(token: str) -> User | None:
    """The user of a good invitation link, still invited (nothing spent), else None."""
    link = account_links.peek(db.session(), g.tenant, "invite", token)
    user = db.session().get(User, link.user_id) if link is not None else None
    return user if user is not None and user.status == "invited" else None


def accept(token: str, password: str) -> User | None:
    """Spend the link and make the account active with ``password`` (checked by the policy
    already); its user, else None (used, revoked, expired, replaced)."""
    user_id = account_links.spend(db.session(), g.tenant, "invite", token)
    user = db.session().get(User, user_id) if user_id else None
    if user is None or user.status != "invited":
        return None
    user.status = "active"
    verification.mark_verified(user, "invitation")  # the link reached the mailbox
    recovery.set_password(user, password, why="invitation", end_sessions=False)
    audit.record(db.session(), g.tenant.id, "user.invitation_accepted", user_id=user.id,
                 actor=user.email)
    return user
