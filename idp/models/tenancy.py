"""Tenants, their users and groups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Index, String, Table, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.models.base import Base, new_public_id, utcnow


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


user_groups = Table(
    "user_groups",
    Base.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    # A group's members (the API's group filter) without reading every membership.
    Index("ix_user_groups_group", "group_id", "user_id"),
)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),
                      Index("ix_groups_tenant_external_id", "tenant_id", "external_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # The group's id in SCIM and the admin API: random, stable, never the row's number.
    public_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_public_id)
    name: Mapped[str] = mapped_column(String(200))
    # The provisioning client's own id for the group (SCIM ``externalId``).
    external_id: Mapped[str | None] = mapped_column(String(255))
    # None for groups made before these were kept (migration 0017).
    created_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column()


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "email"),
        # The console's search (a substring of the email or name) on PostgreSQL: trigram
        # indexes (pg_trgm, a trusted extension). SQLite scans; its tenants are small.
        Index("ix_users_email_trgm", "email", postgresql_using="gin",
              postgresql_ops={"email": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        Index("ix_users_name_trgm", "name", postgresql_using="gin",
              postgresql_ops={"name": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
        Index("ix_users_tenant_external_id", "tenant_id", "external_id"),
        # The admin API's list walks users by id under filters (migration 0018): one status
        # in id order.
        Index("ix_users_tenant_status_id", "tenant_id", "status", "id"),
        # The beginning of an address (SCIM's userName sw, the API's email_prefix): LIKE
        # 'prefix%' under any collation (migration 0017).
        Index("ix_users_tenant_email_pattern", "tenant_id", "email",
              postgresql_ops={"email": "varchar_pattern_ops"}).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # The OIDC `sub`: random, stable, never reused, never the email.
    subject: Mapped[str] = mapped_column(String(64), unique=True, default=new_public_id)
    # Stored normalised (see idp.addresses.normalise_email).
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    # As a provisioning client sent them (SCIM ``name.givenName``/``familyName``); ``name`` is
    # the full name people see.
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    # The provisioning client's own id for the user (SCIM ``externalId``).
    external_id: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="member")  # admin | mfa-admin | member
    # "active"; "invited" until the invitation is accepted; "deactivated" by an admin (cannot
    # sign in; kept, with everything they own, until reactivated or deleted).
    status: Mapped[str] = mapped_column(String(12), default="active", server_default="active")
    # True only once the user followed a verification link or accepted an invitation.
    email_verified: Mapped[bool] = mapped_column(default=False, server_default=false())
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # Per-user MFA state set by admins (idp.policy.AdminState) and the enrollment grace used.
    mfa_admin_state: Mapped[str] = mapped_column(String(10), default="default", server_default="default")
    mfa_must_reenroll: Mapped[bool] = mapped_column(default=False, server_default=false())
    mfa_skips_used: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The last change of what SCIM shows of the user (``meta.lastModified``); None: none since
    # it was created.
    updated_at: Mapped[datetime | None] = mapped_column()
    password_changed_at: Mapped[datetime | None] = mapped_column()
    # Set when the user removed their password to sign in with a passkey alone (cleared when
    # one is set again): such an account, unlike one that never had a password, may set one
    # on its account page and by a reset link.
    password_removed_at: Mapped[datetime | None] = mapped_column()
    # The language the user reads (``idp.i18n.LANGUAGES``): the page's when they last signed
    # in or chose one on their account page; None until then. Mail to them speaks it
    # (``idp.notify.outbox.mail``), not the language of whoever caused the message.
    locale: Mapped[str | None] = mapped_column(String(8))

    tenant: Mapped[Tenant] = relationship()
    groups: Mapped[list[Group]] = relationship(secondary=user_groups, lazy="select")
    # Read with the user in one statement by the sign-in (``directory.find_user``); written
    # only through ``Authenticator`` rows, so this list is what was read, not what was added.
    authenticators: Mapped[list["Authenticator"]] = relationship(
        viewonly=True, lazy="select", order_by="Authenticator.id")
