"""Rows that can never be used again, deleted: a refresh rotation writes a row per grant, so
without this the tokens table grows for ever (``idp tokens purge``, run from cron).

A row goes once everything it could still do has expired for ``grace`` (a day by default,
so the recent past stays readable): a token when its access token and its refresh token
have both expired; an authorization code, an admin's login token and a mailed account link
(reset, invitation, verification) and a remembered browser when they expired; a mail of the outbox ``OUTBOX_DAYS``
after it was written, once it left or was given up (never one still to be sent).
Expired rows are refused anyway, so deleting them changes no answer: a rotated refresh
token presented after its expiry is invalid whether or not its row remains.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.models import (AccountLink, AuthorizationCode, LoginToken, OutboxMessage,
                        RememberedDevice, Token)
from idp.models.base import utcnow

BATCH = 5_000  # rows per DELETE: short transactions, no long lock on a busy table
OUTBOX_DAYS = 30  # how long a mail that left (or was given up) stays listed by `idp outbox`
DONE = ("sent", "failed", "expired", "dropped", "kept")


def purge(session: Session, grace: timedelta = timedelta(days=1),
          now: datetime | None = None) -> dict[str, int]:
    """Delete what expired before ``now - grace``, committing batch by batch; the counts."""
    cutoff = (now or utcnow()) - grace
    done = {}
    for name, model, expired in (
        ("tokens", Token, (Token.access_expires_at < cutoff)
         & ((Token.refresh_expires_at.is_(None)) | (Token.refresh_expires_at < cutoff))),
        ("authorization_codes", AuthorizationCode, AuthorizationCode.expires_at < cutoff),
        ("login_tokens", LoginToken, LoginToken.expires_at < cutoff),
        ("account_links", AccountLink, AccountLink.expires_at < cutoff),
        ("remembered_devices", RememberedDevice, RememberedDevice.expires_at < cutoff),
        # After the login tokens: a token's notice stays while the token does.
        ("outbox", OutboxMessage, OutboxMessage.state.in_(DONE)
         & (OutboxMessage.created_at < cutoff - timedelta(days=OUTBOX_DAYS))),
    ):
        done[name] = 0
        while True:
            batch = select(model.id).where(expired).limit(BATCH).scalar_subquery()
            deleted = session.execute(delete(model).where(model.id.in_(batch))).rowcount
            session.commit()
            done[name] += deleted
            if deleted < BATCH:
                break
    return done
