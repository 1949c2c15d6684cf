"""The outbox: every mail, and the SMS of the embedded default, as a row written in the
transaction of the change that causes it. Mail is delivered from here by ``idp.notify.outbox``
(claimed, sent, retried with back-off); SMS rows are only kept, for ``idp outbox``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.models.base import Base, utcnow


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    # "mail" | "sms" | "logout" (back-channel) | "webhook" (idp.notify.webhooks)
    channel: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str | None] = mapped_column(String(40))  # the template: "lockout", "reset", ...
    recipient: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)  # plain text
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Delivery (mail): "pending" until handed to the SMTP server ("sent"), or given up ("failed"
    # after the last retry, "expired" when too old to be of use); "kept" without SMTP (and for
    # SMS); "dropped" never meant to leave (a reset asked for an address with no account).
    state: Mapped[str] = mapped_column(String(10), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    # A sender owns the row until then (compare-and-set): one message goes out once.
    claimed_until: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(300))  # the server's answer, no body
    message_id: Mapped[str | None] = mapped_column(String(200))  # the same on every retry
    # When a sender last tried, and the HTTP status it got (webhooks' delivery log).
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    last_status: Mapped[int | None] = mapped_column(Integer)
