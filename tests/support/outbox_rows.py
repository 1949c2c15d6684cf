"""The outbox rows of one tenant and channel, as the database has them (detached)."""

from __future__ import annotations

from sqlalchemy import select

from idp import db, directory
from idp.models import OutboxMessage


def outbox_rows(app, world, channel: str) -> list[OutboxMessage]:
    """``world``'s tenant's rows of ``channel`` ("logout", "webhook", ...), oldest first."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        found = session.scalars(select(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.channel == channel)
            .order_by(OutboxMessage.id)).all()
        session.expunge_all()
        return found
