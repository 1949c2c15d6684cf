"""Invitations: an admin adds a user by mail (address, name, role, groups). The account exists
at once, as ``invited``, without a password; the invitee's link (good for ``LIFETIME``, once,
the newest only) lets them choose a password through the policy, which verifies the address,
and then meets the tenant's MFA policy like any sign-in (``idp.journey.invitations``).

Until accepted, an invited account signs in by no path: it has no password, a reset by mail
answers it with a decoy, and its link is the only way in. Resending makes a new link (the old
one stops working); revoking voids it and removes the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import account_links, audit, directory, roles, user_status
from idp.addresses import normalise_email
from idp.config import Settings
from idp.directory import AlreadyExists, DirectoryError, NotFound
from idp.models import Tenant, User
from idp.notify import outbox

LIFETIME = timedelta(days=7)


@dataclass(frozen=True)
class Invited:
    user: User
    expires_at: datetime  # of the link, which is mailed and shown to no one else
    again: bool  # a resend (the account was invited already)


def invite(db: Session, settings: Settings, tenant: Tenant, email: str, actor: str, *,
           name: str = "", role: str = "member", groups: list[str] = ()) -> Invited:
    """Invite ``email`` (or invite again, with a new link, someone invited already)."""
    email = normalise_email(email)
    if not directory.EMAIL.fullmatch(email) or len(email) > 320:
        raise DirectoryError(_("%(email)s is not an email address", email=repr(email)))
    if role not in roles.ROLES:
        raise DirectoryError(f"role must be one of {', '.join(roles.ROLES)}")
    directory.check_role(db, tenant, role)  # a role the tenant's policy allows, as elsewhere
    user = directory.find_user(db, tenant, email)
    again = user is not None
    if user is not None and user.status != user_status.INVITED:
        raise AlreadyExists(_("%(email)s already has an account in %(tenant)s", email=email,
                              tenant=tenant.slug))
    if user is None:
        user = User(tenant_id=tenant.id, email=email, name=(name or email.split("@")[0])[:200],
                    role=role, password_hash=None, status=user_status.INVITED)
        for group_name in groups:
            user.groups.append(directory._group(db, tenant, group_name))
        db.add(user)
        db.flush()
    token = account_links.issue(db, tenant, user, "invite", lifetime=LIFETIME, actor=actor)
    link = account_links.pending(db, user, "invite")
    url = f"{settings.base_url}/t/{tenant.slug}/login/invitation/{token}"
    who = "an operator of this service" if actor == "cli" else actor
    # In the invitee's language when they have one (invited again), else the page's.
    outbox.mail(db, settings, tenant, email, "invite", locale=user.locale,
                name=user.name or email, email=email, who=who, link=url, days=LIFETIME.days)
    audit.record(db, tenant.id, "user.invited", actor=actor, user_id=user.id, role=user.role,
                 groups=[g.name for g in user.groups], again=again)
    return Invited(user, link.expires_at, again)


def never_in(user: User) -> bool:
    """Whether ``user`` never had a way in of their own: no password, now or removed, and an
    address nobody proved (an account a provisioning client made inactive, or one deactivated
    before its invitation was accepted)."""
    return (user.password_hash is None and user.password_removed_at is None
            and not user.email_verified)


def invite_again(db: Session, settings: Settings, tenant: Tenant, email: str,
                 actor: str) -> Invited:
    """An active account that was never in (``never_in``) waits for its invitation again, and
    gets a new link: without one it could sign in by no path of its own (a reset link is
    never mailed to an account without a password)."""
    user = directory.find_user(db, tenant, normalise_email(email))
    if user is None or user.status != user_status.ACTIVE or not never_in(user):
        raise DirectoryError(f"{email} is not an active account that was never signed in to")
    user.status = user_status.INVITED
    return invite(db, settings, tenant, user.email, actor, name=user.name, role=user.role)


def revoke(db: Session, tenant: Tenant, email: str, actor: str) -> None:
    """Withdraw the invitation of ``email``: its link stops working and the account, which was
    never used, is removed."""
    user = directory.find_user(db, tenant, normalise_email(email))
    if user is None or user.status != user_status.INVITED:
        raise NotFound(f"{email} has no invitation waiting in {tenant.slug}")
    account_links.void(db, user, purposes=("invite",))
    audit.record(db, tenant.id, "user.invitation_revoked", actor=actor, user_id=None,
                 email=user.email)
    db.delete(user)
    db.flush()
