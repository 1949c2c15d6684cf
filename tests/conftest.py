"""Fixtures: the backend (PostgreSQL + Redis when IDP_TEST_DATABASE_URL / IDP_TEST_REDIS_URL
are set, else SQLite + the embedded store), the app, a fresh tenant per test, a live server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from idp import admin, create_app, db as idp_db, directory
from idp.config import Settings
from idp.oidc import keys
from tests.support.databases import scratch_database
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


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
    path = tmp_path_factory.mktemp("keys")
    keys.ensure(path)
    return path


@pytest.fixture(scope="session")
def settings(backend, keys_dir) -> Settings:
    database_url, redis_url = backend
    return Settings.from_env(
        {}, base_url="http://idp.test", database_url=database_url, redis_url=redis_url,
        keys_dir=keys_dir, secret_key=secrets.token_hex(32),
        # Every in-process test comes from 127.0.0.1: the per-address throttle has its own tests.
        ip_failures_per_10_minutes=100_000, upstream_starts_per_10_minutes=100_000,
    )


@pytest.fixture(scope="session")
def app(settings):
    app = create_app(settings, TESTING=True)
    yield app
    app.extensions["idp.engine"].dispose()


@dataclass
class ClientCreds:
    client_id: str
    client_secret: str | None
    redirect_uri: str
    post_logout_redirect_uri: str


@dataclass
class World:
    """A fresh tenant with two users and three clients."""

    slug: str
    issuer: str
    alice: str
    bob: str
    password: str
    admin: str  # the tenant's administrator
    portal: ClientCreds  # confidential, code + refresh
    spa: ClientCreds  # public, code + refresh
    service: ClientCreds  # confidential, client_credentials only


def make_world(app, settings, base_url: str | None = None) -> World:
    slug = f"t-{secrets.token_hex(4)}"
    with app.app_context():
        session = idp_db.session()
        passwords = app.extensions["idp.passwords"]
        tenant = directory.create_tenant(session, slug, f"Tenant {slug}")
        # MFA optional for everyone: whoever enrolls a factor is asked for it at sign-in.
        admin.policy_row(session, tenant).mode = "optional"
        alice = directory.create_user(session, passwords, tenant, "Alice@Example.com", PASSWORD,
                                      name="Alice")
        bob = directory.create_user(session, passwords, tenant, "bob@example.com", PASSWORD,
                                    name="Bob")
        ada = directory.create_user(session, passwords, tenant, "ada@example.com", PASSWORD,
                                    name="Ada", role="admin")

        def client(name, uri, **kw):
            new = directory.create_client(session, tenant, name, [uri] if uri else [],
                                          post_logout_redirect_uris=[f"{uri or 'https://x.test'}/bye"],
                                          **kw)
            return ClientCreds(new.client.client_id, new.secret, uri or "",
                               f"{uri or 'https://x.test'}/bye")

        world = World(
            slug=slug,
            issuer=f"{base_url or settings.base_url}/t/{slug}",
            alice=alice.email,
            bob=bob.email,
            password=PASSWORD,
            admin=ada.email,
            portal=client("Portal", "https://portal.test/callback"),
            spa=client("SPA", "http://127.0.0.1:8765/cb", public=True),
            service=client("Service", None, grant_types=["client_credentials"]),
        )
        session.commit()
    return world


@pytest.fixture
def world(app, settings) -> World:
    return make_world(app, settings)


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class LiveServer:
    url: str
    settings: Settings
    process: subprocess.Popen
    log: object = None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.log is not None:
            self.log.close()


def wait_until_answering(process: subprocess.Popen, url: str, log_path: Path,
                         timeout: float = 60) -> None:
    """Return once ``url`` answers; RuntimeError with the server's log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start:\n{Path(log_path).read_text()}")
        time.sleep(0.1)


def serve(settings: Settings, log_path: Path, *, port: int | None = None,
          base_url: str | None = None, redis_url: str | None = None) -> LiveServer:
    """``idp serve`` in its own process on the test backend (``redis_url`` instead of the
    backend's Redis, if given); returns once it answers. ``base_url`` is the issuer, by default
    its own address: servers behind one load balancer share one."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    redis_url = redis_url or settings.redis_url
    env = {
        **os.environ,
        "IDP_BASE_URL": base_url or url,
        "IDP_DATABASE_URL": settings.database_url,
        "IDP_KEYS_DIR": str(settings.keys_dir),
        "IDP_SECRET_KEY": settings.secret_key,
        # As in-process (see ``settings``): every test's failures come from 127.0.0.1.
        "IDP_IP_FAILURES_PER_10_MINUTES": str(settings.ip_failures_per_10_minutes),
        "IDP_UPSTREAM_STARTS_PER_10_MINUTES": str(settings.upstream_starts_per_10_minutes),
    }
    if redis_url:
        env["IDP_REDIS_URL"] = redis_url
    else:
        env.pop("IDP_REDIS_URL", None)
    log = open(log_path, "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "idp", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    wait_until_answering(process, url + "/", log_path)
    return LiveServer(url, Settings.from_env({}, base_url=base_url or url,
                                             database_url=settings.database_url,
                                             redis_url=redis_url, keys_dir=settings.keys_dir),
                      process, log)


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
