"""Audit events: one call records who did what to whom. Never pass a secret in ``data``.

Recording is also how the tenant's webhooks hear of it (``idp.notify.webhooks.emit``): every
source of events — console, CLI, sign-in, admin API, SCIM — is heard the same way."""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy.orm import Session

from idp import logs, metrics
from idp.models import AuditEvent
from idp.models.base import utcnow
from idp.notify import webhooks


def record(
    db: Session,
    tenant_id: int,
    action: str,
    *,
    actor: str = "",
    user_id: int | None = None,
    client_id: str | None = None,
    **data,
) -> AuditEvent:
    ip = request.remote_addr if has_request_context() else None
    at = utcnow()
    event = AuditEvent(
        tenant_id=tenant_id,
        action=action,
        actor=actor,
        user_id=user_id,
        client_id=client_id,
        ip=ip,
        data=data,
        created_at=at,
    )
    db.add(event)
    logs.note(action, client_id)  # the request's access line says what happened
    metrics.audited(action, data)
    if action in webhooks.FROM_AUDIT:
        webhooks.emit(db, webhooks.Occurred(tenant_id, action, actor, user_id, client_id, ip,
                                            data, at))
    return event
