"""Reading a tenant's audit trail, newest first, in keyset pages on the event id: the console's
audit log and the admin API's events ask it the same way. Every query is bounded to the one
tenant."""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from idp.models import AuditEvent, User


def action_condition(action: str):
    """An action exactly (``mfa.reset``), or every action of a family (``mfa.`` or ``mfa*``)."""
    if action.endswith((".", "*")):
        return AuditEvent.action.startswith(action.rstrip("*"), autoescape=True)
    return AuditEvent.action == action


def rows(db: Session, tenant_id: int, where: list, before: int | None, limit: int, *,
         subject: bool = False):
    """(event, the address of its user now or None) for the tenant's events matching ``where``,
    with an id below ``before``, newest first, at most ``limit``; with ``subject``, the user's
    public id third."""
    columns = (AuditEvent, User.email, User.subject) if subject else (AuditEvent, User.email)
    query = (select(*columns)
             .outerjoin(User, and_(User.id == AuditEvent.user_id, User.tenant_id == tenant_id))
             .where(AuditEvent.tenant_id == tenant_id, *where))
    if before is not None:
        query = query.where(AuditEvent.id < before)
    return db.execute(query.order_by(AuditEvent.id.desc()).limit(limit)).all()
