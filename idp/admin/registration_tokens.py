"""Initial access tokens (RFC 7591 3): what an administrator hands a portal's developers so
they may register their portals themselves at ``{issuer}/register``. Created with a name, an
optional expiry and an optional number of registrations; the token is returned once and
stored only as a hash (``idp.hashing``); listed without it; revoked. Every change is audited.
The console, the admin API and the command line all call these functions; using a token is
``idp.oidc.registration``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import audit, hashing
from idp.directory import DirectoryError, NotFound
from idp.models import RegistrationToken, Tenant

PURPOSE = "registration-token"  # the hash's purpose tag (hashing.digest)
MAX_DAYS = 3650
MAX_USES = 1_000_000
MAX_NAME = 200


@dataclass(frozen=True)
class IssuedToken:
    row: RegistrationToken
    token: str  # shown once, never stored


def _utc(moment: datetime | None) -> datetime | None:
    """Aware UTC, as the database keeps every time (a naive time is taken as UTC)."""
    if moment is not None:
        moment = (moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None
                  else moment.astimezone(timezone.utc))
    return moment


def state(row: RegistrationToken, now: datetime | None = None) -> str:
    """"active", "revoked", "expired" or "used up": whether it still registers a client."""
    now = _utc(now) or datetime.now(timezone.utc)
    if row.revoked_at is not None:
        return "revoked"
    if row.expires_at is not None and row.expires_at <= now:
        return "expired"
    if row.uses_left is not None and row.uses_left <= 0:
        return "used up"
    return "active"


def create(db: Session, tenant: Tenant, actor: str, name: str, *,
           expires_in_days: int | None = None, expires_at: datetime | None = None,
           uses: int | None = None) -> IssuedToken:
    """A new initial access token; ``expires_in_days`` or ``expires_at`` (not both, none: it
    never expires), ``uses`` (None: any number of registrations)."""
    name = (name or "").strip()
    if not name:
        raise DirectoryError(_("a registration token needs a name (who it is for)"))
    if len(name) > MAX_NAME:
        raise DirectoryError(_("a registration token's name is at most %(num)d characters",
                               num=MAX_NAME))
    if expires_in_days is not None and expires_at is not None:
        raise DirectoryError(_("give the expiry either in days or as a date, not both"))
    now = datetime.now(timezone.utc)
    if expires_in_days is not None:
        if not 1 <= expires_in_days <= MAX_DAYS:
            raise DirectoryError(_("a registration token expires within 1 to %(num)d days",
                                   num=MAX_DAYS))
        expires_at = now + timedelta(days=expires_in_days)
    expires_at = _utc(expires_at)
    if expires_at is not None and expires_at <= now:
        raise DirectoryError(_("the expiry must be in the future"))
    if uses is not None and not 1 <= uses <= MAX_USES:
        raise DirectoryError(_("the number of registrations must be between 1 and %(num)d",
                               num=MAX_USES))
    token = hashing.new_secret()
    row = RegistrationToken(tenant_id=tenant.id, token_hash=hashing.digest(PURPOSE, token),
                            name=name, created_by=actor, expires_at=expires_at, uses_left=uses)
    db.add(row)
    db.flush()
    audit.record(db, tenant.id, "registration_token.created", actor=actor, token_id=row.public_id,
                 name=name, expires_at=expires_at.isoformat() if expires_at else None, uses=uses)
    return IssuedToken(row, token)


def listed(db: Session, tenant: Tenant, limit: int = 1000) -> list[RegistrationToken]:
    """The tenant's tokens, newest first (the token itself is never kept)."""
    return list(db.scalars(select(RegistrationToken)
                           .where(RegistrationToken.tenant_id == tenant.id)
                           .order_by(RegistrationToken.created_at.desc(),
                                     RegistrationToken.id.desc()).limit(limit)))


def find(db: Session, tenant: Tenant, token_id: str) -> RegistrationToken:
    row = db.scalar(select(RegistrationToken).where(
        RegistrationToken.tenant_id == tenant.id,
        RegistrationToken.public_id == str(token_id or "")[:64]))
    if row is None:
        raise NotFound(_("no registration token %(id)s in this organisation", id=repr(token_id)))
    return row


def revoke(db: Session, tenant: Tenant, token_id: str, actor: str) -> RegistrationToken:
    """The token registers nothing more from now on; clients it registered stay (an admin
    deletes those as any portal). Revoking a revoked token changes nothing."""
    row = find(db, tenant, token_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(timezone.utc)
        db.flush()
        audit.record(db, tenant.id, "registration_token.revoked", actor=actor,
                     token_id=row.public_id, name=row.name)
    return row


def as_dict(row: RegistrationToken) -> dict:
    """What the CLI and the API show of a token (never the token)."""
    return {"id": row.public_id, "name": row.name, "created_by": row.created_by,
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "uses_left": row.uses_left,
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
            "state": state(row)}
