"""An account's life as admins change it: sign out everywhere, deactivate, reactivate, delete,
and a change of role. The console and the command line both call these; each is audited with
its actor; callers commit.

- **Deactivate**: the account signs in by no path (``idp.user_status``), and what it holds
  ends in the same request: every SSO session (in the store), every access and refresh token
  (revoked), every code not yet redeemed and sign-in link not yet used (spent), every mailed
  link (voided), every remembered browser (forgotten). Factors, groups and the password stay, for a reactivation.
- **Reactivate**: it signs in again, as it was (what ended stays ended).
- **Delete**: the user and everything they own go (the database cascades each of their rows:
  factors and backup codes, tokens, codes, links, upstream identities, group memberships);
  the audit trail stays, and its ``user.deleted`` event keeps the address.

Two rules keep a tenant manageable: nobody does these to themselves (the console's admin is
the actor; the command line's, ``cli``, is nobody), and a tenant keeps an active
administrator: the last one cannot be deactivated, deleted or given another role. Changes are
serialised per tenant (``_hold_tenant``), so two admins removing each other at once cannot
both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from idp import account_links, audit, directory, roles, user_status
from idp.directory import DirectoryError, NotFound
from idp.guard import account_key
from idp.journey import remembered
from idp.journey import session as sso
from idp.oidc.issue import revoke_sessions
from idp.models import AuthorizationCode, LoginToken, Tenant, User
from idp.models.base import utcnow


class NotOnYourself(DirectoryError):
    """An admin asked to deactivate, delete or change the role of their own account."""


class LastAdministrator(DirectoryError):
    """The change would leave the tenant without an active administrator."""


@dataclass(frozen=True)
class Ended:
    """What a sign-out everywhere ended: ``sessions`` is None when the sessions live in a store
    this process cannot reach (the command line without ``IDP_REDIS_URL``): they end at their
    next use instead, when they find the account deactivated or gone."""

    sessions: int | None
    tokens: int


def _user(db: Session, tenant: Tenant, email: str) -> User:
    user = directory.find_user(db, tenant, email)
    if user is None:
        raise NotFound(f"no user {email} in {tenant.slug}")
    return user


def _not_yourself(user: User, actor: str, what: str) -> None:
    if actor == user.email:
        raise NotOnYourself(f"you cannot {what} your own account; ask another administrator")


def _hold_tenant(db: Session, tenant: Tenant) -> None:
    """Hold the tenant's row until the caller commits: the next change of a role or status in
    this tenant waits, then reads what this one wrote (a write that changes nothing, a row lock
    on PostgreSQL and the database's write lock on SQLite, as ``directory.lock_user``)."""
    db.execute(update(Tenant).where(Tenant.id == tenant.id).values(slug=Tenant.slug)
               .execution_options(synchronize_session=False))


def _keep_an_administrator(db: Session, tenant: Tenant, user: User, what: str) -> None:
    """LastAdministrator if ``user`` is the tenant's only active administrator."""
    if user.role != roles.ADMIN or user.status != user_status.ACTIVE:
        return
    others = db.scalar(select(func.count()).select_from(User).where(
        User.tenant_id == tenant.id, User.role == roles.ADMIN,
        User.status == user_status.ACTIVE, User.id != user.id))
    if not others:
        raise LastAdministrator(f"{user.email} is the last active administrator of "
                                f"{tenant.slug}: make someone else an administrator before you "
                                f"{what} them")


def end_sessions_and_tokens(db: Session, store, user: User) -> Ended:
    """Sign ``user`` out of every browser and revoke their tokens (``store``: the one the
    sessions live in, or None when it cannot be reached from here)."""
    return Ended(*sso.end_everything(db, user.id, store))


def sign_out_everywhere(db: Session, store, tenant: Tenant, email: str, actor: str) -> Ended:
    """Every session and token of the user ends, and every browser remembered for them is
    forgotten: an admin signing someone out of a lost laptop means its second step too."""
    user = _user(db, tenant, email)
    ended = end_sessions_and_tokens(db, store, user)
    remembered.forget_all(db, tenant.id, user.id, actor, "signed out everywhere")
    audit.record(db, tenant.id, "user.signed_out_everywhere", actor=actor, user_id=user.id,
                 sessions=ended.sessions, tokens=ended.tokens)
    return ended


def end_session(db: Session, tenant: Tenant, email: str, public_id: str, actor: str) -> bool:
    """End one of the user's sessions, named by its public id, and the tokens issued under it
    (as the user's own "sign out that browser"); False when they have no such session."""
    user = _user(db, tenant, email)
    ended = sso.end_other(tenant.id, user.id, public_id)
    if ended is None:
        return False
    tokens = revoke_sessions(tenant.id, user.id, under=[ended.sid, *ended.public_ids])
    audit.record(db, tenant.id, "user.session_ended", actor=actor, user_id=user.id,
                 tokens=tokens)
    return True


def deactivate(db: Session, store, tenant: Tenant, email: str, actor: str) -> tuple[User, Ended]:
    """The account stops signing in now; what it holds ends in this request."""
    user = _user(db, tenant, email)
    _not_yourself(user, actor, "deactivate")
    _hold_tenant(db, tenant)
    db.refresh(user)  # as the last writer left it
    if user.status == user_status.DEACTIVATED:
        raise DirectoryError(f"{user.email} is already deactivated")
    _keep_an_administrator(db, tenant, user, "deactivate")
    was = user.status
    user.status = user_status.DEACTIVATED
    user.updated_at = utcnow()
    db.flush()
    ended = end_sessions_and_tokens(db, store, user)
    now = utcnow()
    codes = db.execute(
        update(AuthorizationCode).where(AuthorizationCode.user_id == user.id,
                                        AuthorizationCode.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    links = db.execute(
        update(LoginToken).where(LoginToken.user_id == user.id, LoginToken.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False)).rowcount
    links += account_links.void(db, user)
    remembered.forget_all(db, tenant.id, user.id, actor, "deactivated")
    audit.record(db, tenant.id, "user.deactivated", actor=actor, user_id=user.id, was=was,
                 sessions=ended.sessions, tokens=ended.tokens, codes=codes, links=links)
    return user, ended


def reactivate(db: Session, tenant: Tenant, email: str, actor: str) -> User:
    """A deactivated account signs in again, with its factors and groups as they were."""
    user = _user(db, tenant, email)
    _hold_tenant(db, tenant)
    db.refresh(user)
    if user.status != user_status.DEACTIVATED:
        raise DirectoryError(f"{user.email} is not deactivated")
    user.status = user_status.ACTIVE
    user.updated_at = utcnow()
    audit.record(db, tenant.id, "user.reactivated", actor=actor, user_id=user.id)
    return user


def delete_user(db: Session, store, tenant: Tenant, email: str, actor: str) -> dict:
    """Remove the user and everything they own; what was removed, as the audit event says."""
    user = _user(db, tenant, email)
    _not_yourself(user, actor, "delete")
    _hold_tenant(db, tenant)
    db.refresh(user)
    _keep_an_administrator(db, tenant, user, "delete")
    ended = end_sessions_and_tokens(db, store, user)
    if store is not None:  # its failed attempts: the id may be given to someone else (SQLite)
        store.delete(account_key(tenant.id, user.id, user.email))
    gone = {"email": user.email, "subject": user.subject, "role": user.role,
            "status": user.status, "sessions": ended.sessions, "tokens": ended.tokens}
    # The deletion sets every event's user_id about them to NULL: this one names them by
    # address in its data (the audit log's user filter finds it by that address).
    audit.record(db, tenant.id, "user.deleted", actor=actor, **gone)
    db.flush()
    db.execute(delete(User).where(User.id == user.id).execution_options(synchronize_session=False))
    db.expunge(user)
    return gone


def set_role(db: Session, tenant: Tenant, email: str, role: str, actor: str) -> User:
    user = _user(db, tenant, email)
    _not_yourself(user, actor, "change the role of")
    directory.check_role(db, tenant, role)
    _hold_tenant(db, tenant)
    db.refresh(user)
    if user.role == role:
        return user
    if role != roles.ADMIN:
        _keep_an_administrator(db, tenant, user, "change the role of")
    was, user.role = user.role, role
    audit.record(db, tenant.id, "user.role_changed", actor=actor, user_id=user.id,
                 role=role, was=was)
    return user
