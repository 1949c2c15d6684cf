"""The MFA report: adoption at a glance (a chart and its table), and a CSV of every user.

Each user is counted in the state the users list shows them in: ``idp.policy.standing`` —
**on** (asked for a second step at every sign-in), **required** (must set one up at the next
sign-in), or **off** (not asked: the organisation has it off or the policy does not cover
them, an administrator turned it off for them, or it is optional and they have not set it
up). A factor counts when it can answer a challenge now and the policy allows its type (a
set of backup codes with every code spent does not).

This module only *counts*; what state a user is in is the policy's answer.

Fast at 100,000 users: the page runs a fixed number of aggregate queries (one over the
tenant's users, one over users × their groups), whatever the number of users; the policy is
asked once per distinct combination of the facts it reads (role, admin state, reset, "holds an
allowed factor", "in a policy group", "named by the policy"), never once per user. The CSV is
streamed in chunks of ``CHUNK`` users (three queries and one Redis MGET per chunk), so 100,000
rows never sit in memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from flask import Response, g, render_template, stream_with_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from idp import audit, db, mfa, store
from idp.console.views import bp
from idp.guard import account_key
from idp.mfa import flow
from idp.models import Authenticator, Group, User, user_groups
from idp.admin.user_list import STATE_LABELS, state_of, usable_factor
from idp.policy import Standing, TenantPolicy
from idp import tenant_policy

CHUNK = 1000
NO_GROUP = _l("No group")
# The policy's mode as the report's first sentence names it.
MODES = {"disabled": _l("disabled"), "optional": _l("optional"), "required": _l("required")}
# The chart's segments, in order, with what people read and the fill of each.
SEGMENTS = (("on", STATE_LABELS[Standing.ON], "#1f8a3a"),
            ("required", STATE_LABELS[Standing.REQUIRED], "#d08a00"),
            ("off", _l("Off"), "#8a8f98"))


# -- classification ------------------------------------------------------------------------


# -- the report page -----------------------------------------------------------------------


@dataclass
class Counts:
    label: str
    on: int = 0
    required: int = 0
    off: int = 0
    exempt: int = 0  # of ``off``: turned off by an admin
    optional: int = 0  # of ``off``: may set it up, has not

    @property
    def total(self) -> int:
        return self.on + self.required + self.off

    def add(self, state: str, n: int) -> None:
        """Count ``n`` users in a ``policy.Standing`` value."""
        if state in (Standing.EXEMPT.value, Standing.OPTIONAL.value):
            setattr(self, state, getattr(self, state) + n)
            state = Standing.OFF.value
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
                                                 usable_factor(policy))
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


def build(session: Session, tenant) -> Report:
    """The whole report in four queries: the policy, the groups, two aggregates."""
    policy = tenant_policy.tenant_policy(session, tenant)
    per_user = _per_user(tenant.id, policy)
    keys = (per_user.c.role, per_user.c.admin_state, per_user.c.must_reenroll,
            per_user.c.enrolled, per_user.c.in_groups, per_user.c.listed)
    cache: dict[tuple, str] = {}

    def state(row) -> str:
        key = tuple(row[:6])
        if key not in cache:
            cache[key] = state_of(policy, *key)
        return cache[key]

    overall = Counts(str(_l("Everyone")))
    for row in session.execute(select(*keys, func.count()).group_by(*keys)):
        overall.add(state(row), row[-1])

    names = {gid: name for gid, name in session.execute(
        select(Group.id, Group.name).where(Group.tenant_id == tenant.id))}
    by_group = {gid: Counts(name) for gid, name in names.items()}
    no_group = Counts(str(NO_GROUP))
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
                                 "title": f"{counts.label}: {n} {str(label).lower()} "
                                          f"({counts.share(state)}%)"})
            x += width
        rows.append({"label": counts.label, "y": y, "total": counts.total, "segments": segments,
                     "empty": counts.total == 0})
    height = TOP + len(rows) * ROW_H + 6
    legend, x = [], LABEL_W
    for _state, label, fill in SEGMENTS:
        legend.append({"x": x, "label": label, "fill": fill})
        x += 20 + 9 * len(str(label)) + 24
    return {"rows": rows, "width": LABEL_W + BAR_W + COUNT_W, "height": height,
            "legend": legend, "label_w": LABEL_W, "bar_w": BAR_W, "bar_h": BAR_H}


@bp.get("/report")
def report():
    data = build(db.session(), g.tenant)
    return render_template("console/report.html", report=data, chart=chart(data),
                           segments=SEGMENTS, modes=MODES)


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
                .where(*in_chunk, usable_factor(policy))):
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
                states[key] = state_of(policy, *key)
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
    policy = tenant_policy.tenant_policy(session, g.tenant)
    lock_after = flow.guard().limits.lock_after
    audit.record(session, g.tenant.id, "report.exported", actor=g.admin.email, format="csv")
    body = _csv_lines(rows(session, store.get(), g.tenant.id, policy, lock_after))
    filename = f"mfa-report-{g.tenant.slug}.csv"
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})
