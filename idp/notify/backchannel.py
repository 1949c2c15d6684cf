"""OpenID Connect Back-Channel Logout 1.0: when an SSO session ends, every client that took
part in it and registered a ``backchannel_logout_uri`` hears so, server to server, through a
logout token POSTed to that URI (section 2.5), so it can end its own session too.

- ``queue(db, user_id, sids)``: the sessions named ``sids`` ended (their public ids, the
  ``sid`` each client got in its ID token). One outbox row per client and session that
  received tokens under it (``channel="logout"``), written in the caller's transaction:
  a rolled-back sign-out tells nobody, a committed one is never lost. The row keeps what the
  token will say (the client's primary key, ``sub``, ``sid``), never a key or a token.
- ``post(db, message, keyring, base_url, secret_key=...)``: what the outbox's sender calls.
  Its ``sub`` is the one the client sees (``idp.subjects``: a pairwise client's own). The token is
  signed *now*, like an ID token (the client's ID token algorithm, the same keys, so the
  client checks it with the issuer's JWKS), and lives ``TOKEN_LIFETIME`` seconds from now:
  a retry an hour later carries a fresh ``iat``, ``exp`` and ``jti``, never a stale token.
  It goes to the URI the client has registered *at that moment* (a client removed, or its URI
  removed, gets nothing), redirects are not followed (an address outside the registration
  is never contacted), and any answer but a 2xx, a timeout or a refused connection is a
  failure the outbox retries with its back-off, until ``MAX_AGE`` after the session ended.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import timedelta

import requests
from joserfc import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import outbound, subjects
from idp.models import Client, OutboxMessage, Tenant, Token, User
from idp.notify import SendError

CHANNEL = "logout"  # the outbox's channel column holds 10 characters
KIND = "backchannel_logout"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
# A logout token is for now: the spec asks for a short ``exp`` (2.4), and it is signed anew at
# each attempt, so this covers the POST and the client's clock, not the retries.
TOKEN_LIFETIME = 120
# How long after the session ended a client is still told: past an hour, the retries have had
# 8 attempts (30 s, 1, 2, 4, 8, 16, 32 min), and a notice that late is given up (``expired``).
MAX_AGE = timedelta(hours=1)


def queue(db: Session, user_id: int, sids: list[str]) -> int:
    """Queue a logout notice to each client with a back-channel logout URI that received
    tokens under one of the sessions ``sids`` of the user ``user_id``; how many were queued.
    A token carries the session's public id, the one its client saw in its ID token."""
    sids = list(dict.fromkeys(s for s in sids if s))
    if not sids:
        return 0
    found = db.execute(
        select(Token.client_pk, Token.sid, Client.tenant_id, Client.client_id, User.subject)
        .join(Client, Client.id == Token.client_pk).join(User, User.id == Token.user_id)
        .where(Token.user_id == user_id, Token.sid.in_(sids),
               Client.tenant_id == Token.tenant_id,
               Client.backchannel_logout_uri.is_not(None))
        .distinct().order_by(Token.client_pk, Token.sid)).all()
    for client_pk, sid, tenant_id, client_id, subject in found:
        db.add(OutboxMessage(
            tenant_id=tenant_id, channel=CHANNEL, kind=KIND, recipient=client_id,
            subject=None, body=json.dumps({"client": client_pk, "sub": subject, "sid": sid}),
            state="pending"))
    if found:
        db.flush()
        db.info["idp.mail_queued"] = True  # wakes this process's sender once committed
    return len(found)


def logout_token(claims: dict, client: Client, issuer: str, keyring, now: int | None = None) -> str:
    """The logout token (2.4) for ``claims`` (``sub``, ``sid``), signed now as the client's ID
    tokens are. No ``nonce``, ever: it would make it pass for an ID token."""
    now = int(time.time()) if now is None else now
    alg = client.id_token_signed_response_alg or "RS256"
    kid, key = keyring.active(alg)
    payload = {"iss": issuer, "aud": client.client_id, "iat": now, "exp": now + TOKEN_LIFETIME,
               "jti": secrets.token_urlsafe(24), "sub": claims["sub"], "sid": claims["sid"],
               "events": {EVENT: {}}}
    return jwt.encode({"alg": alg, "kid": kid, "typ": "logout+jwt"}, payload, key,
                      algorithms=[alg])


def post(db: Session, message: OutboxMessage, keyring, base_url: str, *,
         private_allowed: bool = False, secret_key: str) -> bool:
    """Deliver one notice: True once the client answered 2xx, False when there is nobody to
    tell any more (the client or its URI is gone); raises SendError for the outbox to retry.
    A URI that leads to a private address is refused unless ``private_allowed``
    (``idp.outbound``)."""
    claims = json.loads(message.body)
    client = db.get(Client, claims["client"])
    if client is None or not client.backchannel_logout_uri:
        return False
    tenant = db.get(Tenant, client.tenant_id)
    # The row keeps the public subject; the client is told the one it sees (OIDC Core 8).
    claims["sub"] = subjects.subject_for(claims["sub"], client, secret_key)
    token = logout_token(claims, client, f"{base_url}/t/{tenant.slug}",
                         keyring.for_tenant(tenant.id))
    try:
        status = outbound.post(client.backchannel_logout_uri, data={"logout_token": token},
                               headers={"Cache-Control": "no-store"},
                               private_allowed=private_allowed)
    except requests.RequestException as e:
        raise SendError(f"the client's back-channel logout URI {outbound.unreachable(e)}") from None
    if not 200 <= status < 300:
        raise SendError(f"the client's back-channel logout URI answered {status}")
    return True
