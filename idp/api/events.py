"""The audit trail: what happened in the tenant, newest first, filtered by type and time, in
cursor pages. Needs ``admin:read``."""

from __future__ import annotations

from datetime import timezone

from flask import g, request

from idp import db
from idp.admin import audit_trail
from idp.api import models
from idp.api.base import after_cursor, bp, cursor_of, operation
from idp.models import AuditEvent
from idp.problems import Problem


def _utc(moment):
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


@bp.get("/events")
@operation("admin:read", query=models.EventQuery, ok={"HTTP_200": models.Events},
           tags=("events",))
def list_events():
    """List audit events

    Newest first; `type` an event type (`mfa.reset`) or a family (`mfa.`); `since` and
    `until` bound the time (RFC 3339). Never a secret in `data`."""
    q: models.EventQuery = request.context.query
    where = []
    if q.type:
        where.append(audit_trail.action_condition(q.type))
    since = _utc(q.since) if q.since else None
    until = _utc(q.until) if q.until else None
    if since and until and since > until:
        raise Problem(422, "`since` is after `until`.",
                      errors=[{"field": "since", "message": "after until"}])
    if since:
        where.append(AuditEvent.created_at >= since)
    if until:
        where.append(AuditEvent.created_at < until)
    rows = audit_trail.rows(db.session(), g.tenant.id, where, after_cursor(q.cursor),
                            q.limit + 1, subject=True)
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    return models.Events(items=[
        models.Event(id=e.id, type=e.action, time=e.created_at, actor=e.actor,
                     user_id=subject, user_email=email, client_id=e.client_id, ip=e.ip,
                     data=e.data or {})
        for e, email, subject in rows], next_cursor=cursor_of(rows[-1][0].id) if more else None)
