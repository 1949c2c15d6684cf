"""The guard on its own (idp/guard.py): counts, CAPTCHA, locks, refunds and bursts, against the
store of the embedded default (fakeredis) and, when IDP_TEST_REDIS_URL is set, a real Redis too.

Time is the store's: a lock lasts as long as its key's TTL, so "later" is that TTL shortened
(and waited out where a key must actually expire), never a sleep of the lock's length."""

from __future__ import annotations

import os
import secrets
import time
from types import SimpleNamespace

import pytest

from idp import guard as guard_module, store
from idp.config import Settings
from idp.guard import CaptchaNeeded, Guard, Limits, Locked, account_key
from tests.support.burst import EveryoneAtTheGuard, all_at_once

LIMITS = Limits(captcha_after=3, lock_after=5, lock_seconds=3600)
NOW = 1_800_000_000.0  # the guard's clock, for the lock's end it reports
BACKENDS = ["embedded"] + (["redis"] if os.environ.get("IDP_TEST_REDIS_URL") else [])


@pytest.fixture(params=BACKENDS)
def redis_store(request):
    """A store of this test's own: a fresh embedded one, or the test Redis under a prefix no
    other test uses (its keys deleted after)."""
    url = os.environ.get("IDP_TEST_REDIS_URL") if request.param == "redis" else None
    client = store.connect(Settings(redis_url=url, redis_prefix=f"guard-{secrets.token_hex(6)}"))
    yield client
    keys = list(client.scan_iter("*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def guard(redis_store, monkeypatch):
    monkeypatch.setattr(guard_module, "time", SimpleNamespace(time=lambda: NOW))
    return Guard(redis_store, LIMITS)


@pytest.fixture
def key():
    return account_key(1, 7, "alice@example.com")


def fail(guard: Guard, key: str, captcha_solved=None) -> int:
    """One wrong secret, as the sign-in spends it: reserved, checked, kept."""
    attempt = guard.reserve(key, captcha_solved)
    guard.after_failure(key, attempt)
    return attempt


def fail_until_locked(guard: Guard, key: str) -> Locked:
    for _ in range(guard.limits.lock_after - 1):
        fail(guard, key, captcha_solved=lambda: True)
    with pytest.raises(Locked) as locked:
        fail(guard, key, captcha_solved=lambda: True)
    return locked.value


def wait_until_gone(redis_store, key: str) -> None:
    """The key's TTL is at its end: wait for the store to drop it (milliseconds)."""
    redis_store.pexpire(key, 1)
    deadline = time.monotonic() + 5
    while redis_store.exists(key) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not redis_store.exists(key)


# --- Counting and locking -------------------------------------------------------------------


def test_attempts_are_numbered_and_the_failures_before_the_limit_do_not_lock(guard, key):
    assert [fail(guard, key, captcha_solved=lambda: True) for _ in range(4)] == [1, 2, 3, 4]
    assert guard.failures(key) == 4


def test_the_nth_failure_locks_the_account_for_lock_seconds_from_that_failure(
        guard, redis_store, key):
    for _ in range(LIMITS.lock_after - 1):
        fail(guard, key, captcha_solved=lambda: True)
    # The first failure opened a window of lock_seconds; most of it has passed since.
    redis_store.expire(key, 100)
    with pytest.raises(Locked) as locked:
        fail(guard, key, captcha_solved=lambda: True)
    # The lock runs its full length from the failure that caused it, not the window's rest
    # (the store counts whole seconds: a minute's margin for a slow machine, not a timing).
    assert LIMITS.lock_seconds - 60 < redis_store.ttl(key) <= LIMITS.lock_seconds
    assert NOW + LIMITS.lock_seconds - 60 < locked.value.until <= NOW + LIMITS.lock_seconds
    assert locked.value.new is True


def test_a_locked_account_refuses_every_attempt_and_counts_none(guard, key):
    assert fail_until_locked(guard, key).new is True
    for _ in range(3):
        with pytest.raises(Locked) as locked:
            guard.reserve(key, captcha_solved=lambda: True)
        assert locked.value.new is False  # audited and notified once, by the failure above
    assert guard.failures(key) == LIMITS.lock_after


def test_a_lock_ends_when_its_time_is_up(guard, redis_store, key):
    fail_until_locked(guard, key)
    wait_until_gone(redis_store, key)
    assert guard.failures(key) == 0 and not guard.needs_captcha(key)
    assert guard.reserve(key, captcha_solved=lambda: False) == 1  # a fresh count, no CAPTCHA


def test_clear_forgets_the_failures_and_ends_a_lock(guard, key):
    fail_until_locked(guard, key)
    guard.clear(key)
    assert guard.failures(key) == 0 and not guard.needs_captcha(key)
    assert guard.reserve(key, captcha_solved=lambda: False) == 1


# --- The CAPTCHA ----------------------------------------------------------------------------


def test_a_captcha_is_asked_for_from_the_threshold_on(guard, key):
    asked = []
    for _ in range(LIMITS.captcha_after):
        assert not guard.needs_captcha(key)
        fail(guard, key, captcha_solved=lambda: asked.append(1) or True)
    assert asked == []  # never asked below the threshold: a solution is good once only
    assert guard.needs_captcha(key)
    fail(guard, key, captcha_solved=lambda: asked.append(1) or True)
    assert asked == [1]


def test_an_attempt_past_the_threshold_without_a_solved_captcha_is_refused_uncounted(guard, key):
    for _ in range(LIMITS.captcha_after):
        fail(guard, key, captcha_solved=lambda: False)
    for _ in range(3):
        with pytest.raises(CaptchaNeeded):
            guard.reserve(key, captcha_solved=lambda: False)
    assert guard.failures(key) == LIMITS.captcha_after
    # Solved, the same attempt is the next one counted.
    assert guard.reserve(key, captcha_solved=lambda: True) == LIMITS.captcha_after + 1


def test_a_check_without_a_captcha_is_only_counted(guard, key):
    """``captcha_solved=None``: this check has no CAPTCHA; the lock still holds."""
    for attempt in range(1, LIMITS.lock_after):
        assert fail(guard, key) == attempt
    with pytest.raises(Locked):
        fail(guard, key)


# --- Giving attempts back -------------------------------------------------------------------


def test_a_refund_gives_the_attempt_back(guard, key):
    fail(guard, key, captcha_solved=lambda: True)
    attempt = guard.reserve(key, captcha_solved=lambda: True)  # the right secret, this time
    guard.refund(key)
    assert attempt == 2 and guard.failures(key) == 1
    assert guard.reserve(key, captcha_solved=lambda: True) == 2


def test_a_refund_gives_back_under_every_key_it_names(guard, key):
    address = account_key(1, None, "alice@example.com")
    guard.reserve(key)
    guard.reserve(address)
    guard.refund(key, address)
    assert guard.failures(key) == guard.failures(address) == 0


def test_a_refund_after_the_count_is_gone_leaves_no_extra_attempt(guard, redis_store, key):
    guard.reserve(key)
    guard.clear(key)  # an unlock (or the window's end) between the reserve and the refund
    guard.refund(key)
    assert not redis_store.exists(key)  # not -1 with no TTL: an attempt more, for ever
    assert guard.reserve(key) == 1


# --- Bursts ---------------------------------------------------------------------------------


def burst(guard: Guard, key: str, size: int, captcha_solved=None) -> list:
    """``size`` wrong secrets sent at once; what each learnt (its attempt number or what
    refused it)."""

    def one():
        try:
            return fail(guard, key, captcha_solved)
        except (Locked, CaptchaNeeded) as refused:
            return refused

    return all_at_once([one] * size)


@pytest.mark.parametrize("worst_order", [False, True], ids=["threads", "all-at-the-guard"])
def test_a_burst_checks_no_more_secrets_than_the_limit(guard, key, worst_order):
    size = 20
    # In the worst order, every request has its number before any acts on it.
    at_once = Guard(EveryoneAtTheGuard(guard.store, size), LIMITS) if worst_order else guard
    answers = burst(at_once, key, size)
    checked = sorted(a for a in answers if isinstance(a, int))
    assert checked == list(range(1, LIMITS.lock_after))  # the last allowed one locked instead
    locks = [a for a in answers if isinstance(a, Locked)]
    assert len(locks) == size - len(checked)
    assert sum(lock.new for lock in locks) == 1  # one request audits and notifies the lock
    assert guard.failures(key) == LIMITS.lock_after


@pytest.mark.parametrize("worst_order", [False, True], ids=["threads", "all-at-the-guard"])
def test_a_burst_without_captcha_checks_no_more_than_the_threshold(guard, key, worst_order):
    size = 20
    at_once = Guard(EveryoneAtTheGuard(guard.store, size), LIMITS) if worst_order else guard
    answers = burst(at_once, key, size, captcha_solved=lambda: False)
    checked = sorted(a for a in answers if isinstance(a, int))
    assert checked == list(range(1, LIMITS.captcha_after + 1))
    # The others were refused (for want of a CAPTCHA, or numbered past the lock while the
    # burst was in flight) and gave their attempts back: nothing locked the account.
    assert any(isinstance(a, CaptchaNeeded) for a in answers)
    assert not any(isinstance(a, Locked) and a.new for a in answers)
    assert guard.failures(key) == LIMITS.captcha_after
    assert guard.reserve(key, captcha_solved=lambda: True) == LIMITS.captcha_after + 1


# --- Limits and keys ------------------------------------------------------------------------


def test_with_limits_is_a_guard_on_the_same_counts(guard, key):
    strict = guard.with_limits(Limits(captcha_after=1, lock_after=2, lock_seconds=60))
    fail(guard, key)
    assert strict.needs_captcha(key) and not guard.needs_captcha(key)
    with pytest.raises(Locked):
        fail(strict, key)
    assert guard.limits == LIMITS  # the tenant's guard is unchanged


def test_an_account_is_counted_by_its_id_and_an_unknown_address_in_any_spelling():
    assert account_key(1, 7, "alice@example.com") == account_key(1, 7, "other@example.com")
    assert account_key(1, 7, "alice@example.com") != account_key(2, 7, "alice@example.com")
    unknown = account_key(1, None, "ghost@example.com")
    assert account_key(1, None, "  GHOST@Example.com ") == unknown
    assert account_key(1, None, "ghost@example.org") != unknown
    assert account_key(2, None, "ghost@example.com") != unknown
    assert "ghost" not in unknown  # the address itself is not written into Redis
