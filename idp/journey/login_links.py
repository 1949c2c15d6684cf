"""Admin-issued login tokens: one-time sign-in links, kept only as hashes.

A token is spent by one atomic UPDATE ... WHERE used_at IS NULL AND not expired, so it signs in
once, however many requests race for it. Opening the link (GET) spends nothing: mail scanners
fetch links, so the user confirms with a button (POST).

A link for a privileged account (an administrator) signs its holder in to the tenant's console,
so it exists only where the tenant's policy allows it (``admin_login_links``, off by default):
``allowed_for`` is asked when a link is created and again when it is used, since the user may
have become an administrator, or the setting changed, in between.

The owner of a link is mailed who made it (never the link). Mail leaves through the outbox,
after the request, so an administrator's link works only once that mail has left
(``owner_told``): the owner is the one who can tell a takeover from a rescue, and a link must
not be usable while mail is down and nobody knows of it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.models import LoginToken, OutboxMessage, Tenant, TenantPolicyRow, User
from idp import hashing, roles

AMR = "login_token"  # not in RFC 8176; the README documents it


def privileged(user: User) -> bool:
    """Whether the user can act on other people's accounts (``idp.roles.privileged``: an
    administrator, a two-factor administrator)."""
    return roles.privileged(user.role)


def allowed_for(db: Session, tenant: Tenant, user: User) -> bool:
    """Whether a sign-in link may exist for ``user`` under the tenant's policy now."""
    if not privileged(user):
        return True
    policy = db.get(TenantPolicyRow, tenant.id)
    return policy is not None and policy.admin_login_links


def owner_told(db: Session, row: LoginToken) -> bool:
    """Whether the link's owner has been mailed about it, as far as an administrator's link
    must wait for (a member's link never waits). Links made before the outbox kept no notice."""
    if row.notice_id is None or not privileged(row.user):
        return True
    state = db.scalar(select(OutboxMessage.state).where(OutboxMessage.id == row.notice_id))
    return state in ("sent", "kept")


def _digest(token: str) -> str | None:
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        return None
    return hashing.digest("login-token", token)


def peek(db: Session, tenant: Tenant, token: str) -> LoginToken | None:
    """The unspent, unexpired token, without spending it."""
    digest = _digest(token)
    if digest is None:
        return None
    row = db.scalar(select(LoginToken).where(LoginToken.token_hash == digest,
                                             LoginToken.tenant_id == tenant.id))
    if row is None or row.used_at is not None or row.expires_at <= datetime.now(timezone.utc):
        return None
    return row


def spend(db: Session, tenant: Tenant, token: str) -> int | None:
    """The user id the token signs in, once; None when unknown, used or expired."""
    digest = _digest(token)
    if digest is None:
        return None
    now = datetime.now(timezone.utc)
    return db.execute(
        update(LoginToken)
        .where(LoginToken.token_hash == digest, LoginToken.tenant_id == tenant.id,
               LoginToken.used_at.is_(None), LoginToken.expires_at > now)
        .values(used_at=now)
        .returning(LoginToken.user_id)
    ).scalar_one_or_none()
