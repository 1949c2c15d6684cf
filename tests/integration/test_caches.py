"""Tenants, clients and policies are cached in each worker when Redis is shared; a change made
anywhere (another worker, the CLI) is seen by the next request. Without Redis nothing is
cached. Client-credentials access tokens are stateless JWTs that introspection and revocation
still govern."""

from __future__ import annotations

import time

import pytest
from flask import g
from sqlalchemy.orm import Session

from idp import admin, cache, create_app, directory, store
from idp.journey import facts
from idp.clients import CLIENTS
from idp import tenant_policy
from tests.support.journey import Browser
from tests.support.redis_server import PrivateRedis
from tests.support.rp import basic, introspect, params_for, userinfo


@pytest.fixture
def app(settings):
    """An app with a shared Redis: the test backend's, or (on the embedded defaults) a
    redis-server of this test's own, so caching is on in both test runs."""
    from dataclasses import replace

    server = None
    if not settings.redis_url:
        server = PrivateRedis()
        server.start()
        settings = replace(settings, redis_url=server.url)
    app = create_app(settings, TESTING=True)
    yield app
    app.extensions["idp.engine"].dispose()
    if server:
        server.stop()


@pytest.fixture
def client(app):
    return app.test_client()


def service_token(client, world, secret=None) -> tuple[int, dict]:
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(world.service.client_id, secret or world.service.client_secret))
    return r.status_code, r.get_json()


@pytest.fixture
def elsewhere(app):
    """A session as another worker or the CLI has it: same database, the same Redis through a
    connection of its own, no request."""
    other = store.connect(app.config["IDP"])

    def open_session() -> Session:
        return Session(app.extensions["idp.engine"], expire_on_commit=False,
                       info={"idp.store": other})
    yield open_session
    other.close()


def watcher(app) -> cache.Watcher:
    with app.test_request_context():
        cache.follow()  # the first token request starts the worker's subscription
    return cache.WATCHERS[app.extensions["idp.store"]]


def settled(app, timeout: float = 5.0) -> str:
    """Wait until this worker's subscription has heard the latest bump (it arrives by Redis
    pub/sub, asynchronously) and return the generation."""
    shared, follower = app.extensions["idp.store"], watcher(app)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = shared.get(cache.GENERATION) or "0"
        if follower.current() == latest:
            return latest
        time.sleep(0.01)
    raise AssertionError(f"the worker never heard generation {latest}: {follower.current()}")


@pytest.fixture(autouse=True)
def subscribed(app):
    settled(app)


def test_a_secret_rotated_by_another_worker_is_refused_once_it_hears(app, client, world,
                                                                    elsewhere):
    assert service_token(client, world)[0] == 200  # cached now, with the old secret's hash
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        new = admin.rotate_client_secret(session, tenant, world.service.client_id, "another-worker")
        session.commit()
    settled(app)
    status, body = service_token(client, world)
    assert status == 401 and body["error"] == "invalid_client"
    assert service_token(client, world, new)[0] == 200


def test_a_client_deleted_elsewhere_gets_no_token_and_its_tokens_die(app, client, world,
                                                                     elsewhere):
    status, body = service_token(client, world)
    assert status == 200
    token = body["access_token"]
    assert introspect(client, world, world.portal, token)["active"] is True
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        admin.delete_client(session, tenant, world.service.client_id, "cli")
        session.commit()
    settled(app)
    assert service_token(client, world)[0] == 401
    assert introspect(client, world, world.portal, token) == {"active": False}


def test_redirect_uris_edited_elsewhere_apply_to_the_next_authorize(app, client, world,
                                                                     elsewhere):
    def authorize():
        return client.get(f"/t/{world.slug}/authorize", query_string={
            "response_type": "code", "client_id": world.portal.client_id, "scope": "openid",
            "redirect_uri": world.portal.redirect_uri, "state": "s"})

    assert authorize().status_code == 302  # the portal is cached now
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        admin.update_client(session, tenant, world.portal.client_id, "cli",
                            redirect_uris=["https://portal.test/moved"])
        session.commit()
    settled(app)
    assert authorize().status_code == 400  # an unregistered redirect URI: an error page


def test_an_entry_read_while_a_change_commits_is_never_kept(app):
    """The loader reads the old row; the change commits and bumps before the entry is stored:
    the next request must read the database again."""
    loads = []
    with app.test_request_context():
        def load_old_then_change():
            loads.append("read")
            cache.bump(app.extensions["idp.store"])  # a commit elsewhere, mid-read
            return "old"
        assert CLIENTS.get((0, "race"), load_old_then_change) == "old"
    with app.test_request_context():
        assert CLIENTS.get((0, "race"), lambda: loads.append("read") or "new") == "new"
    assert loads == ["read", "read"]


def test_without_redis_the_cache_is_bypassed_not_trusted(app, world):
    from redis.exceptions import ConnectionError

    class Down:
        def get(self, key):
            raise ConnectionError("down")

        def pubsub(self):
            raise ConnectionError("down")

    reads = []
    with app.test_request_context():
        CLIENTS.get((0, "bypass"), lambda: reads.append(1) or "v")
    with app.test_request_context():
        store, app.extensions["idp.store"] = app.extensions["idp.store"], Down()
        try:
            CLIENTS.get((0, "bypass"), lambda: reads.append(1) or "v")
            assert g.cache_generation is None
        finally:
            app.extensions["idp.store"] = store
    assert len(reads) == 2


def test_a_revoked_service_token_is_inactive_and_others_are_not(client, world):
    first = service_token(client, world)[1]["access_token"]
    second = service_token(client, world)[1]["access_token"]
    r = client.post(f"/t/{world.slug}/revoke", data={"token": first},
                    headers=basic(world.service.client_id, world.service.client_secret))
    assert r.status_code == 200
    assert introspect(client, world, world.portal, first) == {"active": False}
    info = introspect(client, world, world.portal, second)
    assert info["active"] is True and info["sub"] == world.service.client_id


def test_a_service_token_opens_no_userinfo(client, world):
    token = service_token(client, world)[1]["access_token"]
    r = userinfo(client, world, token)
    assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]


def test_another_client_cannot_revoke_a_service_token(client, world):
    token = service_token(client, world)[1]["access_token"]
    client.post(f"/t/{world.slug}/revoke", data={"token": token},
                headers=basic(world.portal.client_id, world.portal.client_secret))
    assert introspect(client, world, world.portal, token)["active"] is True


def test_a_policy_changed_elsewhere_applies_to_the_next_request(app, world, elsewhere):
    def mode_seen_by_a_request() -> str:
        with app.test_request_context(), elsewhere() as session:
            tenant = directory.get_tenant(session, world.slug)
            return tenant_policy.tenant_policy(session, tenant).mode.value

    assert mode_seen_by_a_request() == "optional"  # now cached
    with elsewhere() as session:
        admin.set_policy(session, directory.get_tenant(session, world.slug), "cli", mode="required")
        session.commit()
    settled(app)
    assert mode_seen_by_a_request() == "required"


def test_without_redis_nothing_is_cached(settings, world):
    """The embedded store (``idp demo``): every request reads the database, so the CLI's
    changes (another process) apply at once."""
    from dataclasses import replace

    embedded = create_app(replace(settings, redis_url=None), TESTING=True)
    reads = []
    for _ in range(2):
        with embedded.test_request_context():
            CLIENTS.get((0, "embedded"), lambda: reads.append(1) or "v")
    assert len(reads) == 2
    embedded.extensions["idp.engine"].dispose()


def test_an_upstream_added_elsewhere_appears_on_the_next_login_page(app, client, world, elsewhere):
    def login_page() -> str:
        return Browser(client).authorize(f"/t/{world.slug}", params_for(world.portal)).text

    assert "Sign in with Example Corp" not in login_page()  # the empty list is cached now
    with elsewhere() as session:
        admin.add_upstream(session, app.extensions["idp.secretbox"],
                           directory.get_tenant(session, world.slug), slug="corp",
                           name="Example Corp", issuer="https://corp.example", client_id="c",
                           client_secret="s", email_domains=[], trust_mfa="never", actor="cli")
        session.commit()
    settled(app)
    assert "Sign in with Example Corp" in login_page()


def test_while_its_subscription_is_down_a_worker_reads_the_counter_and_misses_nothing(
        app, client, world, elsewhere):
    """The subscription's connection is killed (a Redis failover, a proxy timeout): until it is
    back, each request reads the counter, so a change made meanwhile still applies at once; then
    the worker subscribes again."""
    follower = watcher(app)
    assert service_token(client, world)[0] == 200  # cached
    shared = app.extensions["idp.store"]
    shared.client_kill_filter(_type="pubsub")
    deadline = time.monotonic() + 5
    while follower.current() is not None:
        assert time.monotonic() < deadline, "the worker kept trusting a dead subscription"
        time.sleep(0.01)
    with elsewhere() as session:
        tenant = directory.get_tenant(session, world.slug)
        new = admin.rotate_client_secret(session, tenant, world.service.client_id, "cli")
        session.commit()
    status, body = service_token(client, world)  # no wait: the request reads the counter
    assert status == 401 and body["error"] == "invalid_client"
    settled(app)  # subscribed again
    assert follower.current() is not None
    assert service_token(client, world, new)[0] == 200


def test_a_bump_in_another_redis_database_is_not_this_installations(app):
    """Pub/sub is server-wide; installations sharing a Redis server in different databases
    must not move each other's generation (a foreign, higher counter would hide our bumps)."""
    import redis

    follower = watcher(app)
    settled(app)
    ours = app.extensions["idp.store"]
    db = ours.connection_pool.connection_kwargs.get("db", 0)
    neighbour = redis.Redis(connection_pool=redis.ConnectionPool(
        **{**ours.connection_pool.connection_kwargs, "db": (db + 1) % 16}))
    try:
        before = follower.current()
        for _ in range(5):
            cache.bump(neighbour)
        cache.bump(store.connect(app.config["IDP"]))  # one of ours, from elsewhere
        assert settled(app) == str(int(before) + 1)
    finally:
        neighbour.delete(cache.GENERATION)
        neighbour.close()
