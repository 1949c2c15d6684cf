"""The signing keyrings in ``IDP_KEYS_DIR``: one JSON file per key, mode 0600.

Each tenant has a keyring of its own, the folder ``tenants/<tenant id>/``: its JWKS holds its
keys only, so a relying party of one tenant that forgets to check ``iss`` still cannot accept
another tenant's tokens. Each algorithm (RS256 for ID tokens, ES256 for access
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

A tenant's folder is made the first time its keyring is asked for (``provision``): a tenant
that never signs costs no key. Earlier versions kept one shared keyring at the root of
``IDP_KEYS_DIR``; a tenant's folder made while shared keys are there starts with copies of
them (same kids) and a rotation to keys of its own, so the tokens they signed verify through
their lifetime. ``idp init`` does that for every tenant and then moves the shared keys to
``shared-retired/``.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, g
from joserfc.jwk import ECKey, RSAKey

from idp.config import Settings
from idp.files import private_folder

ALGORITHMS = ("RS256", "ES256")
TENANTS = "tenants"  # tenants/<tenant id>/: one tenant's keys
SHARED_RETIRED = "shared-retired"  # the shared keys of earlier versions, once every tenant has them


class NoSigningKey(RuntimeError):
    """The keyring has no active key for an algorithm (its files were removed by hand)."""


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
        raise NoSigningKey(f"no active {alg} signing key in {self.directory}: "
                           "run `idp keys rotate --now`")

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


def tenant_folder(root: Path, tenant_id: int) -> Path:
    return Path(root) / TENANTS / str(int(tenant_id))


@contextmanager
def _exclusive(root: Path):
    """Hold the lock on ``root``'s tenant folders: one worker or process at a time makes a
    tenant's folder or retires the shared keys. (An exclusive ``flock`` on a file of its own:
    released by the kernel if the holder dies.)"""
    folder = Path(root) / TENANTS
    private_folder(folder)
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _lacks_a_key(directory: Path) -> bool:
    have = {k.alg for k in read_all(directory) if k.retired_at is None}
    return not set(ALGORITHMS) <= have


def provision(root: Path, tenant_id: int, grace: float) -> bool:
    """Make sure the tenant has a folder with an active key per algorithm; True when its
    folder was made now.

    A new folder starts with a copy of every shared key still published at the root (the
    keyring of earlier versions: tokens it signed for this tenant verify against the tenant's
    JWKS) and a rotation to the tenant's own keys, published now, signing from the switch;
    without shared keys, with fresh keys signing at once. It is filled aside and renamed into
    place, so a crash never leaves a tenant with a folder that lacks the shared keys."""
    root = Path(root)
    folder = tenant_folder(root, tenant_id)
    if folder.is_dir() and not _lacks_a_key(folder):
        return False  # the common case, without the lock
    with _exclusive(root):
        if folder.is_dir():
            ensure(folder)
            return False
        staging = folder.with_name(f".{folder.name}.new")
        shutil.rmtree(staging, ignore_errors=True)  # left by a process that died making it
        private_folder(staging)
        now = time.time()
        shared = [k for k in read_all(root) if k.published_at(now, grace)]
        for key in shared:
            _write(staging, key)
        if shared:
            rotate(staging, ahead=JWKS_MAX_AGE)
        else:
            ensure(staging)
        os.rename(staging, folder)
        return True


def retire_shared(root: Path) -> list[str]:
    """Move the shared keys at the root to ``shared-retired/`` (once every tenant has its
    copies): a tenant made later gets keys of its own only. The kids moved."""
    root = Path(root)
    with _exclusive(root):
        shared = read_all(root)
        if shared:
            private_folder(root / SHARED_RETIRED)
        for key in shared:
            os.replace(root / f"{key.kid}.json", root / SHARED_RETIRED / f"{key.kid}.json")
    return [k.kid for k in shared]


class Keyrings:
    """Every tenant's keyring, made on first use and kept for the life of the worker."""

    def __init__(self, directory: Path, grace: int):
        self.directory = Path(directory)
        self.grace = grace
        self._rings: dict[int, Keyring] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyrings:
        # A key stays published until every token it signed has expired.
        return cls(settings.keys_dir, grace=max(settings.id_token_ttl, settings.access_token_ttl))

    def for_tenant(self, tenant_id: int) -> Keyring:
        ring = self._rings.get(tenant_id)
        if ring is None:
            with self._lock:
                ring = self._rings.get(tenant_id)
                if ring is None:
                    provision(self.directory, tenant_id, self.grace)
                    ring = Keyring(tenant_folder(self.directory, tenant_id), self.grace)
                    self._rings[tenant_id] = ring
        return ring

    def rotate(self, tenant_id: int, ahead: float = JWKS_MAX_AGE) -> list[StoredKey]:
        """``rotate`` the tenant's keyring (made first if it has none)."""
        provision(self.directory, tenant_id, self.grace)
        return rotate(tenant_folder(self.directory, tenant_id), ahead=ahead)

    def adopt_shared(self, tenant_ids) -> tuple[list[int], list[str]]:
        """Give each tenant without a folder copies of the shared keys (``provision``), then
        retire the shared keys: (tenants given them, kids retired). Nothing when there are
        no shared keys (run again, it does nothing)."""
        if not read_all(self.directory):
            return [], []
        given = [t for t in tenant_ids if provision(self.directory, t, self.grace)]
        return given, retire_shared(self.directory)


def current() -> Keyring:
    """The keyring of the request's tenant: what signs and verifies its tokens."""
    return current_app.extensions["idp.keyrings"].for_tenant(g.tenant.id)
