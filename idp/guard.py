"""The one guard for attempts: failed passwords and second factors, counted per account.

Count first, verify second: an attempt is reserved atomically in Redis (INCR) *before* the
secret is checked, so N parallel guesses never test more than the limit. A right answer gives
its attempt back; a full sign-in clears the count; a lock ends by itself when the key expires.
Unknown accounts are counted under a key derived from the address they were tried with, so
they behave like real ones.

If Redis cannot be reached the guard raises: sign-in fails closed (503), never uncounted.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

from redis import Redis


@dataclass(frozen=True)
class Limits:
    """A tenant's thresholds (tenant policy): CAPTCHA after, lock after, lock for."""

    captcha_after: int = 3
    lock_after: int = 5
    lock_seconds: int = 3600


@dataclass(frozen=True)
class Locked(Exception):
    """Too many failed attempts; the account is locked until ``until`` (epoch seconds).
    ``new`` is true for the failure that caused the lock (to audit and notify once)."""

    until: float
    new: bool = False


def account_key(tenant_id: int, user_id: int | None, email: str) -> str:
    if user_id is not None:
        return f"guard:{tenant_id}:user:{user_id}"
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return f"guard:{tenant_id}:unknown:{digest}"


@dataclass(frozen=True)
class Guard:
    store: Redis
    limits: Limits = Limits()

    def with_limits(self, limits: Limits) -> "Guard":
        return replace(self, limits=limits)

    def _locked(self, key: str, new: bool = False) -> Locked:
        return Locked(time.time() + max(self.store.ttl(key), 0), new)

    def check(self, key: str) -> int:
        """Refuse at once when the account is locked (no attempt is spent); else the number of
        failures so far."""
        failures = self.failures(key)
        if failures >= self.limits.lock_after:
            raise self._locked(key)
        return failures

    def reserve(self, key: str) -> int:
        """Spend one attempt before checking a secret; raise Locked when none is left.
        Returns this attempt's number, which only this request holds."""
        pipe = self.store.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.limits.lock_seconds, nx=True)
        count, _ = pipe.execute()
        if count > self.limits.lock_after:
            raise self._locked(key)
        return count

    def after_failure(self, key: str, attempt: int) -> None:
        """Raise Locked when this failure was the last one allowed, so the user learns now.
        ``new`` is set for exactly one request: the one whose attempt number hit the limit."""
        if attempt >= self.limits.lock_after:
            new = attempt == self.limits.lock_after
            if new:
                # The lock lasts its full duration from the failure that caused it.
                self.store.expire(key, self.limits.lock_seconds)
            raise self._locked(key, new=new)

    def refund(self, *keys: str) -> None:
        """The secret was right (or no guess was made): this attempt does not count (under
        each of ``keys``: an account's and its address's, say; a refund reads no limit)."""
        if len(keys) == 1:
            self.store.decr(keys[0])
            return
        pipe = self.store.pipeline(transaction=False)
        for key in keys:
            pipe.decr(key)
        pipe.execute()

    def clear(self, key: str) -> None:
        """A full sign-in, or an admin's unlock: forget the failures."""
        self.store.delete(key)

    def failures(self, key: str) -> int:
        return int(self.store.get(key) or 0)

    def needs_captcha(self, key: str) -> bool:
        return self.failures(key) >= self.limits.captcha_after
