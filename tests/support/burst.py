"""Simultaneous requests, and the worst order a scheduler could give them at the guard."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def all_at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads released together; their results, in order."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


class EveryoneAtTheGuard:
    """A store (wrapping the real one) that holds each request after its first command on an
    account's attempt count until ``parties`` requests have had theirs answered: every request
    of a burst has read (or changed) the count before any acts on what it learnt. Per-address
    counts (``guard:ip:``) pass through."""

    def __init__(self, store, parties: int):
        self._store = store
        self._together = threading.Barrier(parties, timeout=30)
        self._held = threading.local()  # one request per thread

    def _hold(self, key: str) -> None:
        if key.startswith("guard:") and not key.startswith("guard:ip:") and \
                not getattr(self._held, "done", False):
            self._held.done = True
            self._together.wait()

    def get(self, key, *args, **kwargs):
        value = self._store.get(key, *args, **kwargs)
        self._hold(key)
        return value

    def pipeline(self, *args, **kwargs):
        return _Pipeline(self, self._store.pipeline(*args, **kwargs))

    def __getattr__(self, name):
        return getattr(self._store, name)


class _Pipeline:
    def __init__(self, gate: EveryoneAtTheGuard, pipe):
        self._gate, self._pipe, self._keys = gate, pipe, []

    def incr(self, key, *args, **kwargs):
        self._keys.append(key)
        self._pipe.incr(key, *args, **kwargs)
        return self

    def execute(self, *args, **kwargs):
        results = self._pipe.execute(*args, **kwargs)
        for key in self._keys:
            self._gate._hold(key)
        return results

    def __getattr__(self, name):
        return getattr(self._pipe, name)
