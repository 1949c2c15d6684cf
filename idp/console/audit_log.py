"""The console's audit log: this tenant's events, newest first, filtered by user, action and
time; 100 a page (keyset on id); the filtered set exported as CSV or JSON lines.

Every query is bounded to ``g.tenant`` — another tenant's events are never read. A filter that
cannot be understood (a date that is not ``YYYY-MM-DD``) answers 400 with a message and the
form as typed, never a 500 and never an unfiltered export. Exports are streamed in keyset
batches and recorded as ``audit.exported`` (actor, format, filters).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from flask import Response, g, render_template, request, stream_with_context
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select

from idp import audit, db
from idp.addresses import normalise_email
from idp.admin import audit_trail
from idp.console.views import bp
from idp.models import AuditEvent, User

PAGE = 100
BATCH = 1000  # rows a query while exporting
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CSV_HEADER = ("time", "action", "actor", "user", "client_id", "ip", "data")
ACTION_HINTS = ("mfa.", "account.", "user.", "client.", "group.", "policy.", "login_token.",
                "upstream.", "audit.")


class BadFilter(ValueError):
    pass


@dataclass
class Filters:
    user: str = ""
    action: str = ""
    since: str = ""  # the form's "from"
    until: str = ""  # the form's "to"

    def args(self) -> dict:
        """As query-string arguments (empty ones left out), for links and exports."""
        return {k: v for k, v in (("user", self.user), ("action", self.action),
                                  ("from", self.since), ("to", self.until)) if v}


def _filters() -> Filters:
    return Filters(user=request.args.get("user", "").strip()[:320],
                   action=request.args.get("action", "").strip()[:64],
                   since=request.args.get("from", "").strip()[:10],
                   until=request.args.get("to", "").strip()[:10])


def _day(value: str, label: str) -> date | None:
    if not value:
        return None
    try:
        if not ISO_DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise BadFilter(_("“%(value)s” is not a date: write the %(which)s date as YYYY-MM-DD, "
                          "for example 2025-01-31.", value=value, which=label)) from None


def _conditions(filters: Filters) -> tuple[list, str | None]:
    """SQL conditions for the filters (always this tenant's), and a note for the admin."""
    session = db.session()
    where = [AuditEvent.tenant_id == g.tenant.id]
    note = None
    if filters.user:
        email = normalise_email(filters.user)
        user_id = session.scalar(select(User.id).where(User.tenant_id == g.tenant.id,
                                                       User.email == email))
        if user_id is None:
            note = _("There is no user %(email)s in this organisation now; showing what was done "
                     "by that address (as actor), and its deletion if it was deleted.", email=email)
            where.append(or_(AuditEvent.actor == email,
                             and_(AuditEvent.action == "user.deleted",
                                  AuditEvent.data["email"].as_string() == email)))
        else:  # what happened to them, and what they did
            where.append(or_(AuditEvent.user_id == user_id, AuditEvent.actor == email))
    if filters.action:
        where.append(audit_trail.action_condition(filters.action))
    since, until = _day(filters.since, _("from")), _day(filters.until, _("to"))
    if since and until and since > until:
        raise BadFilter(_("The “from” date is after the “to” date."))
    if since:
        where.append(AuditEvent.created_at >= datetime.combine(since, time.min, timezone.utc))
    if until:  # the whole "to" day, in UTC
        where.append(AuditEvent.created_at < datetime.combine(until + timedelta(days=1), time.min,
                                                              timezone.utc))
    return where, note


def _rows(where: list, before: int | None, limit: int):
    return audit_trail.rows(db.session(), g.tenant.id, where, before, limit)


def _before() -> int | None:
    value = request.args.get("before", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _render(filters: Filters, rows=(), status: int = 200, error: str | None = None,
            note: str | None = None, next_before: int | None = None):
    return render_template("console/audit.html", filters=filters, rows=rows, error=error, note=note,
                           next_before=next_before, paged=_before() is not None,
                           hints=ACTION_HINTS, as_json=_data_json), status


@bp.get("/audit", endpoint="audit")
def audit_page():
    filters = _filters()
    try:
        where, note = _conditions(filters)
    except BadFilter as e:
        return _render(filters, status=400, error=str(e))
    rows = _rows(where, _before(), PAGE + 1)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return _render(filters, rows, note=note, next_before=rows[-1][0].id if more else None)


def _data_json(data) -> str:
    return json.dumps(data or {}, sort_keys=True, separators=(",", ":"), default=str)


def _record(event: AuditEvent, email: str | None) -> dict:
    return {"id": event.id, "time": event.created_at.astimezone(timezone.utc).isoformat(),
            "action": event.action, "actor": event.actor, "user": email,
            "user_id": event.user_id, "client_id": event.client_id, "ip": event.ip,
            "data": event.data or {}}


def _cell(value) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _export(kind: str):
    filters = _filters()
    try:
        where, _note = _conditions(filters)
    except BadFilter as e:
        return _render(filters, status=400, error=str(e))
    session = db.session()
    marker = audit.record(session, g.tenant.id, "audit.exported", actor=g.admin.email,
                          format=kind, filters=filters.args())
    session.flush()
    where.append(AuditEvent.id < marker.id)  # what existed when the export was asked for

    def batches():
        before = None
        while True:
            rows = _rows(where, before, BATCH)
            yield from rows
            if len(rows) < BATCH:
                return
            before = rows[-1][0].id

    def csv_lines():
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        for event, email in batches():
            r = _record(event, email)
            writer.writerow([_cell(r["time"]), _cell(r["action"]), _cell(r["actor"]), _cell(email),
                             _cell(r["client_id"]), _cell(r["ip"]), _cell(_data_json(r["data"]))])
            if out.tell() > 64 * 1024:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    def json_lines():
        for event, email in batches():
            yield json.dumps(_record(event, email), separators=(",", ":"), default=str) + "\n"

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    if kind == "csv":
        body, mimetype, name = csv_lines(), "text/csv", f"audit-{g.tenant.slug}-{stamp}.csv"
    else:
        body, mimetype, name = json_lines(), "application/x-ndjson", f"audit-{g.tenant.slug}-{stamp}.jsonl"
    response = Response(stream_with_context(body), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/audit/export.csv")
def audit_csv():
    return _export("csv")


@bp.get("/audit/export.jsonl")
def audit_jsonl():
    return _export("jsonl")
