"""The one guard for attempts: failed passwords and second factors, counted per account.

Count first, verify second: an attempt is reserved atomically in Redis (INCR) *before* the
secret is checked, so N parallel guesses never test more than the limit. A full sign-in clears
the count; a lock ends by itself when the key expires. Unknown accounts are counted under a
key derived from the address they were tried with, so they behave like real ones.

If Redis cannot be reached the guard raises: sign-in fails closed, never uncounted.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from redis import Redis

LOCK_AFTER = 5
LOCK_SECONDS = 3600


@dataclass(frozen=True)
class Locked(Exception):
    """Too many failed attempts; the account is locked until ``until`` (epoch seconds)."""

    until: float


def account_key(tenant_id: int, user_id: int | None, email: str) -> str:
    if user_id is not None:
        return f"guard:{tenant_id}:user:{user_id}"
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return f"guard:{tenant_id}:unknown:{digest}"


class Guard:
    def __init__(self, store: Redis, lock_after: int = LOCK_AFTER, lock_seconds: int = LOCK_SECONDS):
        self.store = store
        self.lock_after = lock_after
        self.lock_seconds = lock_seconds

    def check(self, key: str) -> None:
        """Refuse at once when the account is locked (no attempt is spent)."""
        count = self.store.get(key)
        if count is not None and int(count) >= self.lock_after:
            raise Locked(time.time() + max(self.store.ttl(key), 0))

    def reserve(self, key: str) -> None:
        """Spend one attempt before checking a secret; raise Locked when none is left."""
        pipe = self.store.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.lock_seconds, nx=True)
        count, _ = pipe.execute()
        if count > self.lock_after:
            raise Locked(time.time() + max(self.store.ttl(key), 0))

    def after_failure(self, key: str) -> None:
        """Raise Locked when this failure was the last one allowed, so the user learns now."""
        if self.failures(key) >= self.lock_after:
            raise Locked(time.time() + max(self.store.ttl(key), 0))

    def refund(self, key: str) -> None:
        """The secret was right: this attempt does not count against the account."""
        self.store.decr(key)

    def clear(self, key: str) -> None:
        """A full sign-in: forget the failures."""
        self.store.delete(key)

    def failures(self, key: str) -> int:
        return int(self.store.get(key) or 0)
