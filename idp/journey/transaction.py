"""The login transaction: an authorization request waiting for the user to sign in.

Until a first step succeeds (the password, an upstream sign-in) nothing of it is kept on the
server. The *pending* sign-in is sealed instead: the request, compressed and encrypted with a
key of its own (AES-256-GCM), authenticated together with its tenant and the browser that
started it, and dated. It travels in the login URL and the login form (``tx=p.…``), so any
number of anonymous visits to /authorize or /login stores nothing (issue 15). It holds only
what the relying party asked for, never a user or a step done: replaying it shows the login
page again, nothing more.

Once a step must remember progress (who proved the password, a second factor's challenge,
consent), ``save`` stores the transaction in Redis under ``ltx:<id>``, with a fresh random id,
for ``login_transaction_ttl`` seconds. Sign-ins that start behind an SSO session (step-up,
consent) are stored from the start by ``begin``. Both kinds are bound to the browser by the
``idp_browser`` cookie, so a link copied to another browser (or planted by an attacker) cannot
finish someone else's sign-in; ``load`` takes either.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import os
import secrets
import time
import zlib
from dataclasses import asdict, dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Response, g, request

from idp import store
from idp.mfa.secrets import derive_key
from idp.web import settings, tenant_path

BROWSER_COOKIE = "idp_browser"
SEALED = "p."  # stored ids are token_urlsafe(24): never a dot, never this long
# The sealed request rides in the login URL: 8 KiB keeps that URL within what servers and
# proxies accept by default. A request of the usual size seals to ~500 characters.
MAX_SEALED_LENGTH = 8192
_NONCE = 12


class TransactionGone(LookupError):
    """The sign-in expired, finished already, or belongs to another browser."""


class TooLarge(ValueError):
    """The request is too large to carry through the sign-in."""


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


def pending(tenant_id: int, params: dict, next_url: str | None = None) -> Transaction:
    """A sign-in nobody has started to prove: sealed into its id, nothing stored."""
    created, browser = int(time.time()), browser_id()
    body = json.dumps({"p": params, "n": next_url, "c": created}, separators=(",", ":"))
    if len(body) > 16 * MAX_SEALED_LENGTH:  # beyond any ratio zlib reaches on a real request
        raise TooLarge()
    nonce = os.urandom(_NONCE)
    box = _cipher(settings().secret_key).encrypt(nonce, zlib.compress(body.encode()),
                                                 _binding(tenant_id, browser))
    sealed = SEALED + base64.urlsafe_b64encode(nonce + box).decode().rstrip("=")
    if len(sealed) > MAX_SEALED_LENGTH:
        raise TooLarge()
    return Transaction(sealed, tenant_id, browser, params, created, next_url=next_url)


def begin(tenant_id: int, params: dict, next_url: str | None = None) -> Transaction:
    """A sign-in stored at once: for those that start behind an SSO session or a login link."""
    tx = Transaction(secrets.token_urlsafe(24), tenant_id, browser_id(), params, int(time.time()),
                     next_url=next_url)
    save(tx)
    return tx


def is_pending(tx: Transaction) -> bool:
    return tx.id.startswith(SEALED)


# What a transaction may carry over from before its first step: our own pages' floor (the
# console's step-up asks for a level, and a second step, whoever signs in).
_KEPT_ACROSS_A_FIRST_STEP = ("min_acr", "second_step")


def first_step_proved(tx: Transaction, user_id: int, methods: list[str], primary: str) -> None:
    """A password, an upstream sign-in or a login link is a full authentication: who signs in
    and how is this step alone. Nothing an earlier sign-in in the same transaction proved,
    skipped, consented or was trusted for (another user's, perhaps) carries over."""
    tx.notes = {k: v for k, v in tx.notes.items() if k in _KEPT_ACROSS_A_FIRST_STEP}
    tx.notes["primary"] = primary
    tx.authenticated = tx.consented = False
    tx.sid = None
    tx.user_id, tx.methods = user_id, list(methods)


def _seconds_left(tx: Transaction) -> int:
    return tx.created + settings().login_transaction_ttl - int(time.time())


def save(tx: Transaction) -> None:
    """Keep the sign-in until its deadline: a page opened again never extends its life."""
    if is_pending(tx):
        # Progress never lives under the sealed id, which anyone holding the URL could replay.
        tx.id = secrets.token_urlsafe(24)
    store.get().set(_key(tx.id), json.dumps(asdict(tx)), ex=max(_seconds_left(tx), 1))


def load(tenant_id: int, tx_id: str | None) -> Transaction:
    if tx_id and tx_id.startswith(SEALED):
        return _unseal(tenant_id, tx_id)
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
    if not is_pending(tx):
        store.get().delete(_key(tx.id))


def _unseal(tenant_id: int, sealed: str) -> Transaction:
    if len(sealed) > MAX_SEALED_LENGTH:
        raise TransactionGone()
    browser = browser_id()
    text = sealed[len(SEALED):]
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        # Another browser's, another tenant's, or changed by a single bit: the tag says no.
        body = _cipher(settings().secret_key).decrypt(raw[:_NONCE], raw[_NONCE:],
                                                      _binding(tenant_id, browser))
        inflate = zlib.decompressobj()
        payload = json.loads(inflate.decompress(body, 16 * MAX_SEALED_LENGTH))
        params, next_url, created = payload["p"], payload["n"], int(payload["c"])
    except (ValueError, binascii.Error, InvalidTag, zlib.error, KeyError, TypeError):
        raise TransactionGone() from None
    if inflate.unconsumed_tail or not isinstance(params, dict):
        raise TransactionGone()
    tx = Transaction(sealed, tenant_id, browser, params, created, next_url=next_url)
    if _seconds_left(tx) <= 0:  # the same deadline as a stored one's
        raise TransactionGone()
    return tx


def _binding(tenant_id: int, browser: str) -> bytes:
    return f"{tenant_id}\x00{browser}".encode()


@functools.lru_cache(maxsize=4)
def _cipher(secret_key: str) -> AESGCM:
    return AESGCM(derive_key(secret_key, b"pending sign-in"))


def write_cookie(response: Response) -> Response:
    if g.get("browser_cookie_new") and "tenant" in g:
        response.set_cookie(
            BROWSER_COOKIE, g.browser_id, path=tenant_path(), secure=settings().secure_cookies,
            httponly=True, samesite="Lax",
        )
    return response
