"""What the token endpoint hands out and keeps, for every grant: the token response
(``generate_token``), its row (``save_token``, ``lifetimes``), and the end of a grant
(``revoke_family``) or of what was issued under a user's SSO sessions (``revoke_sessions``).

A grant tells these what the new tokens continue through ``g.token_source``: the claimed
``AuthorizationCode`` row, or the refresh token's ``RefreshSource``; their ``auth_time`` and
``acr`` go into the access token and its row. A refresh on PostgreSQL writes its successor's
row while claiming the old one (``idp.oidc.grants.refresh_token``) and leaves the ``Rotated``
it wrote in ``g.token_stored``: the access token is signed with that row's ``jti`` and time,
and nothing is written again.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import g
from authlib.oauth2.rfc6749 import InvalidGrantError
from sqlalchemy import bindparam, insert, literal, or_, select, update

from idp import audit, db, hashing
from idp.clients import ClientRef
from idp.models import AuthorizationCode, Token
from idp.models.base import utcnow
from idp.oidc import keys
from idp.oidc.subjects import for_client
from idp.oidc.tokens import issue_access_token
from idp.web import issuer, settings

TOKENS = Token.__table__  # the hot path runs Core statements: no ORM bookkeeping per request
CODES = AuthorizationCode.__table__
# The code's claim, for the INSERT of its first tokens on PostgreSQL (a data-modifying CTE:
# one row when it was still unused, none when another redemption took it).
CLAIMED_CODE = (update(CODES)
                .where(CODES.c.id == bindparam("b_code"), CODES.c.used_at.is_(None))
                .values(used_at=bindparam("b_now"))
                .returning(CODES.c.id)
                .cte("claimed_code"))


@dataclass(frozen=True)
class Rotated:
    """The successor of a refresh token, written before its access token is signed."""

    jti: str
    refresh_token: str
    now: int


def _jwt_claims(access_token: str) -> dict:
    payload = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def generate_token(grant_type, client, user=None, scope=None, expires_in=None,
                   include_refresh_token=True):
    cfg = settings()
    scope = scope or ""
    source = g.get("token_source")  # the code or refresh row the token continues
    stored: Rotated | None = g.get("token_stored")  # its row is written already
    proof = g.get("dpop")  # RFC 9449 5: a proof came with the request, the token is bound
    access, _ = issue_access_token(
        keys.current(), issuer=issuer(),
        client_id=client.get_client_id(), subject=for_client(user, client.row) if user else None,
        scope=scope,
        ttl=cfg.access_token_ttl, auth_time=getattr(source, "auth_time", None),
        acr=getattr(source, "acr", None), jti=stored.jti if stored else None,
        now=stored.now if stored else None, jkt=proof.jkt if proof else None,
    )
    token = {"token_type": "DPoP" if proof else "Bearer", "access_token": access,
             "expires_in": cfg.access_token_ttl, "scope": scope}
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
        return  # self-contained: nothing to store (see idp.oidc.endpoints.ServiceToken)
    if g.get("token_stored") is not None:
        return  # written with the claim of the refresh token it replaces (ROTATE)
    session = db.session()
    client: ClientRef = request.client.row
    claims = _jwt_claims(token["access_token"])
    source = g.get("token_source")
    if isinstance(source, AuthorizationCode):
        family, code_id = secrets.token_urlsafe(16), source.id  # a new grant, a family of its own
    else:
        family, code_id = source.family, source.code_id  # a refresh: its successor, same family
    now = utcnow()
    refresh = token.get("refresh_token")
    values = dict(
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
        jkt=g.dpop.jkt if g.get("dpop") else None,
        issued_at=now,
        **lifetimes(now, refresh=bool(refresh)),
    )
    claim = g.pop("code_to_claim", None)
    if claim is None:
        session.connection().execute(insert(TOKENS), values)
        return
    # PostgreSQL: the code is claimed by the statement that writes its first tokens. Of two
    # concurrent redemptions the second waits for the first's row, finds it used, writes
    # nothing, and is told it is a replay (the first's tokens, committed by then, end).
    written = session.connection().execute(
        insert(TOKENS).from_select(list(values), select(*(
            CLAIMED_CODE.c.id if name == "code_id" else literal(value, TOKENS.c[name].type)
            for name, value in values.items()))).returning(TOKENS.c.id),
        {"b_code": claim, "b_now": now}).first()
    if written is None:
        replayed(session, source, client.client_id)
        raise InvalidGrantError("The authorization code was used already.")


def revoke_family(family: str, reason: str) -> int:
    """End a grant: every token row of the family it started (a replayed code, a reused or
    revoked refresh token)."""
    result = db.session().execute(
        update(Token).where(Token.family == family, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount


def revoke_sessions(tenant_id: int, user_id: int, *, under: list[str] | None = None,
                    keep: list[str] = ()) -> int:
    """End a user's live tokens issued under the SSO sessions named ``under`` (the ``sid``
    each token carries); with ``under`` None, all of them but those issued under ``keep``
    (tokens of sessions long ended, or older than ``sid``, included). The count ended."""
    now = utcnow()
    where = [Token.tenant_id == tenant_id, Token.user_id == user_id, Token.revoked_at.is_(None),
             or_(Token.access_expires_at > now, Token.refresh_expires_at > now)]
    if under is not None:
        where.append(Token.sid.in_(under))
    elif keep:
        where.append(or_(Token.sid.is_(None), Token.sid.not_in(keep)))
    return db.session().execute(update(Token).where(*where).values(revoked_at=now)).rowcount


def replayed(session, row: AuthorizationCode, client_id: str) -> None:
    """A code redeemed again: every token it issued ends, and the audit says so."""
    families = set(session.scalars(select(Token.family).where(Token.code_id == row.id)).all())
    for family in families:
        revoke_family(family, "code replayed")
    audit.record(session, row.tenant_id, "oauth.code_replayed", user_id=row.user_id,
                 client_id=client_id, revoked_families=len(families))
