"""The SSO session: who is signed in to a tenant in this browser, and how.

Kept in Redis under ``sso:<sid>`` with a TTL; the browser holds only the random ``sid`` in an
HttpOnly, SameSite=Lax cookie scoped to the tenant's path. A new sign-in (or a step-up)
always gets a new ``sid``, so a session id seen before authentication is worthless after.

The ``sid`` is the browser's credential, so it never leaves us: what names the session
outside (the ID token's ``sid`` claim, the tokens issued under it, the account page's list of
signed-in browsers) is its ``public_id``, a one-way digest of it.

Whatever ends a session (signing out, an application's logout, the account page, an admin,
a deactivation, a password reset) tells the clients that took part in it, by back-channel
logout notices queued in the caller's transaction (``idp.notify.backchannel``).

Each session is indexed under its user (``sso-user:<user id>``), for the account page's list
and for "sign out everywhere". It records where and when it started (the browser's
User-Agent, the client address, the time) and when it was last seen; ``last_seen`` moves
forward at most every ``SEEN_EVERY`` seconds, with a write the request sends anyway where it
has one (``seen_with``) or else once at its end, so the sign-in's round trips do not grow.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, replace

from flask import Response, g, request
from redis.exceptions import RedisError
from sqlalchemy import or_, select, update

from idp import db, hashing, store, user_status, web
from idp.models import Token, User
from idp.models.base import utcnow
from idp.notify import backchannel
from idp.policy import Primary
from idp.web import settings, tenant_path

COOKIE = "idp_sso"

# How recent a proof must be for the changes that matter most (``SSOSession.proved_within``):
# an admin's action in the console, and a change to one's own sign-in methods.
CONSOLE_STEP_UP_MINUTES = 15
ACCOUNT_CHANGE_MINUTES = 15

# How stale a session's ``last_seen`` may get: a page shows "last active" to within this, and
# a browser in use costs one write per this many seconds, not one per request.
SEEN_EVERY = 300
USER_AGENT_KEPT = 512  # characters of the User-Agent header a session keeps
# Public ids of a session's earlier sids (one per step-up) it keeps to end what was issued
# under them; past this many, the oldest are forgotten (a console step-up every 15 minutes
# for 12 hours is 48).
EARLIER_KEPT = 64

PUBLIC_ID = re.compile(r"[0-9a-f]{64}")  # public_id: a SHA-256 in hex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SSOSession:
    sid: str
    tenant_id: int
    user_id: int
    auth_time: int
    amr: list[str] = field(default_factory=list)
    acr: str = "pwd"
    stepped_at: int = 0  # when the last step (sign-in or step-up) was proved
    # How the user proved who they are (a ``Primary`` value): every later decision — a step-up
    # at /authorize, the console's — asks the policy with it, so a login link or a trusted
    # upstream counts the same at the next portal as at the sign-in. Read it with ``primary_of``.
    primary: str | None = None
    # The user's ``subject`` too: an id alone could name someone else once its user is
    # deleted (SQLite gives a deleted row's id to the next one). Empty in sessions kept
    # before it was recorded.
    subject: str = ""
    # Where and when, for the user's list of signed-in browsers: recorded at the sign-in and
    # kept across step-ups. A session kept before they were recorded has them empty (0, "").
    created_at: int = 0
    last_seen: int = 0
    user_agent: str = ""
    ip: str = ""
    # The public ids this session had before its step-ups: tokens issued under any of them
    # end when the session is signed out from elsewhere.
    earlier: list[str] = field(default_factory=list)
    # The remembered browser (``idp.journey.remembered``, its id) that stood in for the
    # tenant's second step at the sign-in: the session's later requests are decided the same
    # way (``decide`` still asks for every level and re-authentication a portal wants).
    remembered_device: int | None = None

    @property
    def public_id(self) -> str:
        return public_id(self.sid)

    @property
    def public_ids(self) -> list[str]:
        """Every name the session has had outside (now first), for what was issued under it."""
        return [self.public_id, *self.earlier]

    @property
    def started(self) -> int:
        """When this browser signed in (for a session kept before ``created_at`` was recorded,
        its last full authentication, which is the same moment unless it was re-proved)."""
        return self.created_at or self.auth_time

    def proved_within(self, minutes: int) -> bool:
        """Was something proved in this browser in the last ``minutes``: the sign-in, or a
        step-up since (which proved a factor afresh)? The one freshness rule, for the console
        and the account page alike. A session kept before ``stepped_at`` was recorded counts
        from its sign-in."""
        return time.time() - (self.stepped_at or self.auth_time) <= minutes * 60


def primary_of(session: SSOSession) -> Primary:
    """How the session's user proved who they are. A session kept before this was recorded
    says it by its amr alone; an upstream's is then taken as untrusted (asked for more, never
    less)."""
    if session.primary:
        return Primary(session.primary)
    if "login_token" in session.amr:
        return Primary.LOGIN_TOKEN
    if "fed" in session.amr:
        return Primary.FEDERATION
    return Primary.PASSWORD


def public_id(sid: str) -> str:
    """The name of the session ``sid`` outside this service: the ID token's ``sid`` claim, the
    tokens issued under it, the account page's forms. A digest, so that holding it (any
    portal does) never lets anyone present the session's cookie."""
    return hashing.digest("sso-session", sid)


def _key(sid: str) -> str:
    return f"sso:{sid}"


def _sure_read() -> list[str]:
    """The session this request will read (``web.SURE_READS``)."""
    sid = request.cookies.get(COOKIE, "")
    return [_key(sid)] if 16 <= len(sid) <= 128 else []


web.SURE_READS.append(_sure_read)


def belongs_elsewhere(tenant_id: int) -> bool:
    """Does the browser present a live session of *another* tenant (a cookie sent off its path)?"""
    sid = request.cookies.get(COOKIE, "")
    raw = store.read(_key(sid)) if 16 <= len(sid) <= 128 else None
    return bool(raw) and json.loads(raw)["tenant_id"] != tenant_id


def current(tenant_id: int) -> SSOSession | None:
    """The browser's session for this tenant, if it is alive."""
    if "sso" in g:
        return g.sso
    sid = request.cookies.get(COOKIE, "")
    found = None
    if 16 <= len(sid) <= 128:
        raw = store.read(_key(sid))
        if raw:
            found = _session(raw, tenant_id)
    if found is not None:
        found = _seen(found)
    g.sso = found
    return found


def _session(data, tenant_id: int) -> SSOSession | None:
    """The session stored as ``data`` if it is this tenant's; a session stored by another
    version of this code, of another shape, is no session (the user signs in again). One
    stored before a field was added (with a default) is read with that default."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    if not isinstance(data, dict) or data.get("tenant_id") != tenant_id:
        return None
    try:
        return SSOSession(**data)
    except TypeError:
        return None


def _seen(session: SSOSession) -> SSOSession:
    """The session, seen now. When its ``last_seen`` is ``SEEN_EVERY`` old, the move forward
    waits for the request's own writes (``seen_with``) or its end (``write_cookie``)."""
    now = int(time.time())
    if now - session.last_seen < SEEN_EVERY:
        return session
    session = replace(session, last_seen=now)
    g.sso_seen = session
    return session


def seen_with(pipe) -> None:
    """Add the session's new ``last_seen``, if one is due, to ``pipe`` (a pipeline of the
    store the request sends anyway)."""
    session = g.pop("sso_seen", None)
    if session is not None:
        # XX: only while the session lives (a sign-out meanwhile is not undone); KEEPTTL: the
        # session ends when it was always going to.
        pipe.set(_key(session.sid), json.dumps(asdict(session)), xx=True, keepttl=True)


def start(tenant_id: int, user_id: int, amr: list[str], acr: str,
          primary: Primary = Primary.PASSWORD, pipe=None, *, subject: str = "",
          remembered_device: int | None = None) -> SSOSession:
    """A full authentication: a new sid, auth_time now. The old session, if any, ends: when it
    was the same person's (``prompt=login``, a ``max_age`` exceeded), the new one keeps its
    public ids among its ``earlier`` ones, so that the new session's end still reaches the
    clients that only saw the old; when it was someone else's, its clients are told now
    (back-channel logout). With ``pipe`` (a pipeline of the store) the writes go with the
    caller's, in one round trip; ``subject``: the user's (``SSOSession.subject``);
    ``remembered_device``: the session's."""
    old = current(tenant_id)
    writes = pipe if pipe is not None else store.get().pipeline()
    earlier: list[str] = []
    if old is not None:
        writes.delete(_key(old.sid))
        writes.srem(_user_key(old.user_id), old.sid)
        if old.user_id == user_id:
            earlier = old.public_ids[:EARLIER_KEPT]
        else:
            _told([old])
    now = int(time.time())
    session = SSOSession(secrets.token_urlsafe(32), tenant_id, user_id, now, amr, acr, now,
                         primary.value, subject, created_at=now, last_seen=now,
                         user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_KEPT],
                         ip=request.remote_addr or "", remembered_device=remembered_device,
                         earlier=earlier)
    _save(session, writes)
    if pipe is None:
        writes.execute()
    return session


def signed_in(tenant_id: int) -> tuple[SSOSession, User] | tuple[None, None]:
    """The browser's session for this tenant and its user, while that user may sign in. A
    session whose user was deactivated or deleted since ends here, in the store and in the
    browser: deactivating ends every session at once (``end_all``), and this is what holds
    when a session outlived that (a command run without the server's store)."""
    session = current(tenant_id)
    if session is None:
        return None, None
    user = db.session().get(User, session.user_id)
    if (user is None or user.tenant_id != tenant_id or not user_status.may_sign_in(user.status)
            or (session.subject and session.subject != user.subject)):
        end(tenant_id)
        return None, None
    return session, user


def _save(session: SSOSession, pipe) -> None:
    """Keep the session, and index it under its user (for "sign out everywhere")."""
    ttl = settings().sso_session_ttl
    pipe.set(_key(session.sid), json.dumps(asdict(session)), ex=ttl)
    pipe.sadd(_user_key(session.user_id), session.sid)
    pipe.expire(_user_key(session.user_id), ttl)
    g.pop("sso_seen", None)  # the session written is the one seen now
    g.sso = session
    g.sso_cookie = session.sid


def _user_key(user_id: int) -> str:
    return f"sso-user:{user_id}"


def end_all(user_id: int, r=None) -> int:
    """Sign a user out of every browser (their sessions end; cookies die on next use);
    ``r``: the store, outside a request (the command line)."""
    r = r if r is not None else store.get()
    sids = r.smembers(_user_key(user_id))
    if sids:
        r.delete(*[_key(sid) for sid in sids])
    r.delete(_user_key(user_id))
    return len(sids)


def end_everything(db_session, user_id: int, r) -> tuple[int | None, int]:
    """Sign a user out of every browser and revoke every token issued to them, now: (sessions
    ended, None when ``r``, the store, is None because it is out of reach; tokens revoked,
    with ``db_session``'s commit). The one way a password reset, a deactivation and an
    admin's "sign out everywhere" end what a user holds. Every client of those sessions, and
    of the live tokens (their sessions may have expired here, not at the client), is told."""
    named = _public_ids_of_all(user_id, r) if r is not None else []
    now = utcnow()
    named += db_session.scalars(select(Token.sid).distinct().where(
        Token.user_id == user_id, Token.revoked_at.is_(None), Token.sid.is_not(None),
        or_(Token.access_expires_at > now, Token.refresh_expires_at > now))).all()
    backchannel.queue(db_session, user_id, [n for n in named if PUBLIC_ID.fullmatch(n)])
    ended = end_all(user_id, r) if r is not None else None
    revoked = db_session.execute(
        update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow()).execution_options(synchronize_session=False)).rowcount
    return ended, revoked


def _public_ids_of_all(user_id: int, r) -> list[str]:
    """The public ids, now and earlier, of every session of the user in the store ``r``."""
    sids = sorted(r.smembers(_user_key(user_id)))
    named = []
    for sid, raw in zip(sids, r.mget([_key(sid) for sid in sids]) if sids else []):
        if raw is None:
            continue
        named.append(public_id(sid))
        try:
            earlier = json.loads(raw).get("earlier") or []
        except (ValueError, AttributeError):
            earlier = []
        named += [e for e in earlier if isinstance(e, str)]
    return named


def _told(ended: list[SSOSession]) -> None:
    """Queue back-channel logout notices for the sessions ``ended`` (in the request's
    transaction: they leave when it commits)."""
    for session in ended:
        backchannel.queue(db.session(), session.user_id, session.public_ids)


def step_up(tenant_id: int, amr: list[str], acr: str, pipe=None) -> SSOSession:
    """More methods proved in the same session: auth_time and how the user proved who they are
    stay, the sid rotates (``pipe`` as for ``start``)."""
    old = current(tenant_id)
    writes = pipe if pipe is not None else store.get().pipeline()
    writes.delete(_key(old.sid))
    writes.srem(_user_key(old.user_id), old.sid)
    now = int(time.time())
    session = replace(old, sid=secrets.token_urlsafe(32), amr=amr, acr=acr, stepped_at=now,
                      primary=primary_of(old).value, created_at=old.started, last_seen=now,
                      earlier=[old.public_id, *old.earlier][:EARLIER_KEPT])
    _save(session, writes)
    if pipe is None:
        writes.execute()
    return session


def end(tenant_id: int) -> SSOSession | None:
    old = current(tenant_id)
    if old is not None:
        store.get().delete(_key(old.sid))
        store.get().srem(_user_key(old.user_id), old.sid)
        _told([old])
    g.pop("sso_seen", None)
    g.sso = None
    g.sso_cookie = ""
    return old


def of_user(tenant_id: int, user_id: int) -> list[SSOSession]:
    """The user's live sessions in this tenant, the latest sign-in first."""
    return _indexed(tenant_id, user_id)[1]


def _indexed(tenant_id: int, user_id: int) -> tuple[list[str], list[SSOSession]]:
    """(every sid in the user's index, the live sessions among them that this version reads).
    Sessions that ended by themselves (their TTL) leave the index here."""
    r = store.get()
    sids = sorted(r.smembers(_user_key(user_id)))
    if not sids:
        return [], []
    raws = r.mget([_key(sid) for sid in sids])
    gone = [sid for sid, raw in zip(sids, raws) if raw is None]
    if gone:
        r.srem(_user_key(user_id), *gone)
    live = [_session(raw, tenant_id) for raw in raws if raw is not None]
    return [sid for sid in sids if sid not in gone], sorted(
        (s for s in live if s is not None and s.user_id == user_id),
        key=lambda s: (s.started, s.sid), reverse=True)


def end_other(tenant_id: int, user_id: int, named: str) -> SSOSession | None:
    """End the user's session whose public id is ``named``, unless it is this browser's: the
    session ended, or None when the user has no such other session (another user's, this
    browser's, one that ended already)."""
    if not isinstance(named, str) or not PUBLIC_ID.fullmatch(named):
        return None
    mine = current(tenant_id)
    for session in of_user(tenant_id, user_id):
        if hmac.compare_digest(session.public_id, named) and not (mine and mine.sid == session.sid):
            _forget([session.sid], user_id)
            _told([session])
            return session
    return None


def end_others(tenant_id: int, user_id: int) -> list[SSOSession]:
    """Sign the user out of every browser but this one: the sessions ended. Every id in the
    user's index goes, also one of a shape this version cannot read."""
    mine = current(tenant_id)
    sids, sessions = _indexed(tenant_id, user_id)
    _forget([sid for sid in sids if not (mine and mine.sid == sid)], user_id)
    ended = [s for s in sessions if not (mine and mine.sid == s.sid)]
    _told(ended)
    return ended


def _forget(sids: list[str], user_id: int) -> None:
    if not sids:
        return
    pipe = store.get().pipeline(transaction=False)
    pipe.delete(*[_key(sid) for sid in sids])
    pipe.srem(_user_key(user_id), *sids)
    pipe.execute()


def write_cookie(response: Response) -> Response:
    """after_request: send the cookie that start()/end() decided on, and the session's new
    ``last_seen`` if the request had no write of its own to send it with."""
    if "sso_seen" in g:
        try:
            with store.get().pipeline(transaction=False) as pipe:
                seen_with(pipe)
                pipe.execute()
        except RedisError as e:  # the page was answered; "last active" can wait for the next
            log.warning("the session's last use was not recorded: %s", e)
    if "sso_cookie" not in g or "tenant" not in g:
        return response
    if g.sso_cookie:
        response.set_cookie(
            COOKIE, g.sso_cookie, max_age=settings().sso_session_ttl, path=tenant_path(),
            secure=settings().secure_cookies, httponly=True, samesite="Lax",
        )
    else:
        response.delete_cookie(COOKIE, path=tenant_path(), secure=settings().secure_cookies,
                               httponly=True, samesite="Lax")
    return response
