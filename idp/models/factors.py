"""Second factors: one table for every type (``Authenticator``), the backup codes behind one,
and the tenant's security-question catalogue.

What a factor keeps is in ``data`` and is never a plain secret: TOTP seeds are encrypted,
answers and codes hashed (``idp.mfa.secrets``). Rules live in ``idp.mfa``, not here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.models.base import Base, utcnow


class Authenticator(Base):
    __tablename__ = "authenticators"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict] = mapped_column(default=dict)
    # A unique handle to find the factor by (a WebAuthn credential id), or None.
    lookup: Mapped[str | None] = mapped_column(String(255), unique=True)
    # WebAuthn's signature counter, updated with a compare-and-set (never moves back).
    counter: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column()

    backup_codes: Mapped[list["BackupCode"]] = relationship(
        back_populates="authenticator", cascade="all, delete-orphan", passive_deletes=True
    )


class BackupCode(Base):
    """One backup code, by its keyed hash; ``used_at`` is set once, atomically."""

    __tablename__ = "backup_codes"
    __table_args__ = (UniqueConstraint("authenticator_id", "code_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authenticator_id: Mapped[int] = mapped_column(
        ForeignKey("authenticators.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column()

    authenticator: Mapped[Authenticator] = relationship(back_populates="backup_codes")


class SecurityQuestion(Base):
    """A tenant's catalogue entry; users pick five of the tenant's ten."""

    __tablename__ = "security_questions"
    __table_args__ = (UniqueConstraint("tenant_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(300))
