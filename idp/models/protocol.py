"""A tenant's protocol settings: what its relying parties must do beyond the defaults."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, false
from sqlalchemy.orm import Mapped, mapped_column

from idp.models.base import Base, utcnow


class TenantProtocol(Base):
    """One row per tenant that changed any of these; no row: every default."""

    __tablename__ = "tenant_protocol"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"),
                                           primary_key=True)
    # Every authorization request of every client through PAR (RFC 9126 6).
    require_par: Mapped[bool] = mapped_column(default=False, server_default=false())
    # DPoP proofs must carry a nonce of ours (RFC 9449 8): clients are told it on demand.
    dpop_nonce_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Where dynamically registered clients may send people (RFC 7591 5): host patterns
    # ("portal.example.com", "*.example.com"); empty: any address the usual rules allow.
    registration_redirect_hosts: Mapped[list] = mapped_column(default=list)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
