"""A tenant's branding: the name, logo, colour and support contacts its pages and mail show."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, deferred, mapped_column

from idp.models.base import Base, utcnow


class TenantBranding(Base):
    """One row per tenant that set any branding; no row: the tenant's name and our colours."""

    __tablename__ = "tenant_branding"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    accent: Mapped[str | None] = mapped_column(String(7))  # "#rrggbb", WCAG AA on white both ways
    support_url: Mapped[str | None] = mapped_column(String(500))  # https only
    support_email: Mapped[str | None] = mapped_column(String(320))
    # The logo as we re-encoded it (never the bytes uploaded), read only to serve or mail it.
    logo: Mapped[bytes | None] = deferred(mapped_column(LargeBinary))
    logo_type: Mapped[str | None] = mapped_column(String(20))  # image/png | image/jpeg | image/webp
    logo_hash: Mapped[str | None] = mapped_column(String(64))  # SHA-256 hex of ``logo``
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
