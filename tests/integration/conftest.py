"""Fixtures shared by the integration tests."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.fixture
def idp(settings):
    """Run `idp ...` as a person would, against the test database; (exit code, stdout, stderr)."""
    env = {**os.environ, "IDP_DATABASE_URL": settings.database_url, "IDP_KEYS_DIR": str(settings.keys_dir),
           "IDP_BASE_URL": settings.base_url, "IDP_SECRET_KEY": settings.secret_key}

    def run(*args, stdin: str = "", environ: dict | None = None):
        done = subprocess.run([sys.executable, "-m", "idp", *args], input=stdin,
                              env={**env, **(environ or {})},
                              capture_output=True, text=True, timeout=60)
        return done.returncode, done.stdout, done.stderr

    return run
