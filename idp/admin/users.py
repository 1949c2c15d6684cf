"""What admins do to people: groups, a user's two-step verification (enforce, exempt, reset),
unlocking, and one-time sign-in links. Each records an audit event; callers commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import audit, directory, password_policy, tenant_policy, user_status
from idp.config import Settings
from idp.admin.sign_in_policy import policy_row
from idp.directory import AlreadyExists, DirectoryError, NotFound, _group, find_user
from idp.guard import Guard, account_key
from idp.journey import login_links as tokens
from idp.journey import remembered
from idp.models import Authenticator, Group, LoginToken, Tenant, User, user_groups
from idp import hashing
from idp.notify import outbox
from idp.policy import AdminState, Mode


def create_group(db: Session, tenant: Tenant, name: str, actor: str, *,
                 external_id: str | None = None) -> Group:
    """A new group; ``external_id``: a provisioning client's own id for it (SCIM)."""
    if not isinstance(name, str) or len(name.strip()) > 200:
        raise DirectoryError(_("a group name is text of at most 200 characters"))
    if db.scalar(select(Group.id).where(Group.tenant_id == tenant.id, Group.name == name.strip())):
        raise AlreadyExists(_("group %(name)s already exists", name=repr(name)))
    if external_id is not None and (not isinstance(external_id, str) or len(external_id) > 255):
        raise DirectoryError("an external id is text of at most 255 characters")
    group = _group(db, tenant, name)
    group.external_id = external_id or None
    audit.record(db, tenant.id, "group.created", actor=actor, group=group.name)
    return group


class PasswordRefused(DirectoryError):
    """The password chosen for a new account breaks the tenant's password rules."""


def create_user(db: Session, settings: Settings, passwords, tenant: Tenant, email: str,
                password: str, actor: str, *, name: str = "", role: str = "member",
                phone: str | None = None, groups: list[str] = ()) -> User:
    """An active account with a password chosen for it (the command line, the admin API):
    the password is asked of ``password_policy`` as any new password is, then
    ``directory.create_user``. (An invitation lets the person choose their own instead.)"""
    refused = password_policy.problem(
        password, email=email, tenant=tenant, pwned_url=settings.pwned_passwords_url,
        min_length=tenant_policy.account_settings(db, tenant).password_min_length)
    if refused:
        raise PasswordRefused(f"password refused: {refused}")
    directory.check_role(db, tenant, role)
    return directory.create_user(db, passwords, tenant, email, password, name=name, role=role,
                                 phone=phone, groups=groups, actor=actor)


def set_groups(db: Session, tenant: Tenant, email: str, groups: list[str], actor: str) -> User:
    """Put the user in exactly ``groups`` (each existing), each change audited as the
    console's. (Names and the address are ``provisioning.update_user``'s; a role is
    ``set_role``'s, with its rules.)"""
    user = _user(db, tenant, email)
    wanted = list(dict.fromkeys(n.strip() for n in groups))
    found = {g.name: g for g in db.scalars(select(Group).where(
        Group.tenant_id == tenant.id, Group.name.in_(wanted)))} if wanted else {}
    missing = [n for n in wanted if n not in found]
    if missing:
        raise NotFound(_("no group %(name)s in %(tenant)s", name=repr(missing[0]), tenant=tenant.slug))
    have = {g.name for g in user.groups}
    for group_name in wanted:
        if group_name not in have:
            add_to_group(db, tenant, group_name, user.email, actor)
    for group_name in sorted(have - set(wanted)):
        remove_from_group(db, tenant, group_name, user.email, actor)
    return user


def forget_browsers(db: Session, tenant: Tenant, email: str, actor: str) -> int:
    """Forget every browser remembered for the user's second step: each asks for it again."""
    user = _user(db, tenant, email)
    return remembered.forget_all(db, tenant.id, user.id, actor, "admin")


def add_to_group(db: Session, tenant: Tenant, name: str, email: str, actor: str) -> User:
    group = db.scalar(select(Group).where(Group.tenant_id == tenant.id, Group.name == name))
    if group is None:
        raise NotFound(_("no group %(name)s in %(tenant)s", name=repr(name), tenant=tenant.slug))
    user = _user(db, tenant, email)
    if group not in user.groups:
        user.groups.append(group)
    audit.record(db, tenant.id, "group.member_added", actor=actor, user_id=user.id, group=name)
    return user


def remove_from_group(db: Session, tenant: Tenant, name: str, email: str, actor: str) -> User:
    user = _user(db, tenant, email)
    user.groups = [g for g in user.groups if g.name != name]
    audit.record(db, tenant.id, "group.member_removed", actor=actor, user_id=user.id, group=name)
    return user


def _user(db: Session, tenant: Tenant, email: str) -> User:
    user = find_user(db, tenant, email)
    if user is None:
        raise NotFound(_("no user %(email)s in %(tenant)s", email=email, tenant=tenant.slug))
    return user


def set_user_mfa(db: Session, tenant: Tenant, email: str, action: str, actor: str) -> User:
    """enforce (the user cannot turn it off), exempt, or reset (factors removed; set up again)."""
    user = _user(db, tenant, email)
    if action in ("enforce", "reset") and policy_row(db, tenant).mode == Mode.DISABLED.value:
        raise DirectoryError("Two-factor authentication is not available: the organisation has it "
                             "disabled (idp policy set SLUG --mode optional|required)")
    if action == "enforce":
        user.mfa_admin_state = AdminState.ENFORCED.value
    elif action == "exempt":
        user.mfa_admin_state = AdminState.EXEMPT.value
    elif action == "default":
        user.mfa_admin_state = AdminState.DEFAULT.value
    elif action == "reset":
        removed = db.execute(delete(Authenticator).where(Authenticator.user_id == user.id)).rowcount
        # A browser remembered a second step that is gone: it stands in for nothing now.
        remembered.forget_all(db, tenant.id, user.id, actor, "factors reset")
        user.mfa_must_reenroll = True
        user.mfa_skips_used = 0
        audit.record(db, tenant.id, "mfa.reset", actor=actor, user_id=user.id, removed=removed)
        return user
    else:
        raise DirectoryError("the action must be enforce, exempt, default or reset")
    audit.record(db, tenant.id, f"mfa.{action}", actor=actor, user_id=user.id)
    return user


def unlock(db: Session, guard: Guard, tenant: Tenant, email: str, actor: str) -> User:
    """End a lock now (and forget the failures that led to it)."""
    user = _user(db, tenant, email)
    key = account_key(tenant.id, user.id, user.email)
    was = guard.failures(key)
    guard.clear(key)
    audit.record(db, tenant.id, "account.unlocked", actor=actor, user_id=user.id, failures=was)
    return user


@dataclass(frozen=True)
class IssuedLoginToken:
    url: str
    expires_at: datetime
    # An administrator's link works once the mail telling them about it has left.
    waits_for_mail: bool = False


class PrivilegedLinkRefused(DirectoryError):
    """The tenant's policy does not allow sign-in links for the user's role (an administrator)."""

    def __init__(self, tenant: Tenant, user: User):
        super().__init__(f"sign-in links for administrators are off in {tenant.slug}, and "
                         f"{user.email} is an administrator")


def create_login_token(db: Session, tenant: Tenant, email: str, base_url: str, actor: str,
                       ttl_minutes: int = 15, *, settings: Settings) -> IssuedLoginToken:
    """A one-time sign-in link for ``email``; its owner is mailed who created it and when
    (through the outbox, with the link's row). For an administrator the tenant must allow such
    links, and the link works only once that mail has left (``login_links.owner_told``)."""
    if not 1 <= ttl_minutes <= 7 * 24 * 60:
        raise DirectoryError("a login token lives from 1 minute to 7 days")
    user = _user(db, tenant, email)
    if not user_status.may_sign_in(user.status):
        raise DirectoryError(f"{user.email} is {user.status}: a sign-in link would not work")
    if not tokens.allowed_for(db, tenant, user):
        raise PrivilegedLinkRefused(tenant, user)
    now = datetime.now(timezone.utc)
    expires = now + timedelta(minutes=ttl_minutes)
    who = "an operator of this service, from the command line" if actor == "cli" else actor
    notice = outbox.mail(db, settings, tenant, user.email, "login_link_created", locale=user.locale,
                         name=user.name or user.email, email=user.email, who=who,
                         at=now, until=expires)
    token = secrets.token_urlsafe(32)
    db.add(LoginToken(tenant_id=tenant.id, user_id=user.id, token_hash=hashing.digest("login-token", token),
                      created_by=actor, expires_at=expires, notice_id=notice.id))
    audit.record(db, tenant.id, "login_token.created", actor=actor, user_id=user.id,
                 ttl_minutes=ttl_minutes, role=user.role)
    return IssuedLoginToken(f"{base_url}/t/{tenant.slug}/login/token/{token}", expires,
                            waits_for_mail=tokens.privileged(user) and notice.state == "pending")
