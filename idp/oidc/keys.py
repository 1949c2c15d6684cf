"""The signing keyring in ``IDP_KEYS_DIR``: one JSON file per key, mode 0600.

One keyring signs for every tenant. Each algorithm (RS256 for ID tokens, ES256 for access
tokens and for clients that register it) has one active key: the newest whose time has come
(``active_from``) and that is not retired.

``rotate()`` makes a new key per algorithm and retires the active ones, both at the same
moment ``ahead`` seconds from now (by default the time a relying party may cache JWKS):
1. at once the new keys are published in JWKS, not yet signing, so every RP and resource
   server has them before the first token they sign;
2. at the switch they sign, and the old ones stop;
3. an old key's public half stays published until every token it signed has expired
   (``grace`` seconds after the switch), so nothing live stops verifying.

There is never a moment without an active key: the old keys sign until the new ones do.
``ahead=0`` switches at once (a key that leaked). Workers reload when the folder changes,
so a rotation reaches all of them; the switch itself needs no reload, it is a time.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, g
from joserfc.jwk import ECKey, RSAKey

from idp.files import private_folder

ALGORITHMS = ("RS256", "ES256")


class NoSigningKey(RuntimeError):
    """The keyring has no active key for an algorithm: run `idp init`."""


# JWKS may be cached this long (its Cache-Control): a new key is published this much before
# it signs. One place for both.
JWKS_MAX_AGE = 300


@dataclass(frozen=True)
class StoredKey:
    kid: str
    alg: str
    created_at: float
    retired_at: float | None
    private: dict
    active_from: float | None = None  # None: from creation (keys made before pre-publishing)

    def signs_at(self, now: float) -> bool:
        return ((self.active_from or self.created_at) <= now
                and (self.retired_at is None or now < self.retired_at))

    def published_at(self, now: float, grace: float) -> bool:
        """Its signatures may be live (or soon will be): not yet active, active, or retired
        less than ``grace`` ago."""
        return self.retired_at is None or now < self.retired_at + grace

    def public_jwk(self) -> dict:
        key = self.imported()
        return {**key.as_dict(private=False), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def imported(self):
        cls = RSAKey if self.alg == "RS256" else ECKey
        return cls.import_key(self.private)


def _generate(alg: str) -> StoredKey:
    kid = f"{alg.lower()}-{time.strftime('%Y%m%d')}-{secrets.token_hex(4)}"
    if alg == "RS256":
        key = RSAKey.generate_key(2048, private=True)
    else:
        key = ECKey.generate_key("P-256", private=True)
    return StoredKey(kid, alg, time.time(), None, key.as_dict(private=True))


def _with(key: StoredKey, **changes) -> StoredKey:
    return StoredKey(**{**key.__dict__, **changes})


def _write(directory: Path, key: StoredKey) -> None:
    private_folder(directory)
    data = {
        "kid": key.kid,
        "alg": key.alg,
        "created_at": key.created_at,
        "retired_at": key.retired_at,
        "active_from": key.active_from,
        "private": key.private,
    }
    tmp = directory / f".{key.kid}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, directory / f"{key.kid}.json")


def _read(path: Path) -> StoredKey:
    data = json.loads(path.read_text())
    return StoredKey(data["kid"], data["alg"], data["created_at"], data["retired_at"],
                     data["private"], data.get("active_from"))


def read_all(directory: Path) -> list[StoredKey]:
    """The keys, oldest first, as one consistent moment of the folder.

    A rotation writes its new keys before it retires the old ones, so a reader that lists
    the folder, then reads a file another process has just retired, would hold the old key
    retired and no new one: with nothing else signing, an older key whose retirement is
    still ahead would sign, or none would. Listing again after reading catches that: a
    retirement read means its rotation's new keys were written before, so they are in the
    second listing; if the listings differ (or a file went, removed by hand), read again."""
    names = sorted(directory.glob("*.json"))
    while True:
        try:
            keys = [_read(path) for path in names]
        except FileNotFoundError:
            keys = None
        again = sorted(directory.glob("*.json"))
        if keys is not None and again == names:
            return sorted(keys, key=lambda k: k.created_at)
        names = again


def ensure(directory: Path) -> list[StoredKey]:
    """Create an active key for each algorithm that has none (signing at once: nothing was
    signed for it before); return the new ones."""
    have = {k.alg for k in read_all(directory) if k.retired_at is None}
    created = [_generate(alg) for alg in ALGORITHMS if alg not in have]
    for key in created:
        _write(directory, key)
    return created


def rotate(directory: Path, ahead: float = JWKS_MAX_AGE) -> list[StoredKey]:
    """A new key per algorithm, signing from ``ahead`` seconds on; every other key that would
    still sign then stops then. The new keys are written first: whatever a worker reads in
    between, it has a key to sign with."""
    switch = time.time() + ahead
    created = [_with(_generate(alg), active_from=switch) for alg in ALGORITHMS]
    for key in created:
        _write(directory, key)
    fresh = {key.kid for key in created}
    for key in read_all(directory):
        # Also a key an earlier rotation retires later than this switch: after a scheduled
        # rotation, `--now` for a leak must not leave the leaked key signing until then.
        if key.kid not in fresh and (key.retired_at is None or key.retired_at > switch):
            _write(directory, _with(key, retired_at=switch))
    return created


class Keyring:
    """The keys in a folder, reloaded when the folder changes."""

    def __init__(self, directory: Path, grace: int):
        self.directory = Path(directory)
        self.grace = grace
        self._lock = threading.Lock()
        # (stamp, keys, imported) swapped as one: a reader never pairs one view's keys with
        # another's imports.
        self._view: tuple[object, list[StoredKey], dict[str, object]] = (None, [], {})
        self._jwks: tuple[object, float, bytes] | None = None  # (stamp, until, JSON)

    def _fresh(self) -> tuple[list[StoredKey], dict[str, object]]:
        try:
            stat = self.directory.stat()
            stamp: object = (stat.st_mtime_ns, stat.st_ino)
            # A folder's time moves in clock ticks: writes a few milliseconds apart may leave it
            # unchanged, so a folder changed within the last second is read on every call.
            if time.time_ns() - stat.st_mtime_ns < 1_000_000_000:
                stamp = object()
        except FileNotFoundError:
            stamp = None
        view = self._view
        if stamp != view[0]:
            with self._lock:
                keys = read_all(self.directory) if stamp else []
                # A key's private half never changes (only its times do): import it once.
                known = self._view[2]
                imported = {k.kid: known.get(k.kid) or k.imported() for k in keys}
                view = self._view = (stamp, keys, imported)
        return view[1], view[2]

    def active(self, alg: str) -> tuple[str, object]:
        """(kid, joserfc key) of the active key for ``alg``."""
        keys, imported = self._fresh()
        now = time.time()
        for key in reversed(keys):
            if key.alg == alg and key.signs_at(now):
                return key.kid, imported[key.kid]
        raise NoSigningKey(f"no active {alg} signing key in {self.directory}: run `idp init`")

    def published(self) -> list[StoredKey]:
        """Keys whose signatures may be live: about to sign, signing, or retired within the
        grace."""
        keys = self._fresh()[0]
        now = time.time()
        return [k for k in keys if k.published_at(now, self.grace)]

    def jwks(self) -> dict:
        return {"keys": [k.public_jwk() for k in self.published()]}

    def jwks_json(self) -> bytes:
        """``jwks()`` serialised, rebuilt only when the folder changes or a retired key's grace
        ends (JWKS is fetched by every RP and resource server: it must cost nothing)."""
        self._fresh()
        stamp, now = self._view[0], time.time()
        cached = self._jwks
        if cached is None or cached[0] != stamp or cached[1] <= now:
            published = self.published()
            ends = [k.retired_at + self.grace for k in published if k.retired_at is not None]
            body = json.dumps({"keys": [k.public_jwk() for k in published]},
                              separators=(",", ":")).encode()
            cached = self._jwks = (stamp, min(ends, default=float("inf")), body)
        return cached[2]

    def verification_key(self, kid: str):
        """The key with ``kid`` if it is still published, else None."""
        keys, imported = self._fresh()
        now = time.time()
        for key in keys:
            if key.kid == kid and key.published_at(now, self.grace):
                return imported[kid]
        return None


class Keyrings:
    """Every tenant's keyring. (For now one shared keyring stands for each tenant's.)"""

    def __init__(self, directory: Path, grace: int):
        self.directory = Path(directory)
        self.grace = grace
        self._shared = Keyring(self.directory, grace)

    def for_tenant(self, tenant_id: int) -> Keyring:
        return self._shared


def current() -> Keyring:
    """The keyring of the request's tenant: what signs and verifies its tokens."""
    return current_app.extensions["idp.keyrings"].for_tenant(g.tenant.id)
