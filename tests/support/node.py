"""Node.js programs in tests (panva's oidc-provider, openid-client): finding node and npm."""

from __future__ import annotations

import shutil

import pytest


def tool(name: str, needed_by: str) -> str:
    """The path of ``name`` (node, npm); the test FAILS saying what to install otherwise:
    skipping would leave what ``needed_by`` tests untested unnoticed."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` is not installed: {needed_by} on Node.js 20 or later. Install "
                    f"Node.js and npm (Debian: `apt-get install nodejs npm`).", pytrace=False)
    return path
