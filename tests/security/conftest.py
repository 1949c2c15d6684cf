"""Fixtures of the security suite: a real https upstream OpenID provider on a socket."""

from __future__ import annotations

import pytest

from tests.support.upstream import ScriptedProvider
from tests.support.upstream_signin import reset_upstream


@pytest.fixture(scope="module")
def https_upstream():
    provider = ScriptedProvider(tls=True)
    yield provider
    provider.stop()


@pytest.fixture
def upstream(https_upstream, monkeypatch):
    """The https upstream, reset; this process (our in-process server) trusts its certificate,
    and nothing it published for an earlier test is still cached."""
    yield from reset_upstream(https_upstream, monkeypatch)
