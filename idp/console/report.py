"""The MFA report: adoption at a glance (a chart and its table), and a CSV of every user.

A user is **enrolled** when they hold at least one usable factor (a set of backup codes with
every code spent is not usable); else **enforced** when the tenant's policy is in force for
them (``idp.policy.policy_applies``) and asks for a second step outright (an admin enforced it
or reset their factors, or the tenant's mode is ``required``); else **exempt** when an admin
switched MFA off for them; else **off**. The chart counts exempt users with off ones.

This module only *classifies*: whether the policy covers a user is ``policy_applies``'s answer.

Fast at 100,000 users: the page runs a fixed number of aggregate queries (one over the
tenant's users, one over users × their groups), whatever the number of users; the policy is
asked once per distinct combination of the facts it reads (role, admin state, reset, "in a
policy group", "named by the policy"), never once per user. The CSV is streamed in chunks of
``CHUNK`` users (three queries and one Redis MGET per chunk), so 100,000 rows never sit in
memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import Response, g, render_template, stream_with_context
from sqlalchemy import case, func, literal, or_, select
from sqlalchemy.orm import Session

from idp import audit, db, mfa, store
from idp.console.views import bp
from idp.guard import account_key
from idp.login import facts
from idp.mfa import flow
from idp.mfa.backup_codes import BackupCodes
from idp.models import Authenticator, BackupCode, Group, User, user_groups
from idp.policy import AdminState, Mode, TenantPolicy, UserFacts, policy_applies

CHUNK = 1000
NO_GROUP = "No group"
# The chart's segments, in order, with what people read and the fill of each.
SEGMENTS = (("enrolled", "Enrolled", "#1f8a3a"),
            ("enforced", "Enforced, not enrolled", "#d08a00"),
            ("off", "Off", "#8a8f98"))


# -- classification ------------------------------------------------------------------------


def _admin_state(value: str) -> AdminState:
    try:
        return AdminState(value)
    except ValueError:
        return AdminState.DEFAULT


def classify(policy: TenantPolicy, user: UserFacts, enrolled: bool) -> str:
    """"enrolled" | "enforced" | "exempt" | "off" (see the module docstring)."""
    if enrolled:
        return "enrolled"
    if policy_applies(policy, user) and (user.admin_state is AdminState.ENFORCED
                                         or user.must_reenroll or policy.mode is Mode.REQUIRED):
        return "enforced"
    if user.admin_state is AdminState.EXEMPT:
        return "exempt"
    return "off"


def _usable_factor():
    """SQL for "this authenticator can answer a challenge": a registered, challengeable type,
    and for backup codes at least one code not yet used (``BackupCodes.usable``)."""
    types = [f.type for f in mfa.ordered() if f.challengeable]
    unspent = select(BackupCode.authenticator_id).where(BackupCode.used_at.is_(None))
    return Authenticator.type.in_(types) & or_(Authenticator.type != BackupCodes.type,
                                               Authenticator.id.in_(unspent))


# -- the report page -----------------------------------------------------------------------


@dataclass
class Counts:
    label: str
    enrolled: int = 0
    enforced: int = 0
    off: int = 0
    exempt: int = 0  # of ``off``: exempted by an admin

    @property
    def total(self) -> int:
        return self.enrolled + self.enforced + self.off

    def add(self, state: str, n: int) -> None:
        if state == "exempt":
            self.exempt += n
            state = "off"
        setattr(self, state, getattr(self, state) + n)

    def share(self, state: str) -> int:
        """Percentage of this row's users in ``state``, rounded half up (12.5 → 13)."""
        return (200 * getattr(self, state) + self.total) // (2 * self.total) if self.total else 0


@dataclass
class Report:
    policy: TenantPolicy
    overall: Counts
    groups: list[Counts] = field(default_factory=list)


def _per_user(tenant_id: int, policy: TenantPolicy):
    """A subquery with one row per user of the tenant: the facts ``policy_applies`` reads.
    Each flag is an uncorrelated ``IN (subquery)``, which PostgreSQL hashes once (and SQLite
    indexes once) instead of probing per user."""
    usable = select(Authenticator.user_id).where(Authenticator.tenant_id == tenant_id,
                                                 _usable_factor())
    if policy.groups:
        in_policy_groups = User.id.in_(
            select(user_groups.c.user_id).join(Group, Group.id == user_groups.c.group_id)
            .where(Group.tenant_id == tenant_id, Group.name.in_(sorted(policy.groups))))
        in_groups = case((in_policy_groups, 1), else_=0)
    else:
        in_groups = literal(0)
    listed = case((User.id.in_(sorted(policy.users)), 1), else_=0) if policy.users else literal(0)
    return (select(User.id.label("id"), User.role.label("role"),
                   User.mfa_admin_state.label("admin_state"),
                   User.mfa_must_reenroll.label("must_reenroll"),
                   case((User.id.in_(usable), 1), else_=0).label("enrolled"),
                   in_groups.label("in_groups"), listed.label("listed"))
            .where(User.tenant_id == tenant_id)
            .subquery())


def _state_of(policy: TenantPolicy, role, admin_state, must_reenroll, enrolled, in_groups,
              listed) -> str:
    """Classify one aggregate row: a combination of facts, standing for every user who has it
    (a user in a policy group is given those groups; one the policy names, a named id)."""
    listed_id = next(iter(policy.users)) if listed and policy.users else -1
    facts_ = UserFacts(id=listed_id, role=role, groups=policy.groups if in_groups else frozenset(),
                       admin_state=_admin_state(admin_state), must_reenroll=bool(must_reenroll))
    return classify(policy, facts_, bool(enrolled))


def build(session: Session, tenant) -> Report:
    """The whole report in four queries: the policy, the groups, two aggregates."""
    policy = facts.tenant_policy(session, tenant)
    per_user = _per_user(tenant.id, policy)
    keys = (per_user.c.role, per_user.c.admin_state, per_user.c.must_reenroll,
            per_user.c.enrolled, per_user.c.in_groups, per_user.c.listed)
    cache: dict[tuple, str] = {}

    def state(row) -> str:
        key = tuple(row[:6])
        if key not in cache:
            cache[key] = _state_of(policy, *key)
        return cache[key]

    overall = Counts("Everyone")
    for row in session.execute(select(*keys, func.count()).group_by(*keys)):
        overall.add(state(row), row[-1])

    names = {gid: name for gid, name in session.execute(
        select(Group.id, Group.name).where(Group.tenant_id == tenant.id))}
    by_group = {gid: Counts(name) for gid, name in names.items()}
    no_group = Counts(NO_GROUP)
    grouped = (select(user_groups.c.group_id, *keys, func.count())
               .select_from(per_user)
               .outerjoin(user_groups, user_groups.c.user_id == per_user.c.id)
               .group_by(user_groups.c.group_id, *keys))
    for row in session.execute(grouped):
        target = by_group.get(row[0], no_group) if row[0] is not None else no_group
        target.add(state(tuple(row)[1:]), row[-1])
    groups = sorted(by_group.values(), key=lambda c: c.label.lower())
    if no_group.total:
        groups.append(no_group)
    return Report(policy, overall, groups)


# The chart's geometry (SVG user units; the SVG scales to the page's width).
LABEL_W, BAR_W, COUNT_W, ROW_H, BAR_H, TOP = 190, 440, 90, 34, 22, 40


def chart(report: Report) -> dict:
    """Bars as rectangles, computed here so the template only draws them."""
    rows = []
    for i, counts in enumerate([report.overall, *report.groups]):
        y = TOP + i * ROW_H
        x, segments = LABEL_W, []
        for state, label, fill in SEGMENTS:
            n = getattr(counts, state)
            width = BAR_W * n / counts.total if counts.total else 0
            if n:
                segments.append({"x": round(x, 2), "width": round(width, 2), "fill": fill,
                                 "title": f"{counts.label}: {n} {label.lower()} "
                                          f"({counts.share(state)}%)"})
            x += width
        rows.append({"label": counts.label, "y": y, "total": counts.total, "segments": segments,
                     "empty": counts.total == 0})
    height = TOP + len(rows) * ROW_H + 6
    legend, x = [], LABEL_W
    for _, label, fill in SEGMENTS:
        legend.append({"x": x, "label": label, "fill": fill})
        x += 20 + 9 * len(label) + 24
    return {"rows": rows, "width": LABEL_W + BAR_W + COUNT_W, "height": height,
            "legend": legend, "label_w": LABEL_W, "bar_w": BAR_W, "bar_h": BAR_H}


@bp.get("/report")
def report():
    data = build(db.session(), g.tenant)
    return render_template("console/report.html", report=data, chart=chart(data),
                           segments=SEGMENTS)


# -- the CSV export ------------------------------------------------------------------------

COLUMNS = ("email", "name", "role", "groups", "state", "factor_types", "admin_state", "locked")


def _cell(value: str) -> str:
    """Defuse spreadsheet formulas (OWASP "CSV injection"): a text cell that a spreadsheet would
    evaluate gets a leading apostrophe."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def rows(session: Session, redis, tenant_id: int, policy: TenantPolicy,
         lock_after: int) -> Iterator[tuple]:
    """Every user of the tenant, ordered by email, CHUNK at a time (keyset, no OFFSET). Each
    chunk's factors and groups are read by the chunk's email range (two bound values, not a
    list of a thousand ids), its lock counts with one MGET."""
    ranks = {f.type: f.rank for f in mfa.ordered()}
    states: dict[tuple, str] = {}
    after = None
    while True:
        query = (select(User.id, User.email, User.name, User.role, User.mfa_admin_state,
                        User.mfa_must_reenroll)
                 .where(User.tenant_id == tenant_id).order_by(User.email).limit(CHUNK))
        if after is not None:
            query = query.where(User.email > after)
        users = session.execute(query).all()
        if not users:
            return
        in_chunk = [User.tenant_id == tenant_id, User.email <= users[-1].email]
        if after is not None:
            in_chunk.append(User.email > after)
        types: dict[int, set[str]] = {}
        for user_id, type_ in session.execute(
                select(User.id, Authenticator.type).join(Authenticator, Authenticator.user_id == User.id)
                .where(*in_chunk, _usable_factor())):
            types.setdefault(user_id, set()).add(type_)
        groups: dict[int, list[str]] = {}
        for user_id, name in session.execute(
                select(User.id, Group.name).join(user_groups, user_groups.c.user_id == User.id)
                .join(Group, Group.id == user_groups.c.group_id)
                .where(*in_chunk).order_by(Group.name)):
            groups.setdefault(user_id, []).append(name)
        counts = redis.mget([account_key(tenant_id, u.id, u.email) for u in users])
        for user, count in zip(users, counts):
            held = sorted(types.get(user.id, ()), key=lambda t: ranks.get(t, 999))
            names = groups.get(user.id, [])
            # The policy reads these facts only: classify each combination once.
            key = (user.role, user.mfa_admin_state, bool(user.mfa_must_reenroll), bool(held),
                   bool(policy.groups.intersection(names)), user.id in policy.users)
            if key not in states:
                states[key] = _state_of(policy, *key)
            locked = count is not None and int(count) >= lock_after
            yield (user.email, user.name or "", user.role, ";".join(names), states[key],
                   ";".join(held), user.mfa_admin_state, "yes" if locked else "no")
        if len(users) < CHUNK:
            return
        after = users[-1].email


def _csv_lines(records: Iterator[tuple]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for n, record in enumerate(records, 1):
        writer.writerow([_cell(str(v)) for v in record])
        if n % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@bp.get("/report.csv")
def report_csv():
    session = db.session()
    policy = facts.tenant_policy(session, g.tenant)
    lock_after = flow.guard().limits.lock_after
    audit.record(session, g.tenant.id, "report.exported", actor=g.admin.email, format="csv")
    body = _csv_lines(rows(session, store.get(), g.tenant.id, policy, lock_after))
    filename = f"mfa-report-{g.tenant.slug}.csv"
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})
