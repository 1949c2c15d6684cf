"""Remember this device: a browser that passed the second step may skip the tenant's policy's
second step for the tenant's ``remember_days``.

What a remembered browser may stand in for is ``policy.decide``'s to say (the tenant's policy
only, never a level the relying party asks for nor a re-authentication); this module owns the
devices themselves:

- **issue**: a random 32-byte secret in the browser's ``idp_remember`` cookie (HttpOnly,
  SameSite=Lax, Secure when the issuer is https, scoped to the tenant's path, Max-Age the
  tenant's days); the server keeps only its SHA-256 (``hashing.digest``), with the user, the
  tenant, a description of the browser from its User-Agent and the expiry. One cookie per
  tenant: a second person remembering in the same browser replaces the first one's.
- **find**: the cookie's device, only if it is *this* tenant's and *this* user's, not expired,
  and younger than the tenant's current ``remember_days`` (a tenant that shortens the period
  shortens it for the browsers remembered already). Anything else — a forged cookie, another
  user's, another tenant's — is no device.
- **list, revoke, forget all**: the account page and the console; every device of a user ends
  when their password changes, an admin resets their factors, or they are deactivated
  (``session.end_everything``); deleting the user deletes them (the database cascades).

Each change is audited. Nothing here decides whether a second step is needed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Response, request
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp import audit, devices, hashing
from idp.models import RememberedDevice, User
from idp.models.base import utcnow
from idp.web import settings, tenant_path

COOKIE = "idp_remember"
PURPOSE = "remembered-device"
USER_AGENT_KEPT = 512  # characters of the User-Agent header described
MAX_DAYS = 365  # the longest a tenant may remember a browser


@dataclass(frozen=True)
class Issued:
    """A device just remembered: the secret for the browser's cookie, and for how long."""

    device_id: int
    token: str
    days: int


def _token_hash(token: str) -> str:
    return hashing.digest(PURPOSE, token)


def _presented() -> str | None:
    """The secret this browser presents, if it looks like one of ours."""
    token = request.cookies.get(COOKIE, "")
    return token if 32 <= len(token) <= 64 else None


def issue(db: Session, tenant_id: int, user: User, days: int) -> Issued:
    """Remember this browser for ``user`` for ``days``."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    device = RememberedDevice(tenant_id=tenant_id, user_id=user.id, token_hash=_token_hash(token),
                              description=describe(request.headers.get("User-Agent", "")),
                              created_at=now, expires_at=now + timedelta(days=days))
    db.add(device)
    db.flush()
    audit.record(db, tenant_id, "user.browser_remembered", user_id=user.id, actor=user.email,
                 browser=device.description, days=days, device_id=device.id)
    return Issued(device.id, token, days)


def describe(user_agent: str) -> str:
    """The browser in words ("Firefox 133 on Windows 10"), never the raw header."""
    return str(devices.describe(user_agent[:USER_AGENT_KEPT]))


def _live(tenant_id: int, days: int, now: datetime):
    """The rows of this tenant that still count: not expired, and remembered within ``days``
    (the tenant's period now, which may be shorter than when they were remembered)."""
    return ((RememberedDevice.tenant_id == tenant_id) & (RememberedDevice.expires_at > now)
            & (RememberedDevice.created_at > now - timedelta(days=days)))


def find(db: Session, tenant_id: int, user_id: int, days: int) -> RememberedDevice | None:
    """The remembered device this browser presents, if it is a live one of ``user_id`` in this
    tenant; None for no cookie, a forged one, another user's or tenant's, an expired one, or
    when the tenant remembers no browsers (``days`` 0)."""
    token = _presented()
    if token is None or days <= 0:
        return None
    now = utcnow()
    return db.scalar(select(RememberedDevice).where(
        RememberedDevice.token_hash == _token_hash(token), RememberedDevice.user_id == user_id,
        _live(tenant_id, days, now)))


def still_remembered(db: Session, tenant_id: int, user_id: int, device_id: int,
                     days: int) -> bool:
    """Is device ``device_id`` (the one a session's sign-in stood on) still a live one of
    ``user_id``: not forgotten, not expired, within the tenant's ``days``?"""
    if days <= 0:
        return False
    return db.scalar(select(RememberedDevice.id).where(
        RememberedDevice.id == device_id, RememberedDevice.user_id == user_id,
        _live(tenant_id, days, utcnow()))) is not None


def used(db: Session, tenant_id: int, user: User, device_id: int) -> None:
    """The device stood in for the second step of a sign-in now: its last use is recorded."""
    device = db.get(RememberedDevice, device_id)
    if device is None or device.user_id != user.id or device.tenant_id != tenant_id:
        return  # forgotten meanwhile: the sign-in was decided with it a moment ago
    device.last_used_at = utcnow()
    audit.record(db, tenant_id, "user.remembered_browser_used", user_id=user.id,
                 actor=user.email, browser=device.description, device_id=device.id)


def of_user(db: Session, tenant_id: int, user_id: int) -> list[RememberedDevice]:
    """The user's remembered browsers that have not expired, the latest first. (The tenant's
    current period is applied at sign-in; the list shows each one's own expiry.)"""
    return list(db.scalars(select(RememberedDevice).where(
        RememberedDevice.tenant_id == tenant_id, RememberedDevice.user_id == user_id,
        RememberedDevice.expires_at > utcnow())
        .order_by(RememberedDevice.created_at.desc(), RememberedDevice.id.desc())))


def this_browser(devices: list[RememberedDevice]) -> int | None:
    """Of ``devices``, the id of the one this browser holds, if any."""
    token = _presented()
    if token is None:
        return None
    digest = _token_hash(token)
    return next((d.id for d in devices if secrets.compare_digest(d.token_hash, digest)), None)


def revoke(db: Session, tenant_id: int, user: User, device_id, actor: str) -> RememberedDevice | None:
    """Forget one of ``user``'s remembered browsers (by its owner, or by an admin of the
    tenant: the caller checks who may); None when the user has no such device here."""
    if not isinstance(device_id, int):
        return None
    device = db.get(RememberedDevice, device_id)
    if device is None or device.user_id != user.id or device.tenant_id != tenant_id:
        return None
    db.delete(device)
    audit.record(db, tenant_id, "user.remembered_browser_forgotten", user_id=user.id,
                 actor=actor, browser=device.description, device_id=device.id,
                 by="user" if actor == user.email else "admin")
    return device


def forget_all(db: Session, tenant_id: int, user_id: int, actor: str, why: str) -> int:
    """Forget every remembered browser of the user: how many. Audited when there were any
    (``why``: "user", "admin", "password", "factors reset", "deactivated", ...)."""
    gone = db.execute(delete(RememberedDevice).where(RememberedDevice.user_id == user_id)
                      .execution_options(synchronize_session=False)).rowcount
    if gone:
        audit.record(db, tenant_id, "user.remembered_browsers_forgotten", user_id=user_id,
                     actor=actor, why=why, browsers=gone)
    return gone


def set_cookie(response: Response, issued: Issued) -> Response:
    """Send the browser the secret of the device just remembered."""
    response.set_cookie(COOKIE, issued.token, max_age=issued.days * 24 * 3600,
                        path=tenant_path(), secure=settings().secure_cookies, httponly=True,
                        samesite="Lax")
    return response
