"""The revocation (RFC 7009) and introspection (RFC 7662) endpoints, and how both find the
token they are shown: a user's token by its row (as an access token by its ``jti``, or as a
refresh token by its digest), a service's by its signature alone (``ServiceToken``).
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import current_app, g
from sqlalchemy import select

from idp import audit, db, hashing, user_status
from idp.clients import ClientRef, client_ref
from idp.models import Token
from idp.models.base import utcnow
from idp.oidc import dpop, keys
from idp.oidc.issue import revoke_family
from idp.oidc.oauth_client import ALL_METHODS, CONFIDENTIAL_METHODS
from idp.oidc.subjects import for_client
from idp.oidc.tokens import InvalidToken, verify
from idp.web import issuer


@dataclass
class FoundToken:
    """A token row as presented: as an access token or as a refresh token."""

    row: Token
    kind: str  # "access_token" | "refresh_token"

    def check_client(self, client):
        return self.row.client_pk == client.row.id

    def is_expired(self):
        expires = self.row.access_expires_at if self.kind == "access_token" else self.row.refresh_expires_at
        return expires is None or expires < utcnow()

    def is_revoked(self):
        if self.row.revoked_at is not None:
            return True
        if self.row.user is not None and not user_status.may_sign_in(self.row.user.status):
            return True  # its user was deactivated (which revoked it, unless it outlived that)
        if self.kind == "access_token":
            return self.row.access_revoked_at is not None
        return self.row.rotated_at is not None


def find_token(token_string, hint) -> FoundToken | None:
    if not isinstance(token_string, str) or len(token_string) > 8192:
        return None
    session = db.session()
    if hint != "refresh_token" and token_string.count(".") == 2:
        try:
            claims = verify(keys.current(), token_string,
                            issuer=issuer(), check_expiry=False).claims
        except InvalidToken:
            claims = None
        if claims:
            row = session.scalar(select(Token).where(Token.jti == str(claims.get("jti")),
                                                     Token.tenant_id == g.tenant.id))
            if row:
                return FoundToken(row, "access_token")
            return ServiceToken.of(claims)
    row = session.scalar(select(Token).where(
        Token.refresh_token_hash == hashing.digest("refresh-token", token_string),
        Token.tenant_id == g.tenant.id,
    ))
    return FoundToken(row, "refresh_token") if row else None


REVOKED_JTI = "revoked-jti:{}"


@dataclass
class ServiceToken:
    """A client-credentials access token: no row, the JWT says it all (RFC 9068). It is active
    while signed by a published key of ours, unexpired, its client still exists in this tenant
    and its ``jti`` is not on the revocation list (Redis, kept until the token's ``exp``)."""

    claims: dict
    client: ClientRef
    kind: str = "access_token"

    @classmethod
    def of(cls, claims: dict) -> ServiceToken | None:
        client_id = claims.get("client_id")
        if not isinstance(client_id, str) or claims.get("sub") != client_id or "auth_time" in claims:
            return None  # a user's token whose row is gone: not active
        found = client_ref(g.tenant.id, client_id)
        return cls(claims, found) if found else None

    @property
    def jti(self) -> str:
        return str(self.claims.get("jti"))

    def check_client(self, client):
        return self.client.id == client.row.id

    def is_expired(self):
        exp = self.claims.get("exp")
        return not isinstance(exp, int) or exp <= utcnow().timestamp()

    def is_revoked(self):
        return bool(current_app.extensions["idp.store"].exists(REVOKED_JTI.format(self.jti)))

    def revoke(self) -> None:
        ttl = max(1, int(self.claims["exp"] - utcnow().timestamp()) + 1)
        current_app.extensions["idp.store"].set(REVOKED_JTI.format(self.jti), "1", ex=ttl)

    def introspection(self) -> dict:
        jkt = dpop.bound_key(self.claims)
        body = {"active": True, "client_id": self.client.client_id,
                "token_type": "DPoP" if jkt else "Bearer",
                "scope": self.claims.get("scope", ""), "iss": issuer(), "exp": self.claims["exp"],
                "iat": self.claims.get("iat"), "sub": self.client.client_id}
        if jkt:
            body["cnf"] = {"jkt": jkt}  # RFC 9449 6.2
        return body


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ALL_METHODS

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def revoke_token(self, token: FoundToken | ServiceToken, request):
        if isinstance(token, ServiceToken):
            token.revoke()
            audit.record(db.session(), token.client.tenant_id, "oauth.token_revoked",
                         client_id=token.client.client_id, kind=token.kind)
            return
        # RFC 7009 2.1: revoking a refresh token also ends the access tokens of its grant.
        if token.kind == "refresh_token":
            revoke_family(token.row.family, "revoked by client")
        else:
            token.row.access_revoked_at = utcnow()
        audit.record(db.session(), token.row.tenant_id, "oauth.token_revoked",
                     user_id=token.row.user_id, client_id=token.row.client.client_id,
                     kind=token.kind)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = CONFIDENTIAL_METHODS  # authenticated clients only

    def query_token(self, token_string, token_type_hint):
        return find_token(token_string, token_type_hint)

    def check_permission(self, token: FoundToken | ServiceToken, client, request):
        # Any confidential client of the tenant may introspect (a resource server is one);
        # tokens of another tenant are never found at all.
        owner = token.client if isinstance(token, ServiceToken) else token.row
        return owner.tenant_id == client.row.tenant_id

    def introspect_token(self, token: FoundToken | ServiceToken):
        if isinstance(token, ServiceToken):
            return token.introspection()
        row = token.row
        expires = row.access_expires_at if token.kind == "access_token" else row.refresh_expires_at
        access = token.kind == "access_token"
        body = {
            "active": True,
            "client_id": row.client.client_id,
            "token_type": ("DPoP" if row.jkt else "Bearer") if access else "refresh_token",
            "scope": row.scope,
            "iss": issuer(),
            "exp": int(expires.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "sub": for_client(row.user, row.client) if row.user else row.client.client_id,
        }
        # The e-mail only to whom the token's scope shows it, as userinfo does
        # (``id_token.user_claims``): a pairwise client without the email scope must not be
        # handed what would correlate its users.
        scopes = set(row.scope.split())
        if row.user and ("email" in scopes or ("profile" in scopes
                                               and row.client.subject_type != "pairwise")):
            body["username"] = row.user.email
        if row.auth_time:
            body["auth_time"] = row.auth_time
        if row.acr:
            body["acr"] = row.acr
        # RFC 9449 6.2: the key the token is bound to. A refresh token is bound only for a
        # public client (5); a confidential client's is bound to its authentication.
        if row.jkt and (access or row.client.is_public):
            body["cnf"] = {"jkt": row.jkt}
        return body
