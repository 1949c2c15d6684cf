"""Passwords: argon2id hashing, verification with equal cost for unknown users, rehash.

A verify costs ~18-34 ms of CPU at OWASP's minimum parameters, and a burst of sign-ins must not
starve the token endpoint and the other requests that share a worker (benchmarks/run.py's
``burst`` case). So every argon2id computation of the worker (passwords, security-question
answers) runs in ``hashing``: ``CONCURRENT_VERIFIES`` threads (the CPUs the worker may use) at
a lower CPU priority (nice +10), so the scheduler serves other requests first and the hashes
take the rest of the CPU; and at most ``QUEUED_VERIFIES`` more sign-ins wait for one, so the
waiting cannot take every thread of the worker. A sign-in beyond that gets a 503 "try again in
a few seconds" before any attempt is counted (``admit``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import g

from idp.config import Settings


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # a worker pinned to one core gets one slot
    except (AttributeError, OSError):
        return os.cpu_count() or 1


CONCURRENT_VERIFIES = max(1, _usable_cpus())
QUEUED_VERIFIES = 4  # with the checks running, fewer than a worker's threads (8 by default)
HASH_NICE = 10  # CFS weight 110 against 1024: contended, the hashes get about a tenth of a core
admissions = threading.BoundedSemaphore(CONCURRENT_VERIFIES + QUEUED_VERIFIES)

T = TypeVar("T")


def _lower_priority() -> None:
    try:  # on Linux a thread id names the thread alone
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASH_NICE)
    except (AttributeError, OSError):  # elsewhere, or not allowed: same priority as the rest
        pass


class _Pool:
    """The worker's argon2id threads, made on first use in each process (after a fork)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._executor: ThreadPoolExecutor | None = None

    def run(self, fn: Callable[..., T], *args) -> T:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._executor = ThreadPoolExecutor(
                        CONCURRENT_VERIFIES, thread_name_prefix="argon2",
                        initializer=_lower_priority)
                    self._pid = os.getpid()
        return self._executor.submit(fn, *args).result()  # its exception, if any, raised here


hashing = _Pool()


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
    @classmethod
    def from_settings(cls, settings: Settings) -> Passwords:
        """The hasher at the installation's argon2id cost (``IDP_ARGON2_*``)."""
        return cls(settings.argon2_memory_kib, settings.argon2_time_cost,
                   settings.argon2_parallelism)

    def __init__(self, memory_kib: int, time_cost: int, parallelism: int):
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified when the account does not exist, so unknown emails cost the same.
        self._dummy = self.hasher.hash("not-a-real-password-" + os.urandom(8).hex())

    def hash(self, password: str) -> str:
        check_strength(password)
        return hashing.run(self.hasher.hash, password)

    def verify(self, stored_hash: str | None, password: str) -> PasswordCheck:
        if not isinstance(password, str) or len(password) > MAX_LENGTH:
            password = ""
        target = stored_hash or self._dummy
        try:
            hashing.run(self.hasher.verify, target, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return PasswordCheck(False)
        if stored_hash is None:
            return PasswordCheck(False)
        if self.hasher.check_needs_rehash(stored_hash):
            return PasswordCheck(True, hashing.run(self.hasher.hash, password))
        return PasswordCheck(True)
