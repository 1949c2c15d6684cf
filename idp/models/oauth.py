"""OAuth clients, authorization codes and tokens.

Secrets are stored only as hashes: client secrets are high-entropy, so a keyed SHA-256
(``idp.oidc.secrets``) is right for them; codes and refresh tokens are hashed the same way.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.models.base import Base, new_public_id, utcnow
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
    # How the client proves itself at the token, PAR, revocation and introspection endpoints
    # (RFC 7591 2): None for the default of its kind (a secret, or "none" when public);
    # "private_key_jwt" (RFC 7523) with its public keys inline (``jwks``) or at ``jwks_uri``.
    token_endpoint_auth_method: Mapped[str | None] = mapped_column(String(32))
    jwks: Mapped[dict | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    # "public" or "pairwise" (OIDC Core 8); a pairwise client's sector is its redirect URIs'
    # host, or the host of ``sector_identifier_uri`` (OIDC Registration 5).
    subject_type: Mapped[str] = mapped_column(String(10), default="public", server_default="public")
    sector_identifier_uri: Mapped[str | None] = mapped_column(Text)
    # Authorization requests only through PAR (RFC 9126 6), tokens only DPoP-bound (RFC 9449 5.2).
    require_par: Mapped[bool] = mapped_column(default=False, server_default=false())
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Request objects (RFC 9101): the one algorithm accepted (None: any asymmetric one we
    # support), and whether every authorization request must be one.
    request_object_signing_alg: Mapped[str | None] = mapped_column(String(10))
    require_signed_request_object: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Dynamic registration (RFC 7591/7592): the registration access token's hash (None for a
    # client an admin registered), and the metadata it sent that we keep only to show back
    # (client_uri, logo_uri, contacts, tos_uri, policy_uri, software_id, software_version).
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))
    registration_metadata: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tenant: Mapped[Tenant] = relationship(lazy="joined")

    @property
    def is_public(self) -> bool:
        """No way to prove itself: neither a secret nor keys (``private_key_jwt``)."""
        return self.secret_hash is None and self.token_endpoint_auth_method in (None, "none")


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
    # DPoP (RFC 9449 10): the key thumbprint the authorization request bound the code to.
    dpop_jkt: Mapped[str | None] = mapped_column(String(64))
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
    # DPoP (RFC 9449): the JWK SHA-256 thumbprint (RFC 7638) both tokens are bound to, or None.
    jkt: Mapped[str | None] = mapped_column(String(64))

    client: Mapped[Client] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(lazy="joined")


class RegistrationToken(Base):
    """An initial access token (RFC 7591 3): what an admin hands a portal's developers so it
    may register clients itself at ``{issuer}/register``. Stored only as a hash."""

    __tablename__ = "registration_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    public_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_public_id)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    uses_left: Mapped[int | None] = mapped_column()  # None: any number of registrations
    revoked_at: Mapped[datetime | None] = mapped_column()
