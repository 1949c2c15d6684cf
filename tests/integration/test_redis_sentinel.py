"""Redis behind Sentinel (``IDP_REDIS_URL=redis+sentinel://…``): the workers find the primary
through the sentinels and, after a failover, write to the promoted replica without a restart;
what was written before (an SSO session) is still there."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from idp import create_app
from tests.support.journey import Browser
from tests.support.redis_server import PrivateRedis, PrivateSentinel
from tests.support.rp import params_for

SERVICE = "idp-primary"


def role(port: int) -> str:
    return redis.Redis(port=port, decode_responses=True).info("replication")["role"]


def wait_for(what, condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds:.0f} s for {what}"
        time.sleep(0.1)


@pytest.fixture
def sentinel_redis(tmp_path):
    primary = PrivateRedis()
    primary.start()
    replica = PrivateRedis("--replicaof", "127.0.0.1", str(primary.port))
    replica.start()
    sentinel = PrivateSentinel(tmp_path, SERVICE, primary)
    sentinel.start()
    watcher = redis.Redis(port=sentinel.port, decode_responses=True)
    try:
        wait_for("the replica to follow the primary", lambda: redis.Redis(
            port=replica.port, decode_responses=True).info("replication").get(
                "master_link_status") == "up")
        wait_for("the sentinel to know the replica",
                 lambda: watcher.sentinel_slaves(SERVICE))
        yield primary, replica, watcher
    finally:
        for server in (sentinel, replica, primary):
            if server.process.poll() is None:
                server.stop()


def test_sign_ins_go_on_through_a_sentinel_failover(settings, world, sentinel_redis):
    primary, replica, watcher = sentinel_redis
    url = f"redis+sentinel://127.0.0.1:{watcher.connection_pool.connection_kwargs['port']}" \
          f"/{SERVICE}/0"
    app = create_app(replace(settings, redis_url=url), TESTING=True)
    sso_keys = f"{settings.redis_namespace}:sso:*"  # the installation's prefix (idp.store)
    try:
        http = app.test_client()
        assert http.get("/health/ready").status_code == 200
        alice = Browser(app.test_client())
        login = alice.authorize(f"/t/{world.slug}", params_for(world.portal))
        done = alice.sign_in(login, world.alice, world.password, world.slug,
                             world.portal.redirect_uri)
        assert done.status == 302 and "code=" in done.location
        assert redis.Redis(port=primary.port).keys(sso_keys), "the session is on the primary"

        redis.Redis(port=primary.port).wait(1, 5000)  # the replica has every write so far
        watcher.sentinel_failover(SERVICE)
        wait_for("the replica's promotion", lambda: role(replica.port) == "master")
        wait_for("the sentinel to name the new primary", lambda: int(
            watcher.sentinel_get_master_addr_by_name(SERVICE)[1]) == replica.port)
        wait_for("the old primary to follow", lambda: role(primary.port) == "slave")

        # Alice's session was replicated: she is signed in at once, without a password.
        again = alice.authorize(f"/t/{world.slug}", params_for(world.portal))
        assert again.status == 302 and "code=" in again.location, again.text[:300]
        # A new sign-in writes its transaction and session: to the promoted replica, since
        # the old primary now refuses writes.
        promoted = redis.Redis(port=replica.port)
        sessions = len(promoted.keys(sso_keys))
        carol = Browser(app.test_client())
        login = carol.authorize(f"/t/{world.slug}", params_for(world.portal))
        done = carol.sign_in(login, world.bob, world.password, world.slug,
                             world.portal.redirect_uri)
        assert done.status == 302 and "code=" in done.location
        assert len(promoted.keys(sso_keys)) > sessions  # written to the new primary
        assert http.get("/health/ready").status_code == 200
    finally:
        app.extensions["idp.engine"].dispose()
