"""Passwords: argon2id hashing, verification with equal cost for unknown users, rehash.

A verify costs ~22 ms of CPU at OWASP's minimum parameters, so at most ``CONCURRENT_VERIFIES``
(the CPUs the worker may use) run at once per worker, and at most ``QUEUED_VERIFIES`` more
sign-ins wait for one: a flood of sign-ins cannot take every thread of the worker and starve
the token endpoint and the other requests that share it. A sign-in beyond the queue gets a
503 "try again in a few seconds" before any attempt is counted (``admit``; benchmarks/run.py's
``burst`` case measures it).
"""

from __future__ import annotations

import os
import threading
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import g

def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a worker pinned to one core gets one slot
    except (AttributeError, OSError):
        return os.cpu_count() or 1


CONCURRENT_VERIFIES = max(1, _usable_cpus())
QUEUED_VERIFIES = 2 * CONCURRENT_VERIFIES  # fewer than a worker's threads (8 by default)
verify_slots = threading.BoundedSemaphore(CONCURRENT_VERIFIES)  # shared by every argon2 check
admissions = threading.BoundedSemaphore(CONCURRENT_VERIFIES + QUEUED_VERIFIES)


class Busy(Exception):
    """More sign-ins wait for a password check than this worker lets queue."""


def admit() -> None:
    """Take a place among the sign-ins this worker checks or queues, until the request ends
    (``release``); raise Busy when there is none."""
    if g.get("verify_admitted"):
        return
    if not admissions.acquire(blocking=False):
        raise Busy
    g.verify_admitted = True


def release(exc=None) -> None:
    if g.pop("verify_admitted", False):
        admissions.release()
MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; bound it so a huge body cannot cost more


class WeakPassword(ValueError):
    """The password does not meet the length rules (NIST SP 800-63B 3.1.1.2)."""


def normalise_email(email: str) -> str:
    """One spelling per address: NFKC, trimmed, lower-cased."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"a password may have at most {MAX_LENGTH} characters")


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    new_hash: str | None = None  # set when the stored hash should be upgraded


class Passwords:
    def __init__(self, memory_kib: int, time_cost: int, parallelism: int):
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified when the account does not exist, so unknown emails cost the same.
        self._dummy = self.hasher.hash("not-a-real-password-" + os.urandom(8).hex())

    def hash(self, password: str) -> str:
        check_strength(password)
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        if not isinstance(password, str) or len(password) > MAX_LENGTH:
            password = ""
        target = stored_hash or self._dummy
        with verify_slots:
            try:
                self.hasher.verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return PasswordCheck(False)
        if stored_hash is None:
            return PasswordCheck(False)
        if self.hasher.check_needs_rehash(stored_hash):
            return PasswordCheck(True, self.hasher.hash(password))
        return PasswordCheck(True)
