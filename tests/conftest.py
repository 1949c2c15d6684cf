"""Fixtures: the backend (PostgreSQL + Redis when IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL
are set, else SQLite + the embedded store), the app, a fresh tenant per test, a live server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from idp import create_app, db as idp_db
from idp.config import Settings
from tests.support.databases import scratch_database
from tests.support.live_server import serve
from tests.support.world import World, make_world


@pytest.fixture(scope="session")
def backend(tmp_path_factory):
    """(database URL, redis URL or None) for this test session."""
    pg = os.environ.get("IDP_TEST_DATABASE_URL")
    redis_url = os.environ.get("IDP_TEST_REDIS_URL") or None
    if pg:
        url, drop = scratch_database(pg, "idp_test")
    else:
        url, drop = f"sqlite:///{tmp_path_factory.mktemp('db') / 'idp.sqlite3'}", lambda: None
    idp_db.upgrade(url)
    if redis_url:
        # Each run's database numbers tenants and users from 1 again; keys an earlier run left
        # (guard counts expire after an hour) would otherwise land on this run's accounts.
        import redis

        redis.Redis.from_url(redis_url).flushdb()
    yield url, redis_url
    drop()


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory) -> Path:
    """Empty: each tenant gets its keys when it first signs (``idp.oidc.keys.provision``)."""
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="session")
def settings(backend, keys_dir) -> Settings:
    database_url, redis_url = backend
    return Settings.from_env(
        {}, base_url="http://idp.test", database_url=database_url, redis_url=redis_url,
        keys_dir=keys_dir, secret_key=secrets.token_hex(32),
        # Every in-process test comes from 127.0.0.1: the per-address throttle has its own tests.
        ip_failures_per_10_minutes=100_000, upstream_starts_per_10_minutes=100_000,
        # Tests drive the outbox by hand (``outbox.deliver``): a background sender of the
        # shared app would race them for back-channel logout notices. One that wants it says so.
        mail_sender=False,
        # The receivers of back-channel logout and webhooks that tests start are on 127.0.0.1.
        private_callbacks=True,
    )


@pytest.fixture(scope="session")
def app(settings):
    app = create_app(settings, TESTING=True)
    yield app
    app.extensions["idp.engine"].dispose()


@pytest.fixture
def world(app, settings) -> World:
    return make_world(app, settings)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(settings, tmp_path_factory):
    """``idp serve`` in its own process, on the test backend."""
    server = serve(settings, tmp_path_factory.mktemp("live") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def live_world(app, settings, live_server) -> World:
    return make_world(app, settings, base_url=live_server.url)


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
