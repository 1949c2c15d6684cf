"""The refresh token grant (RFC 6749 6) with rotation and family revocation (RFC 9700 4.14.2).

Each refresh token is used once: using it marks its row rotated and issues a successor in the
same family; presenting a rotated one again revokes the whole family. After client
credentials this is the token endpoint's busiest path (benchmarks/README.md): its statements
(``CLAIM``, ``ROTATE``) are built once, here, and run as Core statements.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from flask import current_app, g
from sqlalchemy import Boolean, bindparam, insert, or_, select, update

from idp import audit, db, hashing, user_status
from idp.models import Token, User
from idp.models.base import utcnow
from idp.oidc import dpop
from idp.oidc.issue import TOKENS, Rotated, lifetimes, revoke_family
from idp.oidc.oauth_client import ALL_METHODS
from idp.oidc.tokens import new_jti


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


SOURCE_COLUMNS = (TOKENS.c.id, TOKENS.c.tenant_id, TOKENS.c.client_pk, TOKENS.c.user_id,
                  TOKENS.c.code_id, TOKENS.c.family, TOKENS.c.scope, TOKENS.c.auth_time,
                  TOKENS.c.acr, TOKENS.c.amr, TOKENS.c.sid)
USERS = User.__table__
SOURCE_COLUMNS += (select(USERS.c.subject).where(USERS.c.id == TOKENS.c.user_id)
                   .correlate(TOKENS).scalar_subquery().label("subject"),)
# Only an active user's token is claimed (``idp.user_status``): deactivating revokes them
# all, and a row that outlived that still refreshes nothing (the careful path says no).
_USER_ACTIVE = (select(USERS.c.id).where(USERS.c.id == TOKENS.c.user_id,
                                        USERS.c.status == user_status.ACTIVE)
                .correlate(TOKENS).exists())
# DPoP (RFC 9449 5): a grant bound to a key is refreshed only with a proof: of the same key for
# a public client (its refresh token is bound to it), of any key for a confidential one (bound
# to its client authentication instead; its new access token is bound to the new key).
_KEY_HELD = or_(TOKENS.c.jkt.is_(None), TOKENS.c.jkt == bindparam("b_jkt"),
                bindparam("b_rekey", type_=Boolean))
CLAIM = (update(TOKENS)
         .where(TOKENS.c.refresh_token_hash == bindparam("b_digest"),
                TOKENS.c.tenant_id == bindparam("b_tenant"),
                TOKENS.c.client_pk == bindparam("b_client"), TOKENS.c.revoked_at.is_(None),
                TOKENS.c.rotated_at.is_(None), TOKENS.c.refresh_expires_at > bindparam("b_now"),
                _USER_ACTIVE, _KEY_HELD)
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
               "access_expires_at", "refresh_expires_at", "jkt"],
              select(_CLAIMED.c.tenant_id, _CLAIMED.c.client_pk, _CLAIMED.c.user_id,
                     _CLAIMED.c.code_id, _CLAIMED.c.family, bindparam("b_jti"),
                     bindparam("b_refresh_hash"), _CLAIMED.c.scope, _CLAIMED.c.auth_time,
                     _CLAIMED.c.acr, _CLAIMED.c.amr, _CLAIMED.c.sid, bindparam("b_now"),
                     bindparam("b_access_expires"), bindparam("b_refresh_expires"),
                     bindparam("b_jkt")))
          # The claimed row's id and subject, the rest as copied (the CTE has one row or none).
          .returning(select(_CLAIMED.c.id).scalar_subquery(), *SOURCE_COLUMNS[1:-1],
                     select(_CLAIMED.c.subject).scalar_subquery()))


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
        proof = g.get("dpop")
        params = {"b_digest": digest, "b_tenant": g.tenant.id, "b_client": client.row.id,
                  "b_now": utcnow(), "b_jkt": proof.jkt if proof else None,
                  "b_rekey": proof is not None and not client.row.is_public}
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
                                     Token.refresh_expires_at, _USER_ACTIVE.label("active"),
                                     Token.jkt)
                              .where(Token.refresh_token_hash == digest,
                                     Token.tenant_id == g.tenant.id)).first()
        if (row is None or row.client_pk != client.row.id or row.revoked_at is not None
                or row.refresh_expires_at is None or row.refresh_expires_at < utcnow()
                or not row.active):
            raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
        self._check_key(row.jkt, client)
        source = RefreshSource(*row[:len(SOURCE_COLUMNS)])
        self._validate_token_scope(source)
        claimed = row.rotated_at is None and session.execute(
            update(Token).where(Token.id == row.id, Token.rotated_at.is_(None))
            .values(rotated_at=utcnow())
        ).rowcount
        if not claimed:
            revoked = revoke_family(row.family, "refresh token reused")
            audit.record(session, row.tenant_id, "oauth.refresh_reused", user_id=row.user_id,
                         client_id=client.get_client_id(), revoked=revoked)
            raise InvalidGrantError("The refresh token was already used.")
        return source

    @staticmethod
    def _check_key(jkt: str | None, client) -> None:
        """The careful path's ``_KEY_HELD``, with the reason; the token stays unused."""
        proof = g.get("dpop")
        if jkt is None or (proof is not None and (proof.jkt == jkt or not client.row.is_public)):
            return
        raise dpop.TokenRequestError(dpop.InvalidProof(
            "This refresh token is DPoP-bound: send a proof of the key it was issued to."
            if client.row.is_public else
            "This grant's tokens are DPoP-bound: send a DPoP proof to refresh them."))

    def authenticate_user(self, refresh_token: RefreshSource):
        if refresh_token.user_id is None or not refresh_token.subject:
            return None
        return TokenUser(refresh_token.user_id, refresh_token.subject)

    def revoke_old_credential(self, refresh_token):
        """Already marked rotated when it was claimed."""
