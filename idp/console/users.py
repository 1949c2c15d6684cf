"""The users list: one page of a tenant's users with each one's MFA state, in a fixed number
of queries whatever the page size (users, their factors, their locks) — fast at 100,000 users
(benchmarks/console_users.py)."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from idp import mfa
from idp.addresses import normalise_email
from idp.guard import Guard, account_key
from idp.models import Authenticator, User

PAGE_SIZE = 50


@dataclass(frozen=True)
class Shield:
    """What the shield icon says about a user's MFA."""

    state: str  # "off" | "exempt" | "enforced" | "enrolled" | "locked"
    label: str
    factors: tuple[str, ...]


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    role: str
    shield: Shield


def shield_for(user: User, types: tuple[str, ...], locked: bool) -> Shield:
    labels = tuple(mfa.get(t).label for t in types if mfa.get(t))
    if locked:
        return Shield("locked", "Locked after failed attempts", types)
    if types:
        return Shield("enrolled", "On: " + ", ".join(labels), types)
    if user.mfa_admin_state == "enforced" or user.mfa_must_reenroll:
        return Shield("enforced", "Enforced, not set up yet", types)
    if user.mfa_admin_state == "exempt":
        return Shield("exempt", "Off (exempted by an admin)", types)
    return Shield("off", "Off", types)


def _containing(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page(db: Session, store: Redis, guard: Guard, tenant_id: int, search: str = "",
         after: str | None = None, limit: int = PAGE_SIZE) -> tuple[list[UserRow], str | None]:
    """One page ordered by email, after the email ``after`` (keyset: as fast on page 2,000 as on
    page 1); returns the rows and the cursor of the next page, if any."""
    query = select(User).where(User.tenant_id == tenant_id).order_by(User.email).limit(limit + 1)
    search = search.strip()[:200]
    if search:
        # Addresses are stored in their one spelling: search for the typed part in it too.
        query = query.where(or_(User.email.like(_containing(normalise_email(search)), escape="\\"),
                                User.name.ilike(_containing(search), escape="\\")))
    if after:
        query = query.where(User.email > after)
    users = list(db.scalars(query))
    more = len(users) > limit
    users = users[:limit]
    ids = [u.id for u in users]
    types: dict[int, set[str]] = {i: set() for i in ids}
    if ids:
        found = select(Authenticator).where(Authenticator.user_id.in_(ids)).options(
            selectinload(Authenticator.backup_codes))
        for auth in db.scalars(found):
            factor = mfa.get(auth.type)
            if factor is not None and factor.usable(auth):
                types[auth.user_id].add(auth.type)
    keys = [account_key(tenant_id, u.id, u.email) for u in users]
    counts = store.mget(keys) if keys else []
    rows = []
    for user, count in zip(users, counts):
        ranked = tuple(f.type for f in mfa.ordered() if f.type in types[user.id])
        locked = count is not None and int(count) >= guard.limits.lock_after
        rows.append(UserRow(user.id, user.email, user.name, user.role, shield_for(user, ranked, locked)))
    return rows, (users[-1].email if more else None)
