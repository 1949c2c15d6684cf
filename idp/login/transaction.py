"""The login transaction: an authorization request waiting for the user to sign in.

It lives in Redis under ``ltx:<id>`` for ``login_transaction_ttl`` seconds and is bound to the
browser that started it by the ``idp_browser`` cookie, so a link copied to another browser
(or planted by an attacker) cannot finish someone else's sign-in.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from flask import Response, g, request

from idp import store
from idp.web import settings, tenant_path

BROWSER_COOKIE = "idp_browser"


class TransactionGone(LookupError):
    """The sign-in expired, finished already, or belongs to another browser."""


@dataclass
class Transaction:
    id: str
    tenant_id: int
    browser: str
    params: dict
    created: int
    authenticated: bool = False  # every step done: the SSO session exists
    consented: bool = False
    # Between the password and the second factor: who, and what they proved so far.
    user_id: int | None = None
    methods: list = field(default_factory=list)
    # Where a sign-in that no client asked for goes when it is done (a path of this tenant).
    next_url: str | None = None
    # The SSO session that completed this sign-in (or was signed in when it began): the
    # pending authorization belongs to it alone (``idp.oidc.authorize.bound_to``).
    sid: str | None = None
    notes: dict = field(default_factory=dict)


def _key(tx_id: str) -> str:
    return f"ltx:{tx_id}"


def browser_id() -> str:
    """This browser's binding id, minted on first use and sent by ``write_cookie``."""
    if "browser_id" not in g:
        existing = request.cookies.get(BROWSER_COOKIE, "")
        if 16 <= len(existing) <= 64:
            g.browser_id = existing
        else:
            g.browser_id = secrets.token_urlsafe(24)
            g.browser_cookie_new = True
    return g.browser_id


def begin(tenant_id: int, params: dict, next_url: str | None = None) -> Transaction:
    tx = Transaction(secrets.token_urlsafe(24), tenant_id, browser_id(), params, int(time.time()),
                     next_url=next_url)
    save(tx)
    return tx


def _seconds_left(tx: Transaction) -> int:
    return tx.created + settings().login_transaction_ttl - int(time.time())


def save(tx: Transaction) -> None:
    """Keep the sign-in until its deadline: a page opened again never extends its life."""
    store.get().set(_key(tx.id), json.dumps(asdict(tx)), ex=max(_seconds_left(tx), 1))


def load(tenant_id: int, tx_id: str | None) -> Transaction:
    if not tx_id or len(tx_id) > 64:
        raise TransactionGone()
    raw = store.get().get(_key(tx_id))
    if not raw:
        raise TransactionGone()
    tx = Transaction(**json.loads(raw))
    if tx.tenant_id != tenant_id or not hmac.compare_digest(tx.browser, browser_id()):
        raise TransactionGone()
    if _seconds_left(tx) <= 0:
        raise TransactionGone()
    return tx


def finish(tx: Transaction) -> None:
    store.get().delete(_key(tx.id))


def write_cookie(response: Response) -> Response:
    if g.get("browser_cookie_new") and "tenant" in g:
        response.set_cookie(
            BROWSER_COOKIE, g.browser_id, path=tenant_path(), secure=settings().secure_cookies,
            httponly=True, samesite="Lax",
        )
    return response
