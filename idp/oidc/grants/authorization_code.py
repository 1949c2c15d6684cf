"""The authorization code grant (RFC 6749 4.1, OIDC Core 3.1) with PKCE ``S256`` only.

A code is kept when redeemed, marked used in the same ``UPDATE`` that claims it: of two
concurrent redemptions only one wins, and a later replay is recognised and revokes every
token the code issued (RFC 9700 4.2.4, RFC 6749 4.1.2). The code's row carries what the
sign-in proved into the ID token (``IssuedCode``'s getters, ``idp.oidc.id_token``) and into
the tokens (``g.token_source``, ``idp.oidc.issue``).
"""

from __future__ import annotations

from datetime import timedelta

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import g
from sqlalchemy import select, update
from sqlalchemy.orm import lazyload
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from idp import db, hashing
from idp.clients import ClientRef
from idp.journey.facts import essential_acr
from idp.models import AuthorizationCode
from idp.models.base import utcnow
from idp.oidc.id_token import nonce_digest
from idp.oidc.issue import replayed
from idp.oidc.oauth_client import ALL_METHODS
from idp.policy import Requirements, reported_acr
from idp.web import settings


class IssuedCode:
    """Authlib's view of an ``AuthorizationCode`` row (AuthorizationCodeMixin). Its getters
    are what the ID token says of the sign-in (Authlib's ``OpenIDCode`` reads them)."""

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

    def get_sid(self):
        return self.row.sid


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
        """The code, unless the client has one bound to this nonce already: the database
        refuses the second (a unique index, migration 0011), and the request is a replay."""
        sso = g.sso
        data = request.payload.data
        client: ClientRef = request.client.row
        session = db.session()
        upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        # A Core statement on the table (the ORM's bulk path costs more than the row itself);
        # what the session holds pending (audit events, a factor's last use) goes at commit.
        saved = session.connection().execute(upsert(AuthorizationCode.__table__).values(
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
            dpop_jkt=data.get("dpop_jkt"),  # checked at the authorization endpoint
            auth_time=sso.auth_time,
            acr=_acr_to_report(sso.acr, data),
            amr=list(sso.amr),
            sid=sso.public_id,  # never the sid itself: it is the browser's cookie
            expires_at=utcnow() + timedelta(seconds=settings().code_ttl),
        ).on_conflict_do_nothing().returning(AuthorizationCode.__table__.c.id)).scalar()
        if saved is None:
            raise InvalidRequestError("This request's nonce was used already: it is a replay. "
                                      "Start again from the application.",
                                      redirect_uri=data["redirect_uri"])

    def query_authorization_code(self, code, client):
        if not isinstance(code, str) or len(code) > 256:
            return None
        session = db.session()
        row = session.scalar(select(AuthorizationCode).where(
            AuthorizationCode.code_hash == hashing.digest("code", code),
            AuthorizationCode.tenant_id == g.tenant.id,
        ).options(lazyload(AuthorizationCode.client)))  # the client: the request's snapshot
        if row is None or row.client_pk != client.row.id:
            return None
        if row.used_at is None and row.dpop_jkt is not None:
            # RFC 9449 10: a code bound to a key (dpop_jkt) is redeemed only with a proof of
            # that key; it stays unused, for the client that holds the key.
            proof = g.get("dpop")
            if proof is None or proof.jkt != row.dpop_jkt:
                raise InvalidGrantError("The authorization code is bound to a DPoP key "
                                        "(dpop_jkt): redeem it with a proof of that key.")
        if row.used_at is not None or not self._claim(session, row):
            # A replay: revoke everything the code issued (RFC 9700 4.2.4, RFC 6749 4.1.2).
            replayed(session, row, client.get_client_id())
            return None
        if row.expires_at < utcnow():
            return None
        g.token_source = row
        return IssuedCode(row)

    @staticmethod
    def _claim(session, row: AuthorizationCode) -> bool:
        """Claim the code atomically: of two concurrent redemptions only one updates the row.
        On PostgreSQL the claim is made with the token's INSERT, in one statement
        (``idp.oidc.issue.save_token``): here it only reads as claimable."""
        if session.get_bind().dialect.name == "postgresql":
            g.code_to_claim = row.id
            return True
        return bool(session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
            .values(used_at=utcnow())
        ).rowcount)

    def delete_authorization_code(self, authorization_code):
        """Kept, marked used: a later replay must still be recognised."""

    def authenticate_user(self, authorization_code):
        return authorization_code.row.user
