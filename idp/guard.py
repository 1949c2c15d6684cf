"""The one guard for attempts: failed passwords and second factors, counted per account.

Count first, verify second: an attempt is reserved atomically in Redis (INCR) *before* the
secret is checked, and what it may do is decided by the number that INCR returned, never by a
count read before: past the CAPTCHA threshold it needs a solved CAPTCHA, past the lock limit
it is refused. So N parallel guesses never test more than the limit, nor more than the
threshold without a CAPTCHA. A refused attempt and a right answer give their attempt back; a
full sign-in clears the count; a lock ends by itself when the key expires.
Unknown accounts are counted under a key derived from the address they were tried with, in
its one spelling (``idp.addresses``), so they behave like real ones whatever the spelling.

If Redis cannot be reached the guard raises: sign-in fails closed (503), never uncounted.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from redis import Redis

from idp.addresses import normalise_email

# Give attempts back, each key once: a key that expired (or was cleared) meanwhile stays gone,
# where a plain DECR would make it -1 without a TTL, an extra attempt that never ends.
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('DECR', key)
  end
end
return 1
"""


@dataclass(frozen=True)
class Limits:
    """A tenant's thresholds (tenant policy): CAPTCHA after, lock after, lock for."""

    captcha_after: int = 3
    lock_after: int = 5
    lock_seconds: int = 3600


@dataclass(frozen=True)
class Locked(Exception):
    """Too many failed attempts; the account is locked until ``until`` (epoch seconds).
    ``new`` is true for the failure that caused the lock (to audit and notify once); ``key``
    is the count that locked (an account's, or the other one ``reserve`` took with it)."""

    until: float
    new: bool = False
    key: str = ""


class CaptchaNeeded(Exception):
    """This attempt is past the CAPTCHA threshold and came without a solved CAPTCHA: it was
    given back, and no secret may be checked."""


def account_key(tenant_id: int, user_id: int | None, email: str) -> str:
    """The count of an account, or of an address with no account (in any of its spellings)."""
    if user_id is not None:
        return f"guard:{tenant_id}:user:{user_id}"
    digest = hashlib.sha256(normalise_email(email).encode()).hexdigest()[:32]
    return f"guard:{tenant_id}:unknown:{digest}"


@dataclass(frozen=True)
class Guard:
    store: Redis
    limits: Limits = Limits()

    def with_limits(self, limits: Limits) -> "Guard":
        return replace(self, limits=limits)

    def _locked(self, key: str, new: bool = False) -> Locked:
        return Locked(time.time() + max(self.store.ttl(key), 0), new, key)

    def reserve(self, key: str, captcha_solved: Callable[[], bool] | None = None, *,
                also: tuple[Guard, str] | None = None) -> int:
        """Spend one attempt before checking a secret, and learn from its number whether it may
        be checked: past ``lock_after`` it is refused (Locked), past ``captcha_after`` only with
        a solved CAPTCHA (CaptchaNeeded unless ``captcha_solved()`` says so; it is asked then
        and only then, since a solution is accepted once; None: this check has no CAPTCHA).
        A refused attempt is given back, so it spends nothing. Returns the attempt's number.

        An attempt numbered up to the threshold is the only kind checked without a CAPTCHA, and
        a wrong one keeps its number: of any burst, at most ``captcha_after`` wrong guesses are
        ever checked without a CAPTCHA.

        ``also`` = (guard, key): one more count taken in the same round trip, under that
        guard's limits (a password is counted per account and per network), and checked
        first; whatever refuses the attempt gives both back."""
        pipe = self.store.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.limits.lock_seconds, nx=True)
        if also is not None:
            pipe.incr(also[1])
            pipe.expire(also[1], also[0].limits.lock_seconds, nx=True)
        count, _, *other = pipe.execute()
        given_back = (key, also[1]) if also is not None else (key,)
        if also is not None and other[0] > also[0].limits.lock_after:
            self.refund(*given_back)
            raise also[0]._locked(also[1])
        if count > self.limits.lock_after:  # first: a locked account says so, whatever was sent
            self.refund(*given_back)
            raise self._locked(key)
        if captcha_solved is not None and count > self.limits.captcha_after \
                and not captcha_solved():
            self.refund(*given_back)
            raise CaptchaNeeded
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

    def refund(self, *keys: str, pipe=None) -> None:
        """The secret was right (or no guess was made): this attempt does not count (under
        each of ``keys``: an account's and its address's, say; a refund reads no limit).
        With ``pipe`` (a pipeline of the same store) it goes with the caller's next writes."""
        (pipe or self.store).eval(_GIVE_BACK, len(keys), *keys)

    def clear(self, key: str, pipe=None) -> None:
        """A full sign-in, or an admin's unlock: forget the failures."""
        (pipe or self.store).delete(key)

    def locked_until(self, key: str) -> float | None:
        """When the lock on ``key`` ends (epoch seconds), or None when it is not locked."""
        if self.failures(key) < self.limits.lock_after:
            return None
        return self._locked(key).until

    def failures(self, key: str) -> int:
        return int(self.store.get(key) or 0)

    def needs_captcha(self, key: str) -> bool:
        """The next attempt's number will be past the threshold: show the CAPTCHA with the page."""
        return self.failures(key) >= self.limits.captcha_after
