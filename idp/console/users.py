"""The users list: one page of a tenant's users with each one's MFA state, in a fixed number
of queries whatever the page size (users, their groups, their factors, their locks) — fast at
100,000 users (benchmarks/console_users.py). The state is ``idp.policy.standing``'s answer,
the one the user page and the MFA report show too."""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from idp import mfa
from idp.addresses import normalise_email
from idp.guard import Guard, account_key
from idp.journey import facts
from idp.models import Authenticator, User
from idp.policy import Standing, TenantPolicy
from idp.policy import standing as policy_standing

PAGE_SIZE = 50


# What the console says of each state of ``policy.standing`` (the list, the user page, the
# report and its CSV all read it from here).
STATE_LABELS = {
    Standing.ON: "On",
    Standing.REQUIRED: "Required, not set up yet",
    Standing.OPTIONAL: "Optional, not set up",
    Standing.EXEMPT: "Off (turned off by an administrator)",
    Standing.OFF: "Off",
}


@dataclass(frozen=True)
class Shield:
    """What the shield icon says about a user's MFA: the policy's standing, and a lock."""

    state: str  # a ``policy.Standing`` value
    label: str
    reason: str
    factors: tuple[str, ...]
    locked: bool = False

    @property
    def on(self) -> bool:
        """Is a second step asked of (or required from) this user: "Turn off" is what helps."""
        return self.state in (Standing.ON.value, Standing.REQUIRED.value)


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    role: str
    shield: Shield


def shield_for(policy: TenantPolicy, user: User, held: frozenset[str], locked: bool) -> Shield:
    """``held``: the factor types the user can answer now."""
    standing = policy_standing(policy, facts.facts_of(user, held))
    label = STATE_LABELS[standing.state]
    if standing.factors:
        label += ": " + ", ".join(mfa.get(t).label for t in standing.factors if mfa.get(t))
    return Shield(standing.state.value, label, standing.reason, standing.factors, locked)


def _containing(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def page(db: Session, store: Redis, guard: Guard, policy: TenantPolicy, tenant_id: int,
         search: str = "", after: str | None = None,
         limit: int = PAGE_SIZE) -> tuple[list[UserRow], str | None]:
    """One page ordered by email, after the email ``after`` (keyset: as fast on page 2,000 as on
    page 1); returns the rows and the cursor of the next page, if any."""
    query = (select(User).where(User.tenant_id == tenant_id).order_by(User.email).limit(limit + 1)
             .options(selectinload(User.groups)))
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
            if mfa.answerable(auth):  # the rule the sign-in's facts use (journey.facts)
                types[auth.user_id].add(auth.type)
    keys = [account_key(tenant_id, u.id, u.email) for u in users]
    counts = store.mget(keys) if keys else []
    rows = []
    for user, count in zip(users, counts):
        locked = count is not None and int(count) >= guard.limits.lock_after
        shield = shield_for(policy, user, frozenset(types[user.id]), locked)
        rows.append(UserRow(user.id, user.email, user.name, user.role, shield))
    return rows, (users[-1].email if more else None)
