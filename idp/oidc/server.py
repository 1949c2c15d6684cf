"""Authlib's authorization server, wired to our tables, keys and tenants.

Authlib runs the protocol (grants, client authentication, PKCE, revocation, introspection);
this module supplies what it asks for: ``query_client``, ``save_token``, the code grant's
save/query/delete, the OpenID extension's keys and claims. What Authlib leaves to us — the
single use of codes with revocation on replay (RFC 9700 4.2.4), refresh-token rotation with
family revocation (RFC 9700 4.14.2), ``plain`` PKCE refused — is done here.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (InvalidGrantError, InvalidRequestError, InvalidScopeError,
                                    OAuth2Request, grants)
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import OpenIDCode, UserInfo
from flask import Flask, current_app, g
from sqlalchemy import bindparam, insert, select, update

from idp import audit, db
from idp.cache import Snapshots
from idp.models import AuthorizationCode, Client, Token, User
from idp.journey.facts import essential_acr
from idp import hashing
from idp.oidc.tokens import issue_access_token, new_jti
from idp.policy import Requirements, reported_acr
from idp.web import issuer, settings

SECRET_METHODS = ["client_secret_basic", "client_secret_post"]
ALL_METHODS = SECRET_METHODS + ["none"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def keyring():
    return current_app.extensions["idp.keyring"]


@dataclass(frozen=True)
class ClientRef:
    """A ``Client`` row as requests read it, cached per worker (``idp.cache``)."""

    id: int
    tenant_id: int
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    scope: str
    id_token_signed_response_alg: str
    min_acr: str | None

    @classmethod
    def of(cls, row: Client) -> ClientRef:
        return cls(row.id, row.tenant_id, row.client_id, row.name, row.secret_hash,
                   tuple(row.redirect_uris), tuple(row.post_logout_redirect_uris),
                   tuple(row.grant_types), row.scope, row.id_token_signed_response_alg,
                   row.min_acr)

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None


CLIENTS: Snapshots[tuple[int, str], ClientRef] = Snapshots("clients")


class OAuthClient:
    """Authlib's view of a client (ClientMixin)."""

    def __init__(self, row: ClientRef):
        self.row = row
        self.id_token_signed_response_alg = row.id_token_signed_response_alg

    def get_client_id(self):
        return self.row.client_id

    def get_default_redirect_uri(self):
        return None  # OIDC requires redirect_uri; never guess one

    def get_allowed_scope(self, scope):
        allowed = set(self.row.scope.split())
        return " ".join(s for s in (scope or "").split() if s in allowed)

    def scope_beyond(self, scope) -> list[str]:
        """The requested scopes this client is not registered for."""
        allowed = set(self.row.scope.split())
        return [s for s in (scope or "").split() if s not in allowed]

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.row.redirect_uris  # exact string match

    def check_client_secret(self, client_secret):
        return hashing.matches("client-secret", client_secret, self.row.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        if self.row.is_public:
            return method == "none"
        return method in SECRET_METHODS

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in self.row.grant_types


class IssuedCode:
    """Authlib's view of an ``AuthorizationCode`` row (AuthorizationCodeMixin)."""

    def __init__(self, row: AuthorizationCode):
        self.row = row

    def get_redirect_uri(self):
        return self.row.redirect_uri

    def get_scope(self):
        return self.row.scope

    def get_nonce(self):
        return self.row.nonce

    def get_auth_time(self):
        return self.row.auth_time

    def get_acr(self):
        return self.row.acr

    def get_amr(self):
        return list(self.row.amr)


def query_client(client_id) -> OAuthClient | None:
    if not isinstance(client_id, str) or not 0 < len(client_id) <= 64 or "\x00" in client_id:
        return None  # no such client (a NUL would reach PostgreSQL from a Basic header)
    tenant_id = g.tenant.id
    found = CLIENTS.get((tenant_id, client_id), lambda: _load_client(tenant_id, client_id))
    return OAuthClient(found) if found else None


def _load_client(tenant_id: int, client_id: str) -> ClientRef | None:
    row = db.session().scalar(
        select(Client).where(Client.client_id == client_id, Client.tenant_id == tenant_id))
    return ClientRef.of(row) if row else None


def _jwt_claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                   include_refresh_token=True):
    cfg = settings()
    scope = scope or ""
    source = g.get("token_source")  # the code or refresh row the token continues
    stored: Rotated | None = g.get("token_stored")  # its row is written already
    access, _ = issue_access_token(
        keyring(), issuer=issuer(), client_id=client.get_client_id(),
        subject=user.subject if user else None, scope=scope, ttl=cfg.access_token_ttl,
        auth_time=getattr(source, "auth_time", None), acr=getattr(source, "acr", None),
        jti=stored.jti if stored else None, now=stored.now if stored else None,
    )
    token = {"token_type": "Bearer", "access_token": access, "expires_in": cfg.access_token_ttl,
             "scope": scope}
    # Refresh tokens only for offline access (OIDC Core 11) and clients allowed the grant.
    if (include_refresh_token and user is not None and "offline_access" in scope.split()
            and client.check_grant_type("refresh_token")):
        token["refresh_token"] = stored.refresh_token if stored else secrets.token_urlsafe(32)
    return token


def lifetimes(issued_at: datetime, refresh: bool) -> dict:
    """When a token row's access token and refresh token (if it has one) expire."""
    cfg = settings()
    return {"access_expires_at": issued_at + timedelta(seconds=cfg.access_token_ttl),
            "refresh_expires_at": (issued_at + timedelta(seconds=cfg.refresh_token_ttl)
                                   if refresh else None)}


def save_token(token: dict, request) -> None:
    if request.payload.grant_type == "client_credentials":
        return  # self-contained: nothing to store (see ServiceToken)
    if g.get("token_stored") is not None:
        return  # written with the claim of the refresh token it replaces (ROTATE)
    session = db.session()
    client: ClientRef = request.client.row
    claims = _jwt_claims(token["access_token"])
    source = g.get("token_source")
    if isinstance(source, RefreshSource):
        family, code_id = source.family, source.code_id
    else:
        family, code_id = secrets.token_urlsafe(16), getattr(source, "id", None)
    now = _now()
    refresh = token.get("refresh_token")
    session.connection().execute(insert(TOKENS), dict(
        tenant_id=client.tenant_id,
        client_pk=client.id,
        user_id=request.user.id if request.user else None,
        code_id=code_id,
        family=family,
        jti=claims["jti"],
        refresh_token_hash=hashing.digest("refresh-token", refresh) if refresh else None,
        scope=token.get("scope", ""),
        auth_time=getattr(source, "auth_time", None),
        acr=getattr(source, "acr", None),
        amr=list(getattr(source, "amr", None) or []),
        sid=getattr(source, "sid", None),
        issued_at=now,
        **lifetimes(now, refresh=bool(refresh)),
    ))


def revoke_family(family: str, reason: str) -> int:
    result = db.session().execute(
        update(Token).where(Token.family == family, Token.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    return result.rowcount


def _acr_to_report(reached: str, params: dict) -> str:
    """The level reached, in the terms of the request's essential ``acr`` (the policy's rule)."""
    return reported_acr(reached, Requirements(essential_acr=essential_acr(params)))


class S256Only(CodeChallenge):
    """PKCE with S256 only: ``plain`` (and its implicit default) is refused (RFC 9700 2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.client.row.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must use PKCE (code_challenge with S256).")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256; plain is not allowed.")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.row.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS

    def save_authorization_code(self, code, request):
        sso = g.sso
        data = request.payload.data
        client: ClientRef = request.client.row
        row = AuthorizationCode(
            tenant_id=client.tenant_id,
            client_pk=client.id,
            user_id=request.user.id,
            code_hash=hashing.digest("code", code),
            redirect_uri=data["redirect_uri"],
            scope=request.client.get_allowed_scope(data.get("scope", "")),
            nonce=data.get("nonce"),
            nonce_hash=nonce_digest(data.get("nonce")),
            code_challenge=data.get("code_challenge"),
            code_challenge_method=data.get("code_challenge_method"),
            auth_time=sso.auth_time,
            acr=_acr_to_report(sso.acr, data),
            amr=list(sso.amr),
            sid=sso.sid,
            expires_at=_now() + timedelta(seconds=settings().code_ttl),
        )
        db.session().add(row)
        db.session().flush()
        return row

    def query_authorization_code(self, code, client):
        if not isinstance(code, str) or len(code) > 256:
            return None
        session = db.session()
        row = session.scalar(select(AuthorizationCode).where(
            AuthorizationCode.code_hash == hashing.digest("code", code),
            AuthorizationCode.tenant_id == g.tenant.id,
        ))
        if row is None or row.client_pk != client.row.id:
            return None
        # Claim the code atomically: of two concurrent redemptions only one updates the row.
        claimed = session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=_now())
        ).rowcount
        if not claimed:
            # A replay: revoke everything the code issued (RFC 9700 4.2.4, RFC 6749 4.1.2).
            families = session.scalars(select(Token.family).where(Token.code_id == row.id)).all()
            for family in set(families):
                revoke_family(family, "code replayed")
            audit.record(session, row.tenant_id, "oauth.code_replayed", user_id=row.user_id,
                         client_id=client.get_client_id(), revoked_families=len(set(families)))
            return None
        if row.expires_at < _now():
            return None
        g.token_source = row
        return IssuedCode(row)

    def delete_authorization_code(self, authorization_code):
        """Kept, marked used: a later replay must still be recognised."""

    def authenticate_user(self, authorization_code):
        return authorization_code.row.user


@dataclass(frozen=True)
class RefreshSource:
    """What a claimed refresh token passes on to the tokens that replace it."""

    id: int
    tenant_id: int
    client_pk: int
    user_id: int | None
    code_id: int | None
    family: str
    scope: str
    auth_time: int | None
    acr: str | None
    amr: list
    sid: str | None
    subject: str | None  # the user's, read in the same statement

    def get_scope(self):
        return self.scope

    def check_client(self, client):
        return self.client_pk == client.row.id


@dataclass(frozen=True)
class TokenUser:
    """The user a refresh continues: all the token endpoint reads of them."""

    id: int
    subject: str


TOKENS = Token.__table__  # the hot path runs Core statements: no ORM bookkeeping per request
SOURCE_COLUMNS = (TOKENS.c.id, TOKENS.c.tenant_id, TOKENS.c.client_pk, TOKENS.c.user_id,
                  TOKENS.c.code_id, TOKENS.c.family, TOKENS.c.scope, TOKENS.c.auth_time,
                  TOKENS.c.acr, TOKENS.c.amr, TOKENS.c.sid)
USERS = User.__table__
SOURCE_COLUMNS += (select(USERS.c.subject).where(USERS.c.id == TOKENS.c.user_id)
                   .correlate(TOKENS).scalar_subquery().label("subject"),)
CLAIM = (update(TOKENS)
         .where(TOKENS.c.refresh_token_hash == bindparam("b_digest"),
                TOKENS.c.tenant_id == bindparam("b_tenant"),
                TOKENS.c.client_pk == bindparam("b_client"), TOKENS.c.revoked_at.is_(None),
                TOKENS.c.rotated_at.is_(None), TOKENS.c.refresh_expires_at > bindparam("b_now"))
         .values(rotated_at=bindparam("b_now"))
         .returning(*SOURCE_COLUMNS))


# PostgreSQL: the claim and the successor's INSERT in one statement, run in autocommit: a
# single round trip instead of BEGIN, UPDATE, INSERT, COMMIT. The successor's jti, refresh
# token and times are made beforehand; the access token is signed once the row is written.
# The successor always has a refresh token: the claimed one was issued for offline_access
# (generate_token's rule), and this path keeps its scope (a narrower one goes the careful way).
_CLAIMED = CLAIM.cte("claimed")
ROTATE = (insert(TOKENS)
          .from_select(
              ["tenant_id", "client_pk", "user_id", "code_id", "family", "jti",
               "refresh_token_hash", "scope", "auth_time", "acr", "amr", "sid", "issued_at",
               "access_expires_at", "refresh_expires_at"],
              select(_CLAIMED.c.tenant_id, _CLAIMED.c.client_pk, _CLAIMED.c.user_id,
                     _CLAIMED.c.code_id, _CLAIMED.c.family, bindparam("b_jti"),
                     bindparam("b_refresh_hash"), _CLAIMED.c.scope, _CLAIMED.c.auth_time,
                     _CLAIMED.c.acr, _CLAIMED.c.amr, _CLAIMED.c.sid, bindparam("b_now"),
                     bindparam("b_access_expires"), bindparam("b_refresh_expires")))
          # The claimed row's id and subject, the rest as copied (the CTE has one row or none).
          .returning(select(_CLAIMED.c.id).scalar_subquery(), *SOURCE_COLUMNS[1:-1],
                     select(_CLAIMED.c.subject).scalar_subquery()))


@dataclass(frozen=True)
class Rotated:
    """The successor of a refresh token, written before its access token is signed."""

    jti: str
    refresh_token: str
    now: int


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Refresh with rotation. The usual path claims the token and writes its successor at
    once: one ``UPDATE … RETURNING`` that checks and claims (hash, tenant, client, not revoked,
    not expired, not rotated) and returns its user's subject, with the INSERT of the
    successor; on PostgreSQL both in one autocommitted statement (ROTATE), on SQLite two in
    the request's transaction. Anything else takes the careful path, which tells a replay
    (revoke the family) from a token that is merely wrong."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True

    def validate_token_request(self):
        client = self._validate_request_client()
        self.request.client = client
        presented = self.request.form.get("refresh_token")
        if not presented:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        if not isinstance(presented, str) or len(presented) > 256:
            raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
        digest = hashing.digest("refresh-token", presented)
        # A narrower scope must be checked before the token is spent: the careful path.
        source = None if self.request.payload.scope else self._claim(digest, client)
        if source is None:
            source = self._careful(digest, client)
        g.token_source = source
        self.request.refresh_token = source

    def _claim(self, digest: str, client) -> RefreshSource | None:
        params = {"b_digest": digest, "b_tenant": g.tenant.id, "b_client": client.row.id,
                  "b_now": _now()}
        autocommit = current_app.extensions["idp.autocommit"]
        if autocommit is None:
            row = db.session().connection().execute(CLAIM, params).first()
            return RefreshSource(*row) if row else None
        stored = Rotated(new_jti(), secrets.token_urlsafe(32), int(params["b_now"].timestamp()))
        expires = lifetimes(params["b_now"], refresh=True)
        with autocommit.connect() as connection:
            row = connection.execute(ROTATE, params | {
                "b_jti": stored.jti,
                "b_refresh_hash": hashing.digest("refresh-token", stored.refresh_token),
                "b_access_expires": expires["access_expires_at"],
                "b_refresh_expires": expires["refresh_expires_at"],
            }).first()
        if row is None:
            return None
        g.token_stored = stored
        return RefreshSource(*row)

    def _careful(self, digest: str, client) -> RefreshSource:
        session = db.session()
        row = session.execute(select(*SOURCE_COLUMNS, Token.revoked_at, Token.rotated_at,
                                     Token.refresh_expires_at)
                              .where(Token.refresh_token_hash == digest,
                                     Token.tenant_id == g.tenant.id)).first()
        if (row is None or row.client_pk != client.row.id or row.revoked_at is not None
                or row.refresh_expires_at is None or row.refresh_expires_at < _now()):
            raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
        source = RefreshSource(*row[:len(SOURCE_COLUMNS)])
        self._validate_token_scope(source)
        claimed = row.rotated_at is None and session.execute(
            update(Token).where(Token.id == row.id, Token.rotated_at.is_(None))
            .values(rotated_at=_now())
        ).rowcount
        if not claimed:
            revoked = revoke_family(row.family, "refresh token reused")
            audit.record(session, row.tenant_id, "oauth.refresh_reused", user_id=row.user_id,
                         client_id=client.get_client_id(), revoked=revoked)
            raise InvalidGrantError("The refresh token was already used.")
        return source

    def authenticate_user(self, refresh_token: RefreshSource):
        if refresh_token.user_id is None or not refresh_token.subject:
            return None
        return TokenUser(refresh_token.user_id, refresh_token.subject)

    def revoke_old_credential(self, refresh_token):
        """Already marked rotated when it was claimed."""


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """A service's own token. Its scope is what the client asked for, within what it is
    registered for (``invalid_scope`` beyond that); without a ``scope`` parameter, all of the
    registered scope (RFC 6749 3.3)."""

    TOKEN_ENDPOINT_AUTH_METHODS = SECRET_METHODS

    def validate_token_request(self):
        super().validate_token_request()
        requested = self.request.payload.scope
        beyond = self.client.scope_beyond(requested)
        if beyond:
            raise InvalidScopeError(f"This client may not ask for: {' '.join(beyond)}.")
        self.request.scope = " ".join(dict.fromkeys((requested or self.client.row.scope).split()))

    @hooked
    def create_token_response(self):
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


@dataclass
class FoundToken:
    """A token row as presented: as an access token or as a refresh token."""

    row: Token
    kind: str  # "access_token" | "refresh_token"

    def check_client(self, client):
        return self.row.client_pk == client.row.id

    def is_expired(self):
        expires = self.row.access_expires_at if self.kind == "access_token" else self.row.refresh_expires_at
        return expires is None or expires < _now()

    def is_revoked(self):
        if self.row.revoked_at is not None:
            return True
        if self.kind == "access_token":
            return self.row.access_revoked_at is not None
        return self.row.rotated_at is not None


def find_token(token_string, hint) -> FoundToken | None:
    if not isinstance(token_string, str) or len(token_string) > 8192:
        return None
    session = db.session()
    if hint != "refresh_token" and token_string.count(".") == 2:
        from idp.oidc.tokens import InvalidToken, verify

        try:
            claims = verify(keyring(), token_string, issuer=issuer(), check_expiry=False).claims
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
        found = query_client(client_id)
        return cls(claims, found.row) if found else None

    @property
    def jti(self) -> str:
        return str(self.claims.get("jti"))

    def check_client(self, client):
        return self.client.id == client.row.id

    def is_expired(self):
        exp = self.claims.get("exp")
        return not isinstance(exp, int) or exp <= _now().timestamp()

    def is_revoked(self):
        return bool(current_app.extensions["idp.store"].exists(REVOKED_JTI.format(self.jti)))

    def revoke(self) -> None:
        ttl = max(1, int(self.claims["exp"] - _now().timestamp()) + 1)
        current_app.extensions["idp.store"].set(REVOKED_JTI.format(self.jti), "1", ex=ttl)

    def introspection(self) -> dict:
        return {"active": True, "client_id": self.client.client_id, "token_type": "Bearer",
                "scope": self.claims.get("scope", ""), "iss": issuer(), "exp": self.claims["exp"],
                "iat": self.claims.get("iat"), "sub": self.client.client_id}


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
            token.row.access_revoked_at = _now()
        audit.record(db.session(), token.row.tenant_id, "oauth.token_revoked",
                     user_id=token.row.user_id, client_id=token.row.client.client_id,
                     kind=token.kind)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = SECRET_METHODS  # authenticated clients only

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
        body = {
            "active": True,
            "client_id": row.client.client_id,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": row.scope,
            "iss": issuer(),
            "exp": int(expires.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "sub": row.user.subject if row.user else row.client.client_id,
        }
        if row.user:
            body["username"] = row.user.email
        if row.auth_time:
            body["auth_time"] = row.auth_time
        if row.acr:
            body["acr"] = row.acr
        return body


def user_claims(user: User, scope: str) -> dict:
    scopes = set((scope or "").split())
    claims = {"sub": user.subject}
    if "profile" in scopes:
        claims["name"] = user.name
        claims["preferred_username"] = user.email
    if "email" in scopes:
        claims["email"] = user.email
        claims["email_verified"] = False
    return claims


def nonce_digest(nonce: str | None) -> str | None:
    """What the replay check looks a nonce up by (migration 0007 computes the same)."""
    return hashing.digest("nonce", nonce) if nonce else None


class OpenIDExtension(OpenIDCode):
    def exists_nonce(self, nonce, request):
        # A nonce already bound to a code of this client is a replayed request. Authlib asks
        # twice per response (for consent, then to answer); the code is saved after both.
        # Codes are flushed as they are saved, so nothing pending needs flushing for this read
        # (what is, an audit event or a factor's bookkeeping, goes with the code's INSERT).
        key = (request.client.row.id, nonce)
        seen = g.setdefault("idp.nonces", {})
        if key not in seen:
            session = db.session()
            with session.no_autoflush:
                seen[key] = session.scalar(select(AuthorizationCode.id).where(
                    AuthorizationCode.client_pk == request.client.row.id,
                    AuthorizationCode.nonce_hash == nonce_digest(nonce),
                    AuthorizationCode.nonce == nonce,
                ).limit(1)) is not None
        return seen[key]

    def resolve_client_private_key(self, client):
        return keyring().active(self.get_client_algorithm(client))[1]

    def get_client_algorithm(self, client):
        return client.id_token_signed_response_alg or "RS256"

    def get_encode_header(self, client):
        alg = self.get_client_algorithm(client)
        return {"alg": alg, "kid": keyring().active(alg)[0], "typ": "JWT"}

    def get_client_claims(self, client):
        import time

        now = int(time.time())
        return {"iss": issuer(), "aud": [client.get_client_id()], "iat": now,
                "exp": now + settings().id_token_ttl}

    def get_authorization_code_claims(self, authorization_code):
        authorization_code = authorization_code.row
        claims = {"auth_time": authorization_code.auth_time, "acr": authorization_code.acr,
                  "amr": list(authorization_code.amr)}
        if authorization_code.nonce:
            claims["nonce"] = authorization_code.nonce
        if authorization_code.sid:
            claims["sid"] = authorization_code.sid
        return claims

    def generate_user_info(self, user, scope):
        return UserInfo(user_claims(user, scope))


@dataclass(frozen=True)
class PlainResponse:
    """An endpoint's answer as idp.oidc.direct sends it: what Authlib's Flask integration puts
    in a ``Response`` (the JSON body, its headers, then Content-Length), without building one."""

    status_code: int
    headers: list
    data: bytes


class Server(AuthorizationServer):
    def handle_response(self, status_code, payload, headers):
        if not g.get("plain_response"):
            return super().handle_response(status_code, payload, headers)
        body = (current_app.json.dumps(payload) if isinstance(payload, dict) else payload).encode()
        return PlainResponse(status_code, list(headers) + [("Content-Length", str(len(body)))], body)

    def create_oauth2_request(self, request):
        # The authorization endpoint and idp.oidc.direct hand us requests of their own.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def create_token_response(self, request=None):
        # "Request and response parameters MUST NOT be included more than once" (RFC 6749
        # 3.2): which of two refresh tokens or scopes was meant is not ours to guess.
        request = self.create_oauth2_request(request)
        repeated = [name for name, values in request.payload.datalist.items() if len(values) > 1]
        if repeated:
            return self.handle_error_response(
                request, InvalidRequestError(f"Multiple '{repeated[0]}' in request."))
        return super().create_token_response(request)


def init_app(app: Flask) -> Server:
    server = Server()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_token)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True), OpenIDExtension()])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(ClientCredentialsGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    app.extensions["idp.oauth"] = server
    return server
