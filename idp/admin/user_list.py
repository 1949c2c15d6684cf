"""The users list (the console's, the admin API's): one page of a tenant's users with each one's status and MFA state, in a fixed
number of queries whatever the page size (users, their groups, their factors, their remembered
browsers, their locks) —
fast at 100,000 users (benchmarks/console_users.py). The state is ``idp.policy.standing``'s
answer, the one the user page and the MFA report show too.

Filters narrow the same keyset walk (by email), each as one condition of its one query:
status and group are columns and a membership; "two-step verification on/off" is the policy's
standing, asked once per combination of the facts it reads (``state_of``, as the MFA report
counts) and matched in SQL by those facts; "locked" is the guard's count, in Redis, for the
accounts whose lock the audit trail recorded lately (``locked_ids``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from redis import Redis
from sqlalchemy import Boolean, String, false, func, literal, or_, select, true, tuple_, union_all
from sqlalchemy.orm import Session, selectinload

from idp import mfa, user_status
from idp.addresses import normalise_email
from idp.guard import Guard, account_key
from idp.mfa.webauthn import WebAuthn
from idp.journey import facts
from idp.models import AuditEvent, Authenticator, Group, RememberedDevice, User, user_groups
from idp.models.base import utcnow
from idp.policy import AdminState, Standing, TenantPolicy, UserFacts
from idp.policy import standing as policy_standing
from idp.roles import ROLES

PAGE_SIZE = 50
PASSKEY = WebAuthn.type  # passkeys and security keys, counted on the list


# What the console says of each state of ``policy.standing`` (the list, the user page, the
# report and its CSV all read it from here).
STATE_LABELS = {
    Standing.ON: _l("On"),
    Standing.REQUIRED: _l("Required, not set up yet"),
    Standing.OPTIONAL: _l("Optional, not set up"),
    Standing.EXEMPT: _l("Off (turned off by an administrator)"),
    Standing.OFF: _l("Off"),
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
    status: str = user_status.ACTIVE
    passkeys: int = 0
    remembered: int = 0  # browsers remembered for their second step, not expired


# The MFA filter's choices: the shield's "On", or anything else (not set up yet, optional and
# not set up, turned off, not covered).
MFA_CHOICES = {"on": _l("On"), "off": _l("Off or not set up")}
# The longest lock a tenant can set (``idp.admin.sign_in_policy``): a lock recorded earlier has
# ended by now.
LONGEST_LOCK = timedelta(days=7)


@dataclass(frozen=True)
class Filters:
    """What the list is narrowed to; an empty field does not narrow it. Values a form cannot
    send (a hand-made URL) are dropped, never an error."""

    mfa: str = ""  # a key of MFA_CHOICES
    locked: bool = False
    status: str = ""  # a ``user_status`` value
    group: str = ""  # a group's name
    # The admin API's (the console's form does not send them): a role, an address exactly or
    # its beginning (in the stored spelling, ``idp.addresses``), created at or after a moment.
    role: str = ""
    email: str = ""
    email_prefix: str = ""
    created_since: datetime | None = None

    @classmethod
    def from_args(cls, args) -> "Filters":
        mfa_ = args.get("mfa", "")
        status = args.get("status", "")
        return cls(mfa=mfa_ if mfa_ in MFA_CHOICES else "",
                   locked=args.get("locked") == "yes",
                   status=status if status in user_status.STATUSES else "",
                   group=args.get("group", "").strip()[:200])

    def args(self) -> dict:
        """As query-string arguments (the next page's link keeps them)."""
        return {k: v for k, v in (("mfa", self.mfa), ("locked", "yes" if self.locked else ""),
                                  ("status", self.status), ("group", self.group),
                                  ("role", self.role), ("email", self.email),
                                  ("email_prefix", self.email_prefix),
                                  ("created_since", self.created_since and
                                   self.created_since.isoformat())) if v}

    def __bool__(self) -> bool:
        return bool(self.args())


# -- the policy's facts, in SQL -------------------------------------------------------------

def admin_state(value: str) -> AdminState:
    try:
        return AdminState(value)
    except ValueError:
        return AdminState.DEFAULT


def usable_factor(policy: TenantPolicy):
    """SQL for "this authenticator can answer a challenge the policy asks": a registered,
    challengeable type the policy allows, usable as its factor says (``Factor.usable_where``:
    a set of backup codes with a code not yet used)."""
    usable = [(Authenticator.type == f.type) & f.usable_where() for f in mfa.ordered()
              if f.challengeable and f.type in policy.allowed_factors]
    return or_(*usable) if usable else false()


def fact_columns(tenant_id: int, policy: TenantPolicy) -> dict:
    """Per user, the facts ``policy.standing`` reads, as SQL on ``User``, named as
    ``state_of``'s arguments (the policy's groups and named users only when it has some).
    Each flag is an uncorrelated ``IN (subquery)``, which PostgreSQL hashes once (and SQLite
    indexes once) instead of probing per user."""
    usable = select(Authenticator.user_id).where(Authenticator.tenant_id == tenant_id,
                                                 usable_factor(policy))
    columns = {"role": User.role, "admin_state_": User.mfa_admin_state,
               "must_reenroll": User.mfa_must_reenroll, "enrolled": User.id.in_(usable)}
    if policy.groups:
        columns["in_groups"] = User.id.in_(
            select(user_groups.c.user_id).join(Group, Group.id == user_groups.c.group_id)
            .where(Group.tenant_id == tenant_id, Group.name.in_(sorted(policy.groups))))
    if policy.users:
        columns["listed"] = User.id.in_(sorted(policy.users))
    return columns


def state_of(policy: TenantPolicy, role, admin_state_, must_reenroll, enrolled, in_groups=False,
             listed=False) -> str:
    """The standing of one combination of facts, standing for every user who has it (a user in
    a policy group is given those groups; one the policy names, a named id; one holding an
    allowed factor, the allowed types — the state reads only whether they hold one)."""
    listed_id = next(iter(policy.users)) if listed and policy.users else -1
    facts_ = UserFacts(id=listed_id, kinds=mfa.kinds(), role=role,
                       groups=policy.groups if in_groups else frozenset(),
                       admin_state=admin_state(admin_state_), must_reenroll=bool(must_reenroll),
                       enrolled=policy.allowed_factors if enrolled else frozenset())
    return policy_standing(policy, facts_).state.value


def _mfa_condition(tenant_id: int, policy: TenantPolicy, wanted: str):
    """Users whose shield says On (``wanted`` "on"), or anything else ("off"): the
    combinations of facts the policy stands On, matched as one tuple of the facts' columns."""
    columns = fact_columns(tenant_id, policy)
    domains = {"role": ROLES, "admin_state_": [s.value for s in AdminState]}
    on = [combo for combo in itertools.product(*(domains.get(name, (False, True))
                                                 for name in columns))
          if state_of(policy, **dict(zip(columns, combo))) == Standing.ON.value]
    if not on:
        return false() if wanted == "on" else true()
    # IN a subquery, not IN a list of literals: PostgreSQL spreads the latter into ORs of the
    # columns, each with its own copy of the flags' subqueries (under NOT, every copy may be
    # built); a subquery is one hashed lookup of the row, computed once. (A UNION ALL of
    # constant rows, since SQLite cannot name the columns of a VALUES list.)
    types = {"role": String(), "admin_state_": String()}
    rows = union_all(*(select(*(literal(value, types.get(name, Boolean()))
                                for name, value in zip(columns, combo))) for combo in on))
    match = tuple_(*columns.values()).in_(rows)
    return match if wanted == "on" else ~match


def locked_ids(db: Session, store: Redis, guard: Guard, tenant_id: int) -> list[int]:
    """The tenant's locked accounts: of those whose lock the audit trail recorded within the
    longest lock there is, the ones the guard still counts as locked (one MGET). A lock is
    always recorded (``idp.lockout``); counts that pass a threshold lowered since are not, and
    such an account shows "Locked" on its own row without this filter finding it."""
    since = utcnow() - LONGEST_LOCK
    ids = list(db.scalars(select(AuditEvent.user_id).distinct().where(
        AuditEvent.tenant_id == tenant_id, AuditEvent.action == "account.locked",
        AuditEvent.user_id.is_not(None), AuditEvent.created_at >= since)))
    if not ids:
        return []
    counts = store.mget([account_key(tenant_id, i, "") for i in ids])
    return [i for i, count in zip(ids, counts)
            if count is not None and int(count) >= guard.limits.lock_after]


def shield_for(policy: TenantPolicy, user: User, held: frozenset[str], locked: bool,
               kinds=None) -> Shield:
    """``held``: the factor types the user can answer now (``kinds``: ``mfa.kinds()``, when
    the caller asked it once for many users)."""
    standing = policy_standing(policy, facts.facts_of(user, held, kinds))
    label = str(STATE_LABELS[standing.state])  # English outside a page (the admin API)
    if standing.factors:
        label += ": " + ", ".join(str(mfa.get(t).label) for t in standing.factors if mfa.get(t))
    return Shield(standing.state.value, label, standing.reason, standing.factors, locked)


def _escaped(text: str) -> str:
    """``text`` for a LIKE pattern with ``\\`` as the escape: its wildcards match themselves."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _containing(text: str) -> str:
    return "%" + _escaped(text) + "%"


def _narrowed(db: Session, store: Redis, guard: Guard, policy: TenantPolicy, tenant_id: int,
              search: str, filters: Filters):
    """The query of the users ``filters`` and ``search`` leave (unordered), or None when the
    answer is known to be empty."""
    query = select(User).where(User.tenant_id == tenant_id).options(selectinload(User.groups))
    if filters.status:
        query = query.where(User.status == filters.status)
    if filters.role:
        query = query.where(User.role == filters.role)
    if filters.email:
        query = query.where(User.email == normalise_email(filters.email))
    if filters.email_prefix:
        # The pattern built here, not in SQL: a constant prefix is what an index can serve.
        prefix = _escaped(normalise_email(filters.email_prefix))
        query = query.where(User.email.like(prefix + "%", escape="\\"))
    if filters.created_since is not None:
        query = query.where(User.created_at >= filters.created_since)
    if filters.group:
        query = query.where(User.id.in_(
            select(user_groups.c.user_id).join(Group, Group.id == user_groups.c.group_id)
            .where(Group.tenant_id == tenant_id, Group.name == filters.group)))
    if filters.mfa:
        query = query.where(_mfa_condition(tenant_id, policy, filters.mfa))
    if filters.locked:
        locked = locked_ids(db, store, guard, tenant_id)
        if not locked:
            return None
        query = query.where(User.id.in_(locked))
    search = search.strip()[:200]
    if search:
        # Addresses are stored in their one spelling: search for the typed part in it too.
        query = query.where(or_(User.email.like(_containing(normalise_email(search)), escape="\\"),
                                User.name.ilike(_containing(search), escape="\\")))
    return query


def page(db: Session, store: Redis, guard: Guard, policy: TenantPolicy, tenant_id: int,
         search: str = "", after: str | None = None, limit: int = PAGE_SIZE,
         filters: Filters = Filters()) -> tuple[list[UserRow], str | None]:
    """One page ordered by email, after the email ``after`` (keyset: as fast on page 2,000 as on
    page 1), of the users ``filters`` and ``search`` leave; returns the rows and the cursor of
    the next page, if any."""
    query = _narrowed(db, store, guard, policy, tenant_id, search, filters)
    if query is None:
        return [], None
    if after:
        query = query.where(User.email > after)
    users = list(db.scalars(query.order_by(User.email).limit(limit + 1)))
    more = len(users) > limit
    users = users[:limit]
    return rows_of(db, store, guard, policy, tenant_id, users), (users[-1].email if more else None)


def page_by_id(db: Session, store: Redis, guard: Guard, policy: TenantPolicy, tenant_id: int,
               after_id: int | None = None, limit: int = PAGE_SIZE,
               filters: Filters = Filters()) -> tuple[list[tuple[User, UserRow]], int | None]:
    """The admin API's walk: one page in the order users were created (their row id, which
    never changes, unlike an address), after ``after_id``; the users with their rows, and the
    id to continue after, if there is more."""
    query = _narrowed(db, store, guard, policy, tenant_id, "", filters)
    if query is None:
        return [], None
    if after_id is not None:
        query = query.where(User.id > after_id)
    users = list(db.scalars(query.order_by(User.id).limit(limit + 1)))
    more = len(users) > limit
    users = users[:limit]
    rows = rows_of(db, store, guard, policy, tenant_id, users)
    return list(zip(users, rows)), (users[-1].id if more else None)


def rows_of(db: Session, store: Redis, guard: Guard, policy: TenantPolicy, tenant_id: int,
            users: list[User]) -> list[UserRow]:
    """The list's rows of ``users``: their factors, remembered browsers and locks, in a fixed
    number of queries (and one MGET) whatever their number."""
    ids = [u.id for u in users]
    types: dict[int, set[str]] = {i: set() for i in ids}
    passkeys: dict[int, int] = dict.fromkeys(ids, 0)
    remembered: dict[int, int] = {}
    if ids:
        found = select(Authenticator).where(Authenticator.user_id.in_(ids)).options(
            selectinload(Authenticator.backup_codes))
        for auth in db.scalars(found):
            if mfa.answerable(auth):  # the rule the sign-in's facts use (journey.facts)
                types[auth.user_id].add(auth.type)
            if auth.type == PASSKEY:
                passkeys[auth.user_id] += 1
        remembered = dict(db.execute(
            select(RememberedDevice.user_id, func.count()).where(
                RememberedDevice.user_id.in_(ids), RememberedDevice.expires_at > utcnow())
            .group_by(RememberedDevice.user_id)).all())
    keys = [account_key(tenant_id, u.id, u.email) for u in users]
    counts = store.mget(keys) if keys else []
    rows = []
    kinds = mfa.kinds()
    for user, count in zip(users, counts):
        locked = count is not None and int(count) >= guard.limits.lock_after
        shield = shield_for(policy, user, frozenset(types[user.id]), locked, kinds)
        rows.append(UserRow(user.id, user.email, user.name, user.role, shield, user.status,
                            passkeys[user.id], remembered.get(user.id, 0)))
    return rows
