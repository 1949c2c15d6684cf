"""A tenant's sign-in policy, login tokens, and upstream identity providers.

Only facts: ``idp.policy.decide()`` is where they become a decision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint, false, text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.models.base import Base, utcnow
from idp.models.tenancy import User


class TenantPolicyRow(Base):
    __tablename__ = "tenant_policies"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    mode: Mapped[str] = mapped_column(String(10), default="disabled")
    everyone: Mapped[bool] = mapped_column(Boolean, default=True)
    groups: Mapped[list] = mapped_column(default=list)  # group names
    users: Mapped[list] = mapped_column(default=list)  # user ids
    grace_until: Mapped[datetime | None] = mapped_column()
    grace_skips: Mapped[int | None] = mapped_column(Integer)
    # Factor types; a new row lists every type the registry has (``idp.admin.policy_row``).
    allowed_factors: Mapped[list] = mapped_column()
    roles_allowed: Mapped[list] = mapped_column(default=lambda: ["admin", "mfa-admin", "member"])
    self_disable: Mapped[bool] = mapped_column(Boolean, default=True)
    login_token_bypass: Mapped[bool] = mapped_column(Boolean, default=True)
    # A sign-in link for an administrator is the console in the holder's hands: off unless the
    # tenant turns it on (``idp.journey.login_links.allowed_for``).
    admin_login_links: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Federation: create an account on first upstream sign-in (else only match existing ones).
    federation_jit: Mapped[bool] = mapped_column(Boolean, default=False)
    # The guard (failed-attempt protection).
    captcha_after: Mapped[int] = mapped_column(Integer, default=3)
    lock_after: Mapped[int] = mapped_column(Integer, default=5)
    lock_minutes: Mapped[int] = mapped_column(Integer, default=60)
    lock_email_admins: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Accounts: passwords (NIST SP 800-63B: a minimum length, no composition rules), the
    # forgotten-password link, verified addresses, and people signing themselves up.
    password_min_length: Mapped[int] = mapped_column(Integer, default=8, server_default="8")
    self_service_reset: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    reset_link_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    require_verified_email: Mapped[bool] = mapped_column(Boolean, default=False,
                                                         server_default=false())
    self_registration: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    registration_domains: Mapped[list] = mapped_column(default=list, server_default="[]")
    # Passkeys: a passkey as the whole sign-in (where WebAuthn is allowed), and accounts that
    # keep no password (a passkey is their way in).
    passkey_first: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    passwordless: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Remember this device: for how many days a browser that passed the second step may skip
    # it (0: never), and for whom (everyone of ``remember_roles``, or those in
    # ``remember_groups``).
    remember_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    remember_everyone: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    remember_groups: Mapped[list] = mapped_column(default=list, server_default="[]")
    remember_roles: Mapped[list] = mapped_column(
        default=lambda: ["admin", "mfa-admin", "member"],
        server_default='["admin", "mfa-admin", "member"]')
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class LoginToken(Base):
    """A one-time sign-in link an admin issued; only its hash is kept."""

    __tablename__ = "login_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    # The mail telling the owner about the link (an administrator's link works once it left).
    # The outbox row cannot be deleted while the link exists (``idp tokens purge`` goes first).
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"))

    user: Mapped[User] = relationship(lazy="joined")


class Upstream(Base):
    """An upstream OpenID provider users of the tenant may sign in with."""

    __tablename__ = "upstreams"
    __table_args__ = (UniqueConstraint("tenant_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    issuer: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret_sealed: Mapped[str] = mapped_column(Text)  # encrypted with the SecretBox
    email_domains: Mapped[list] = mapped_column(default=list)
    trust_mfa: Mapped[str] = mapped_column(String(20), default="never")
    # The upstream's acr values that prove MFA, exactly (idp.journey.upstream_trust).
    trusted_acrs: Mapped[list] = mapped_column(default=list, server_default=text("'[]'"))
    # Hosts besides the issuer's its token endpoint and keys may live on (federation.endpoints).
    back_channel_hosts: Mapped[list] = mapped_column(default=list, server_default=text("'[]'"))
    # Its word on an address in ``email_domains`` counts without ``email_verified`` (the
    # organisation runs those mailboxes); off, only a verified address matches or provisions.
    email_authoritative: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Accounts created on first sign-in: None follows the tenant's ``federation_jit``.
    jit: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class UpstreamIdentity(Base):
    """Which local user an upstream subject is."""

    __tablename__ = "upstream_identities"
    __table_args__ = (UniqueConstraint("upstream_id", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    upstream_id: Mapped[int] = mapped_column(ForeignKey("upstreams.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
