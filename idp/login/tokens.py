"""Admin-issued login tokens: one-time sign-in links, kept only as hashes.

A token is spent by one atomic UPDATE ... WHERE used_at IS NULL AND not expired, so it signs in
once, however many requests race for it. Opening the link (GET) spends nothing: mail scanners
fetch links, so the user confirms with a button (POST).
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.models import LoginToken, Tenant
from idp.oidc import hashing

AMR = "login_token"  # not in RFC 8176; the README documents it


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
