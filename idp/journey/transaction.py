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
for ``login_transaction_ttl`` seconds. It is stored as JSON with its ``VERSION``: a sign-in
stored by another version of this code (a deploy in the middle of it) loads as gone, and its
page says "start again", never a 500. Sign-ins that start behind an SSO session (step-up,
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
from dataclasses import dataclass, field, fields
from datetime import timezone

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Response, g, request

from idp import i18n, store, web
from idp.mfa.secrets import derive_key
from idp.policy import Primary
from idp.web import settings, tenant_path

BROWSER_COOKIE = "idp_browser"
SEALED = "p."  # stored ids are token_urlsafe(24): never a dot, never this long
# The sealed request rides in the login URL: 8 KiB keeps that URL within what servers and
# proxies accept by default. A request of the usual size seals to ~500 characters.
MAX_SEALED_LENGTH = 8192
_NONCE = 12
# Bumped whenever a stored transaction's fields change meaning: an older one is not guessed at.
VERSION = 5


class TransactionGone(LookupError):
    """The sign-in expired, finished already, or belongs to another browser."""


class TooLarge(ValueError):
    """The request is too large to carry through the sign-in."""


@dataclass
class Challenge:
    """A second factor's challenge, shown and waiting for its answer."""

    type: str
    state: dict
    context: dict


@dataclass
class Setup:
    """A factor being set up inside the sign-in: its ceremony's state and the page it showed
    (sealed: it may hold a seed), bound to the page by ``id``."""

    id: str
    type: str
    state: dict
    page: str


@dataclass
class Transaction:
    id: str
    tenant_id: int
    browser: str
    params: dict  # the authorization request ({} for a sign-in no client asked for)
    created: int
    authenticated: bool = False  # every step done: the SSO session exists
    consented: bool = False
    # Between the first step and the last: who, and what they proved so far.
    user_id: int | None = None
    methods: list = field(default_factory=list)
    primary: str = Primary.PASSWORD.value  # how they proved who they are (``policy.Primary``)
    # Where a sign-in that no client asked for goes when it is done (a path of this tenant).
    next_url: str | None = None
    # The SSO session that completed this sign-in (or was signed in when it began): the
    # pending authorization belongs to it alone (``idp.oidc.authorize.bound_to``).
    sid: str | None = None
    # Our own pages' floor (the console's step-up): a level, and a second step whoever signs in.
    min_acr: str | None = None
    second_step: bool = False
    step_up: bool = False  # it steps up the browser's session rather than starting one
    skipped: bool = False  # a grace skip was used in this sign-in
    challenge: Challenge | None = None
    setup: Setup | None = None
    offer_backup: bool = False  # a first factor was set up: offer backup codes once done
    upstream: str | None = None  # the upstream it signed in with (its slug)
    captcha: bool = False  # the account's failures call for a CAPTCHA with the next answer
    # The account's password change as it stood at the first step (``password_stamp``): a
    # change since voids what was proved. None for a step-up (its session answers for it).
    password_seen: str | None = None
    # The first step was a link mailed to the account (reset, invitation): ``Progress``.
    via_mailbox: bool = False
    # The relying party asked for a new authentication: ``prompt=login``, or a ``max_age`` the
    # browser's session had exceeded (known to /authorize only, so it travels here).
    reauthenticate: bool = False
    # Remember this device (``idp.journey.remembered``): the browser's remembered device of
    # this user, found at the first step; and "don't ask again" ticked with a second step
    # proved in this sign-in, so one is issued when it ends.
    remembered_device: int | None = None
    remember: bool = False
    # Finished in this request already (never stored): finishing again costs nothing.
    finished: bool = field(default=False, compare=False)

    def to_json(self) -> str:
        # Field by field (``asdict`` deep-copies every value first, params included).
        data = {"v": VERSION, **self.__dict__}
        del data["finished"]
        for nested in ("challenge", "setup"):
            if data[nested] is not None:
                data[nested] = vars(data[nested])
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Transaction:
        try:
            data = json.loads(raw)
        except ValueError:
            raise TransactionGone() from None
        if not isinstance(data, dict) or data.pop("v", None) != VERSION \
                or set(data) != _FIELDS:
            raise TransactionGone()  # stored by another version of this code: start again
        try:
            if data["challenge"] is not None:
                data["challenge"] = Challenge(**data["challenge"])
            if data["setup"] is not None:
                data["setup"] = Setup(**data["setup"])
        except TypeError:  # a challenge or setup of another shape: the same
            raise TransactionGone() from None
        return cls(**data)


_FIELDS = {f.name for f in fields(Transaction)} - {"finished"}


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


def pending(tenant_id: int, params: dict, next_url: str | None = None,
            reauthenticate: bool = False) -> Transaction:
    """A sign-in nobody has started to prove: sealed into its id, nothing stored
    (``reauthenticate``: ``Transaction.reauthenticate``)."""
    created, browser = int(time.time()), browser_id()
    body = json.dumps({"p": params, "n": next_url, "c": created, "r": reauthenticate},
                      separators=(",", ":"))
    if len(body) > 16 * MAX_SEALED_LENGTH:  # beyond any ratio zlib reaches on a real request
        raise TooLarge()
    nonce = os.urandom(_NONCE)
    box = _cipher(settings().secret_key).encrypt(nonce, zlib.compress(body.encode()),
                                                 _binding(tenant_id, browser))
    sealed = SEALED + base64.urlsafe_b64encode(nonce + box).decode().rstrip("=")
    if len(sealed) > MAX_SEALED_LENGTH:
        raise TooLarge()
    return Transaction(sealed, tenant_id, browser, params, created, next_url=next_url,
                       reauthenticate=reauthenticate)


def begin(tenant_id: int, params: dict, next_url: str | None = None) -> Transaction:
    """A sign-in stored at once: for those that start behind an SSO session or a login link."""
    tx = Transaction(secrets.token_urlsafe(24), tenant_id, browser_id(), params, int(time.time()),
                     next_url=next_url)
    save(tx)
    return tx


def is_pending(tx: Transaction) -> bool:
    return tx.id.startswith(SEALED)


def password_stamp(user) -> str:
    """When the user's password last changed, as the database keeps it (microseconds of UTC),
    or "" for never: equal stamps mean no change in between, whatever the hosts' clocks."""
    changed = user.password_changed_at
    if changed is None:
        return ""
    if changed.tzinfo is None:  # SQLite hands back naive UTC
        changed = changed.replace(tzinfo=timezone.utc)
    return str(round(changed.timestamp() * 1_000_000))


def first_step_proved(tx: Transaction, user, methods: list[str], primary: Primary) -> None:
    """A password, an upstream sign-in or a login link is a full authentication: who signs in
    and how is this step alone. Nothing an earlier sign-in in the same transaction proved,
    skipped, consented or was trusted for (another user's, perhaps) carries over; only what
    the request asked for does, with our own pages' floor (``min_acr``, ``second_step``)."""
    kept = Transaction(tx.id, tx.tenant_id, tx.browser, tx.params, tx.created,
                       next_url=tx.next_url, min_acr=tx.min_acr, second_step=tx.second_step,
                       reauthenticate=tx.reauthenticate)
    tx.__dict__.update(kept.__dict__)
    tx.user_id, tx.methods, tx.primary = user.id, list(methods), primary.value
    tx.password_seen = password_stamp(user)


def _seconds_left(tx: Transaction) -> int:
    return tx.created + settings().login_transaction_ttl - int(time.time())


def save(tx: Transaction, pipe=None) -> None:
    """Keep the sign-in until its deadline: a page opened again never extends its life (with
    ``pipe``, a pipeline of the store: with the caller's other writes, in one round trip)."""
    if is_pending(tx):
        # Progress never lives under the sealed id, which anyone holding the URL could replay.
        tx.id = secrets.token_urlsafe(24)
    tx.finished = False
    (pipe or store.get()).set(_key(tx.id), tx.to_json(), ex=max(_seconds_left(tx), 1))


def load(tenant_id: int, tx_id: str | None) -> Transaction:
    """The sign-in ``tx_id`` of this tenant and browser; its pages speak the language the
    portal asked for (``ui_locales``) unless the person chose one (``idp.i18n``)."""
    tx = _load(tenant_id, tx_id)
    ui_locales = tx.params.get("ui_locales")
    i18n.asked_for(ui_locales if isinstance(ui_locales, str) else None)
    return tx


def _load(tenant_id: int, tx_id: str | None) -> Transaction:
    if tx_id and tx_id.startswith(SEALED):
        return _unseal(tenant_id, tx_id)
    if not tx_id or len(tx_id) > 64:
        raise TransactionGone()
    raw = store.read(_key(tx_id))
    if not raw:
        raise TransactionGone()
    tx = Transaction.from_json(raw)
    if tx.tenant_id != tenant_id or not hmac.compare_digest(tx.browser, browser_id()):
        raise TransactionGone()
    if _seconds_left(tx) <= 0:
        raise TransactionGone()
    return tx


def _sure_read() -> list[str]:
    """The stored sign-in this request names (``tx``), which its page will read
    (``web.SURE_READS``); a sealed one is read from its id, not from Redis."""
    tx_id = request.values.get("tx") or ""
    return [_key(tx_id)] if 0 < len(tx_id) <= 64 and not tx_id.startswith(SEALED) else []


web.SURE_READS.append(_sure_read)


def finish(tx: Transaction, pipe=None) -> None:
    """The sign-in is over (done, refused or abandoned): forget it."""
    if not is_pending(tx) and not tx.finished:
        (pipe or store.get()).delete(_key(tx.id))
    tx.finished = True


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
        reauthenticate = payload.get("r") is True
    except (ValueError, binascii.Error, InvalidTag, zlib.error, KeyError, TypeError):
        raise TransactionGone() from None
    if inflate.unconsumed_tail or not isinstance(params, dict):
        raise TransactionGone()
    tx = Transaction(sealed, tenant_id, browser, params, created, next_url=next_url,
                     reauthenticate=reauthenticate)
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
