"""Webhook endpoints: where a tenant's own systems hear what happens (``idp.notify.webhooks``).

Their deliveries are outbox rows (``channel="webhook"``, ``recipient`` the endpoint's public
id): one durable path out, one delivery log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.models.base import Base, utcnow


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # "ep_...", in URLs and the CLI
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The event types it hears; empty: every type (those added later too).
    event_types: Mapped[list] = mapped_column(default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Why it was turned off, when it was not an administrator (the receiver answered 410 Gone).
    disabled_reason: Mapped[str | None] = mapped_column(String(300))
    # The signing secret ("whsec_..."), encrypted (idp.mfa.secrets.SecretBox): it must be read
    # to sign. After a rotation the previous one signs too, until ``previous_until``.
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
