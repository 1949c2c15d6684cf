"""Single-use links mailed to a user: reset a forgotten password, accept an invitation, verify an
address. Only a hash of each link's secret is kept (``AccountLink``).

A link is good once, until it expires, and only while it is the user's newest link of its
purpose: issuing one voids the older ones, and so does a password change (``void``). It is
spent by one UPDATE ... WHERE unspent, so two requests racing with the same link cannot both
use it. Opening a link (GET) spends nothing: mail scanners fetch links, so the page asks for
the new password, or a button, before ``spend``.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp import hashing
from idp.models import AccountLink, Tenant, User

PURPOSES = ("reset", "invite", "verify")
# How long a link of each purpose is good for, by default (a reset's is the tenant's setting).
LIFETIMES = {"reset": timedelta(minutes=30), "invite": timedelta(days=7),
             "verify": timedelta(days=2)}


def _digest(purpose: str, token: str) -> str | None:
    if not isinstance(token, str) or not 20 <= len(token) <= 128:
        return None
    return hashing.digest(f"account-link:{purpose}", token)


def issue(db: Session, tenant: Tenant, user: User | None, purpose: str, *,
          lifetime: timedelta | None = None, actor: str = "") -> str:
    """A new link's secret (to put in the mail, never anywhere else); older links of the same
    purpose for this user stop working. ``user`` None: a decoy for an address with no account,
    the same statements and the same work, good for nothing."""
    assert purpose in PURPOSES
    void(db, user, purposes=(purpose,))
    token = hashing.new_secret()
    now = datetime.now(timezone.utc)
    db.add(AccountLink(tenant_id=tenant.id, user_id=user.id if user else None, purpose=purpose,
                       token_hash=_digest(purpose, token), created_by=actor[:320],
                       created_at=now, expires_at=now + (lifetime or LIFETIMES[purpose])))
    db.flush()
    return token


def void(db: Session, user: User | None, purposes: tuple[str, ...] = PURPOSES) -> int:
    """End the user's open links of ``purposes`` (a newer link, a password change, a revoke);
    how many were open."""
    now = datetime.now(timezone.utc)
    return db.execute(
        update(AccountLink)
        .where(AccountLink.user_id == (user.id if user else 0), AccountLink.purpose.in_(purposes),
               AccountLink.used_at.is_(None), AccountLink.voided_at.is_(None))
        .values(voided_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount


def peek(db: Session, tenant: Tenant, purpose: str, token: str) -> AccountLink | None:
    """The link, when it is still good, without spending it."""
    digest = _digest(purpose, token)
    if digest is None:
        return None
    link = db.scalar(select(AccountLink).where(
        AccountLink.token_hash == digest, AccountLink.tenant_id == tenant.id,
        AccountLink.purpose == purpose))
    if link is None or link.user_id is None or not good(link):
        return None
    return link


def good(link: AccountLink) -> bool:
    return (link.used_at is None and link.voided_at is None
            and link.expires_at > datetime.now(timezone.utc))


def spend(db: Session, tenant: Tenant, purpose: str, token: str) -> int | None:
    """The user id of the link, once: None when unknown, used, voided or expired."""
    digest = _digest(purpose, token)
    if digest is None:
        return None
    now = datetime.now(timezone.utc)
    return db.execute(
        update(AccountLink)
        .where(AccountLink.token_hash == digest, AccountLink.tenant_id == tenant.id,
               AccountLink.purpose == purpose, AccountLink.user_id.is_not(None),
               AccountLink.used_at.is_(None), AccountLink.voided_at.is_(None),
               AccountLink.expires_at > now)
        .values(used_at=now)
        .returning(AccountLink.user_id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()


def pending(db: Session, user: User, purpose: str) -> AccountLink | None:
    """The user's open link of ``purpose`` (an invitation waiting, say), if any."""
    link = db.scalar(select(AccountLink).where(
        AccountLink.user_id == user.id, AccountLink.purpose == purpose,
        AccountLink.used_at.is_(None), AccountLink.voided_at.is_(None))
        .order_by(AccountLink.id.desc()).limit(1))
    return link if link is not None and good(link) else None
