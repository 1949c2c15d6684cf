"""OAuth clients, authorization codes and tokens.

Secrets are stored only as hashes: client secrets are high-entropy, so a keyed SHA-256
(``idp.oidc.secrets``) is right for them; codes and refresh tokens are hashed the same way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.models.base import Base, utcnow
from idp.models.tenancy import Tenant, User


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # None for a public client.
    secret_hash: Mapped[str | None] = mapped_column(String(128))
    redirect_uris: Mapped[list] = mapped_column(default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(default=list)
    grant_types: Mapped[list] = mapped_column(default=list)
    scope: Mapped[str] = mapped_column(Text, default="openid profile email offline_access")
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(10), default="RS256")
    # The lowest acr this client accepts, for every request it makes (None: no floor).
    min_acr: Mapped[str | None] = mapped_column(String(10))
    # Back-Channel Logout 1.0 (2.2): where a logout token is POSTed when a session the client
    # was part of ends (None: nowhere), and whether it needs the ``sid`` (always sent).
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    backchannel_logout_session_required: Mapped[bool] = mapped_column(
        default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="joined")

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None


class AuthorizationCode(Base):
    """One authorization grant: the code and what the user's sign-in proved."""

    __tablename__ = "authorization_codes"
    # The replay check: a client's nonce binds one code, the database refuses a second (a
    # nonce may be 4,096 characters, too long for an index entry: its digest is indexed).
    __table_args__ = (Index("uq_authorization_codes_client_pk_nonce_hash",
                            "client_pk", "nonce_hash", unique=True,
                            postgresql_where=text("nonce_hash IS NOT NULL"),
                            sqlite_where=text("nonce_hash IS NOT NULL")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text)
    nonce_hash: Mapped[str | None] = mapped_column(String(64))  # hashing.digest("nonce", nonce)
    code_challenge: Mapped[str | None] = mapped_column(String(128))
    code_challenge_method: Mapped[str | None] = mapped_column(String(10))
    auth_time: Mapped[int] = mapped_column()
    acr: Mapped[str] = mapped_column(String(20))
    amr: Mapped[list] = mapped_column(default=list)
    sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    # Set atomically on first redemption; a second redemption is a replay (RFC 9700 4.2.4).
    used_at: Mapped[datetime | None] = mapped_column()

    client: Mapped[Client] = relationship(lazy="joined")
    user: Mapped[User] = relationship(lazy="joined")


class Token(Base):
    """An access token (by its JWT ``jti``) and, when issued, its refresh token.

    Refresh tokens rotate: each use marks the row ``rotated_at`` and issues a new row in the
    same ``family``; presenting a rotated refresh token revokes the whole family.
    """

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_pk: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorization_codes.id", ondelete="SET NULL"), index=True
    )
    family: Mapped[str] = mapped_column(String(64), index=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    auth_time: Mapped[int | None] = mapped_column()
    acr: Mapped[str | None] = mapped_column(String(20))
    amr: Mapped[list] = mapped_column(default=list)
    sid: Mapped[str | None] = mapped_column(String(64), index=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    access_expires_at: Mapped[datetime] = mapped_column()
    refresh_expires_at: Mapped[datetime | None] = mapped_column()
    rotated_at: Mapped[datetime | None] = mapped_column()
    # The access token alone revoked (RFC 7009); revoked_at ends the access and refresh token.
    access_revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()

    client: Mapped[Client] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(lazy="joined")
