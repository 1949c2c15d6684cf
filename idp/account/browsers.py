"""The browsers a user is signed in on, for their account page, and signing them out.

Each is one of the user's SSO sessions (``idp.journey.session``), named on the page by its
public id, never by its sid (the sid is that browser's cookie). A sign-out names the session
by that id and is refused unless it is one of *this* user's other sessions: another user's
id, this browser's, or one already gone end nothing.

Signing a browser out also ends the tokens issued under its session (each token carries the
public id of the session that issued it, ``idp.oidc.issue.revoke_sessions``): a portal that
browser signed in to cannot refresh its way back in. "Everywhere else" ends every token of
the user except those of this browser's session, also the tokens of sessions that ended by
themselves long ago. Either is audited with who, which browser, and from where.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import g

from idp import audit, db
from idp.devices import Device, describe
from idp.journey import session as sso
from idp.journey.session import SSOSession
from idp.models import User
from idp.oidc.issue import revoke_sessions


@dataclass(frozen=True)
class Browser:
    """One signed-in browser as its owner sees it."""

    public_id: str
    device: Device
    ip: str  # the address it signed in from ("" when the session predates this record)
    signed_in: datetime
    last_seen: datetime | None
    this: bool  # the browser looking at the page


def _moment(stamp: int) -> datetime | None:
    return datetime.fromtimestamp(stamp, timezone.utc) if stamp else None


def _browser(session: SSOSession, here: SSOSession) -> Browser:
    return Browser(session.public_id, describe(session.user_agent), session.ip,
                   _moment(session.started), _moment(session.last_seen),
                   session.sid == here.sid)


def signed_in(here: SSOSession, user: User) -> list[Browser]:
    """The user's browsers: this one first, then the others, the most recently seen first."""
    others = [_browser(s, here) for s in sso.of_user(g.tenant.id, user.id) if s.sid != here.sid]
    others.sort(key=lambda b: b.last_seen or b.signed_in, reverse=True)
    return [_browser(here, here), *others]


def sign_out(here: SSOSession, user: User, public_id: str) -> Browser | None:
    """Sign the user's other browser ``public_id`` out: its session and its tokens end. The
    browser signed out, or None when the user has no such other browser."""
    ended = sso.end_other(g.tenant.id, user.id, public_id)
    if ended is None:
        return None
    # A token written before tokens carried the public id carries the sid itself.
    tokens = revoke_sessions(g.tenant.id, user.id, under=[ended.sid, *ended.public_ids])
    gone = _browser(ended, here)
    audit.record(db.session(), g.tenant.id, "user.signed_out_browser", actor=user.email,
                 user_id=user.id, browser=str(gone.device), signed_in_from=gone.ip or None,
                 signed_in_at=gone.signed_in.isoformat(), tokens=tokens)
    return gone


def sign_out_others(here: SSOSession, user: User) -> tuple[int, int]:
    """Sign the user out everywhere but this browser: (browsers, tokens) ended."""
    ended = sso.end_others(g.tenant.id, user.id)
    tokens = revoke_sessions(g.tenant.id, user.id, keep=[here.sid, *here.public_ids])
    audit.record(db.session(), g.tenant.id, "user.signed_out_elsewhere", actor=user.email,
                 user_id=user.id, browsers=len(ended), tokens=tokens)
    return len(ended), tokens
