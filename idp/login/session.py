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

from idp import store
from idp.web import settings, tenant_path

COOKIE = "idp_sso"


@dataclass(frozen=True)
class SSOSession:
    sid: str
    tenant_id: int
    user_id: int
    auth_time: int
    amr: list[str] = field(default_factory=list)
    acr: str = "pwd"


def _key(sid: str) -> str:
    return f"sso:{sid}"


def current(tenant_id: int) -> SSOSession | None:
    """The browser's session for this tenant, if it is alive."""
    if "sso" in g:
        return g.sso
    sid = request.cookies.get(COOKIE, "")
    found = None
    if 16 <= len(sid) <= 128:
        raw = store.get().get(_key(sid))
        if raw:
            data = json.loads(raw)
            if data["tenant_id"] == tenant_id:
                found = SSOSession(**data)
    g.sso = found
    return found


def start(tenant_id: int, user_id: int, amr: list[str], acr: str) -> SSOSession:
    """A full authentication: a new sid, auth_time now. The old session, if any, ends."""
    old = current(tenant_id)
    if old is not None:
        store.get().delete(_key(old.sid))
    session = SSOSession(secrets.token_urlsafe(32), tenant_id, user_id, int(time.time()), amr, acr)
    store.get().set(_key(session.sid), json.dumps(asdict(session)), ex=settings().sso_session_ttl)
    g.sso = session
    g.sso_cookie = session.sid
    return session


def step_up(tenant_id: int, amr: list[str], acr: str) -> SSOSession:
    """More methods proved in the same session: auth_time stays, the sid rotates."""
    old = current(tenant_id)
    store.get().delete(_key(old.sid))
    session = SSOSession(secrets.token_urlsafe(32), tenant_id, old.user_id, old.auth_time, amr, acr)
    store.get().set(_key(session.sid), json.dumps(asdict(session)), ex=settings().sso_session_ttl)
    g.sso = session
    g.sso_cookie = session.sid
    return session


def end(tenant_id: int) -> SSOSession | None:
    old = current(tenant_id)
    if old is not None:
        store.get().delete(_key(old.sid))
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
