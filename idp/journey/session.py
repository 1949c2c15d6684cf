"""The SSO session: who is signed in to a tenant in this browser, and how.

Kept in Redis under ``sso:<sid>`` with a TTL; the browser holds only the random ``sid`` in an
HttpOnly, SameSite=Lax cookie scoped to the tenant's path. A new sign-in (or a step-up)
always gets a new ``sid``, so a session id seen before authentication is worthless after.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from flask import Response, g, request

from idp import db, store, user_status, web
from idp.models import User
from idp.policy import Primary
from idp.web import settings, tenant_path

COOKIE = "idp_sso"

# How recent a proof must be for the changes that matter most (``SSOSession.proved_within``):
# an admin's action in the console, and a change to one's own sign-in methods.
CONSOLE_STEP_UP_MINUTES = 15
ACCOUNT_CHANGE_MINUTES = 15


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
            found = _session(json.loads(raw), tenant_id)
    g.sso = found
    return found


def _session(data, tenant_id: int) -> SSOSession | None:
    """The session stored as ``data`` if it is this tenant's; a session stored by another
    version of this code, of another shape, is no session (the user signs in again)."""
    if not isinstance(data, dict) or data.get("tenant_id") != tenant_id:
        return None
    try:
        return SSOSession(**data)
    except TypeError:
        return None


def start(tenant_id: int, user_id: int, amr: list[str], acr: str,
          primary: Primary = Primary.PASSWORD, pipe=None, *, subject: str = "") -> SSOSession:
    """A full authentication: a new sid, auth_time now. The old session, if any, ends. With
    ``pipe`` (a pipeline of the store) the writes go with the caller's, in one round trip;
    ``subject``: the user's (``SSOSession.subject``)."""
    old = current(tenant_id)
    writes = pipe if pipe is not None else store.get().pipeline()
    if old is not None:
        writes.delete(_key(old.sid))
        writes.srem(_user_key(old.user_id), old.sid)
    now = int(time.time())
    session = SSOSession(secrets.token_urlsafe(32), tenant_id, user_id, now, amr, acr, now,
                         primary.value, subject)
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


def step_up(tenant_id: int, amr: list[str], acr: str, pipe=None) -> SSOSession:
    """More methods proved in the same session: auth_time and how the user proved who they are
    stay, the sid rotates (``pipe`` as for ``start``)."""
    old = current(tenant_id)
    writes = pipe if pipe is not None else store.get().pipeline()
    writes.delete(_key(old.sid))
    writes.srem(_user_key(old.user_id), old.sid)
    session = SSOSession(secrets.token_urlsafe(32), tenant_id, old.user_id, old.auth_time, amr, acr,
                         int(time.time()), primary_of(old).value, old.subject)
    _save(session, writes)
    if pipe is None:
        writes.execute()
    return session


def end(tenant_id: int) -> SSOSession | None:
    old = current(tenant_id)
    if old is not None:
        store.get().delete(_key(old.sid))
        store.get().srem(_user_key(old.user_id), old.sid)
    g.sso = None
    g.sso_cookie = ""
    return old


def write_cookie(response: Response) -> Response:
    """after_request: send the cookie that start()/end() decided on."""
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
