"""Audit events: one call records who did what to whom. Never pass a secret in ``data``."""

from __future__ import annotations

from flask import has_request_context, request
from sqlalchemy.orm import Session

from idp import logs, metrics
from idp.models import AuditEvent


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
    event = AuditEvent(
        tenant_id=tenant_id,
        action=action,
        actor=actor,
        user_id=user_id,
        client_id=client_id,
        ip=request.remote_addr if has_request_context() else None,
        data=data,
    )
    db.add(event)
    logs.note(action, client_id)  # the request's access line says what happened
    metrics.audited(action, data)
    return event
