"""A client's public keys, for what it signs: ``private_key_jwt`` assertions (RFC 7523) and
request objects (RFC 9101). From its registered ``jwks``, or fetched from its ``jwks_uri``.

Keys are imported once per worker and kept with the client's snapshot: an assertion's
signature is then one ``cryptography`` verify, the token endpoint's busiest path for such
clients (benchmarks/README.md). A ``jwks_uri`` document is kept for ``Cache-Control: max-age``
within ``MIN_TTL``..``MAX_TTL`` (``DEFAULT_TTL`` when it says nothing); a signature by a key id
we do not know sends us back to the ``jwks_uri`` (the client rotated its keys), at most once
per ``REFETCH_INTERVAL``, so a stream of made-up key ids cannot make us its fetcher.

A ``jwks_uri`` is fetched under ``idp.outbound``'s rules (no redirect, no proxy, 64 KB, a
deadline, a public address unless the installation allows private callbacks) and over https
only, unless the installation allows private callbacks (a developer's or a test's, on
loopback). When a fetch fails we keep the keys we had, if any, and try again after
``REFETCH_INTERVAL``; without any, the client cannot authenticate and is told why
(``NoClientKeys``), in English: it becomes an OAuth ``error_description`` (US-ASCII, RFC 6749
5.2), read by the client's developers whatever language the browser that brought the request
speaks, and the reason is kept for the worker's later requests too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from flask import current_app
from flask_babel import force_locale
from joserfc.jwk import KeySet

from idp import jwks, outbound
from idp.clients import ClientRef

DEFAULT_TTL = 300  # seconds a jwks_uri document is kept when its sender says nothing
MIN_TTL = 60
MAX_TTL = 3600
REFETCH_INTERVAL = 30  # seconds between two fetches of one jwks_uri


class NoClientKeys(Exception):
    """The client has no usable public keys; the message says why (for an OAuth error)."""


@dataclass(frozen=True)
class PublicKey:
    """One of a client's keys, imported: what it verifies and with which algorithms."""

    kid: str | None
    algs: tuple[str, ...]  # the JWS algorithms this key may verify (RFC 7518 3.1)
    key: object  # a cryptography public key

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        try:
            if alg == "EdDSA":
                self.key.verify(signature, signing_input)
            elif alg.startswith("ES"):
                half = len(signature) // 2
                if half != (self.key.curve.key_size + 7) // 8 or len(signature) % 2:
                    return False
                der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                           int.from_bytes(signature[half:], "big"))
                self.key.verify(der, signing_input, ec.ECDSA(HASHES[alg[2:]]()))
            elif alg.startswith("PS"):
                digest = HASHES[alg[2:]]()
                self.key.verify(signature, signing_input,
                                padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
            else:
                self.key.verify(signature, signing_input, padding.PKCS1v15(), HASHES[alg[2:]]())
        except (InvalidSignature, ValueError):
            return False
        return True


HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
EC_ALGS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _imported(document: dict) -> tuple[tuple[PublicKey, ...], KeySet]:
    """The keys of a checked JWKS, each imported once."""
    keyset = KeySet.import_key_set(document)
    found = []
    for jwk in keyset.keys:
        public = jwk.public_key
        if isinstance(public, rsa.RSAPublicKey):
            algs = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
        elif isinstance(public, ec.EllipticCurvePublicKey):
            algs = (EC_ALGS[public.curve.name],)
        elif isinstance(public, Ed25519PublicKey):
            algs = ("EdDSA", "Ed25519")
        else:
            continue
        registered_alg = jwk.get("alg")
        if registered_alg:  # RFC 7517 4.4: the key is for that algorithm only
            algs = tuple(a for a in algs if a == registered_alg)
        found.append(PublicKey(jwk.kid, algs, public))
    return tuple(found), keyset


@dataclass
class _Entry:
    source: object  # the client's jwks dict (by identity) or its jwks_uri
    keys: tuple[PublicKey, ...] = ()
    keyset: KeySet | None = None
    expires: float = 0.0  # monotonic time after which a jwks_uri is fetched again
    fetched: float = -REFETCH_INTERVAL  # monotonic time of the last fetch (or attempt)
    error: str | None = None  # why the last fetch failed
    lock: threading.Lock = field(default_factory=threading.Lock)


_entries: dict[tuple[str, str], _Entry] = {}
MAX_ENTRIES = 10_000


def _entry(client: ClientRef) -> _Entry:
    cache_key = (client.tenant_id, client.client_id)
    entry = _entries.get(cache_key)
    source = client.jwks if client.jwks else client.jwks_uri
    # The same snapshot (by identity: the worker's cached client), or one loaded again with
    # the same keys (a few short strings compared): the keys imported before still hold.
    if entry is not None and (entry.source is source or entry.source == source):
        if entry.source is not source and not isinstance(source, str):
            entry.source = source
        return entry
    if not source:
        raise NoClientKeys("The client has registered no public keys.")
    entry = _Entry(source)
    if client.jwks:
        try:
            entry.keys, entry.keyset = _imported(jwks.check(client.jwks))
        except (jwks.BadKeySet, ValueError, TypeError, KeyError):
            raise NoClientKeys("The client's registered JWKS cannot be read.") from None
    if len(_entries) >= MAX_ENTRIES:
        _entries.clear()
    _entries[cache_key] = entry
    return entry


def _fetch(entry: _Entry, uri: str) -> None:
    """Fetch ``uri`` into ``entry``: one thread of the worker at a time per client; while it
    does, the others go on with the keys the client had, or wait for it when it had none."""
    if not entry.lock.acquire(blocking=not entry.keys):
        return
    try:
        _fetch_locked(entry, uri)
    finally:
        entry.lock.release()


def _fetch_locked(entry: _Entry, uri: str) -> None:
    now = time.monotonic()
    if now - entry.fetched < REFETCH_INTERVAL:
        return  # another thread just did
    entry.fetched = now
    settings = current_app.config["IDP"]
    private_allowed = settings.calls_private_addresses
    try:
        if not uri.startswith("https://") and not private_allowed:
            raise outbound.BadDocument("is not https")
        document, max_age = outbound.get_json_cacheable(uri, private_allowed=private_allowed)
        with force_locale("en"):  # jwks says why in the page's language: this is no page
            keys, keyset = _imported(jwks.check(document))
    except jwks.BadKeySet as error:
        entry.error = f"is not an acceptable JWKS: {error}"
    except outbound.BadDocument as error:
        entry.error = str(error)
    except requests.RequestException as error:
        entry.error = outbound.unreachable(error)
    else:
        entry.keys, entry.keyset, entry.error = keys, keyset, None
        ttl = DEFAULT_TTL if max_age is None else min(max(max_age, MIN_TTL), MAX_TTL)
        entry.expires = now + ttl
        return
    if not entry.keys:
        entry.expires = 0.0


def _current(client: ClientRef) -> _Entry:
    entry = _entry(client)
    if client.jwks:
        return entry
    if time.monotonic() >= entry.expires:
        _fetch(entry, client.jwks_uri)
    if not entry.keys:
        raise NoClientKeys(f"The client's jwks_uri {entry.error or 'cannot be read'}.")
    return entry


def keyset(client: ClientRef) -> KeySet:
    """The client's public keys (from its ``jwks``, or its ``jwks_uri`` as last fetched)."""
    return _current(client).keyset


def keys_for(client: ClientRef, kid: str | None, alg: str) -> list[PublicKey]:
    """The client's keys that may verify a signature by ``alg`` and key id ``kid`` (any key
    of its for that alg when ``kid`` is None)."""
    return _matching(_current(client).keys, kid, alg)


def verify(client: ClientRef, kid: str | None, alg: str, signing_input: bytes,
           signature: bytes) -> bool:
    """Does a key of the client's (``kid``'s, when given) verify ``signature`` by ``alg``?
    When none does and its keys come from a ``jwks_uri``, the client may have rotated them:
    we fetch its ``jwks_uri`` again (not more often than every ``REFETCH_INTERVAL``) and try
    the keys found there. Raises ``NoClientKeys`` when it has no key for ``alg`` (and ``kid``)."""
    entry = _current(client)
    candidates = _matching(entry.keys, kid, alg)
    if any(key.verify(alg, signing_input, signature) for key in candidates):
        return True
    if client.jwks or time.monotonic() - entry.fetched < REFETCH_INTERVAL:
        if not candidates:
            raise NoClientKeys(_no_key(kid, alg))
        return False
    _fetch(entry, client.jwks_uri)
    candidates = _matching(entry.keys, kid, alg)
    if not candidates:
        raise NoClientKeys(_no_key(kid, alg))
    return any(key.verify(alg, signing_input, signature) for key in candidates)


def _no_key(kid: str | None, alg: str) -> str:
    return f"No key of the client's set verifies {alg}" + (
        f" with kid {kid[:60]!r}." if kid is not None else ".")


def _matching(keys, kid, alg) -> list[PublicKey]:
    return [k for k in keys if alg in k.algs and (kid is None or k.kid == kid)]
