"""Two installations on one Redis database (issue 16, finding 9): each numbers its tenants and
users from 1, so without a namespace a brand-new user of one is locked by the other's failures,
one's "sign out everywhere" ends the other's sessions, and one's configuration changes
invalidate the other's caches. ``IDP_REDIS_PREFIX`` (by default derived from the database)
keeps them apart; workers given the same prefix share everything.

On the embedded run (SQLite) the installations share a Redis server the test starts: the
embedded store lives inside one process and is never shared.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from functools import partial

import pytest
from flask import Flask

from idp import admin, cache, create_app, db as idp_db, directory
from idp.config import Settings
from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.databases import scratch_database
from tests.support.journey import CSRF, Browser, field
from tests.support.redis_server import shared_redis
from tests.support.signin import fail_until_locked
from tests.support.world import World, make_world


@dataclass
class Installation:
    app: Flask
    world: World


@pytest.fixture(scope="module")
def install(settings, tmp_path_factory):
    """Opens an installation (an app) on a database of its own (new, migrated) or on
    ``database_url``; all of them on the one Redis database."""
    apps, drops = [], []

    def open_installation(redis_url: str, database_url: str | None = None, **changes) -> Flask:
        if database_url is None:
            if settings.database_url.startswith("sqlite"):
                folder = tmp_path_factory.mktemp("installation")
                database_url = f"sqlite:///{folder / 'idp.sqlite3'}"
            else:
                database_url, drop = scratch_database(os.environ["IDP_TEST_DATABASE_URL"],
                                                      "idp_installation")
                drops.append(drop)
            idp_db.upgrade(database_url)
        own = Settings.from_env(
            {}, base_url=settings.base_url, database_url=database_url, redis_url=redis_url,
            keys_dir=settings.keys_dir, secret_key=secrets.token_hex(32),
            ip_failures_per_10_minutes=settings.ip_failures_per_10_minutes, **changes)
        app = create_app(own, TESTING=True)
        apps.append(app)
        return app

    with shared_redis(settings.redis_url) as redis_url:
        yield partial(open_installation, redis_url)
        for app in apps:
            app.extensions["idp.engine"].dispose()
    for drop in drops:
        drop()


@pytest.fixture(scope="module")
def apps(install):
    return install(), install()


@pytest.fixture
def pair(apps, settings) -> tuple[Installation, Installation]:
    """A tenant in each installation, made in step so that their rows have the same ids."""
    a, b = (Installation(app, make_world(app, settings)) for app in apps)
    assert ids(a) == ids(b), "the two databases should number their rows alike"
    return a, b


def ids(installation: Installation) -> tuple[int, ...]:
    with installation.app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, installation.world.slug)
        users = [directory.find_user(session, tenant, email)
                 for email in (installation.world.alice, installation.world.admin)]
        return (tenant.id, *[user.id for user in users])


def signed_in(browser: Browser, world: World) -> bool:
    return browser.get(f"/t/{world.slug}/account").status == 200


def test_a_lock_in_one_installation_does_not_lock_the_same_id_in_the_other(pair):
    a, b = pair
    fail_until_locked(a.app.test_client(), a.world, a.world.alice)

    alice_of_b = Browser(b.app.test_client())
    page = password_sign_in(alice_of_b, b.world)
    assert page.status != 429 and "locked" not in page.text
    assert signed_in(alice_of_b, b.world)


def test_a_session_cookie_of_one_installation_signs_no_one_in_at_the_other(pair):
    a, b = pair
    alice_of_a = Browser(a.app.test_client())
    password_sign_in(alice_of_a, a.world)
    sid = alice_of_a.http.get_cookie("idp_sso", path=f"/t/{a.world.slug}/").value

    stranger = Browser(b.app.test_client())
    stranger.http.set_cookie("idp_sso", sid, path=f"/t/{b.world.slug}/")
    page = stranger.get(f"/t/{b.world.slug}/account")
    assert page.status == 302 and "/login" in page.location


def test_signing_a_user_out_everywhere_leaves_the_other_installations_users_alone(pair):
    a, b = pair
    alice_of_a = Browser(a.app.test_client())
    password_sign_in(alice_of_a, a.world)
    assert signed_in(alice_of_a, a.world)

    console = admin_browser(b.app, b.world)
    users = console.get(f"/t/{b.world.slug}/admin/users")
    alice_id = ids(b)[1]
    done = console.post(f"/t/{b.world.slug}/admin/users/{alice_id}/signout",
                        {"csrf_token": field(CSRF, users.text)})
    assert done.status == 302

    assert signed_in(alice_of_a, a.world)


def generation(app: Flask) -> str | None:
    with app.test_request_context():
        return cache.generation()


def followed(app: Flask) -> cache.Watcher:
    """The worker's subscription to cache invalidations, once it is up."""
    with app.test_request_context():
        cache.follow()
    watcher = cache.WATCHERS[app.extensions["idp.store"]]
    deadline = time.monotonic() + 10
    while watcher.current() is None:
        assert time.monotonic() < deadline, "the subscription did not come up"
        time.sleep(0.01)
    return watcher


def test_a_change_in_one_installation_does_not_invalidate_the_others_caches(pair):
    a, b = pair
    theirs, ours = followed(a.app), followed(b.app)
    before, heard_before = generation(b.app), ours.current()
    moved_from = theirs.current()

    with a.app.app_context():
        session = idp_db.session()
        admin.rotate_client_secret(session, directory.get_tenant(session, a.world.slug),
                                   a.world.service.client_id, "test")
        session.commit()  # bumps installation A's generation

    deadline = time.monotonic() + 10
    while theirs.current() == moved_from:  # A's own subscription heard the bump...
        assert time.monotonic() < deadline, "installation A did not hear its own change"
        time.sleep(0.01)
    assert ours.current() == heard_before  # ...and B's, on the same server, did not
    assert generation(b.app) == before


def test_workers_given_one_prefix_share_locks_and_sessions(install, settings):
    """Scale-out: workers of one installation agree on the prefix (derived from the same
    database, or given); an explicit prefix replaces the derived one."""
    first = install(redis_prefix="acme-idp")
    database_url = first.config["IDP"].database_url
    second = install(database_url, redis_prefix="acme-idp")
    unprefixed = install(database_url)
    world = make_world(first, settings)

    alice = Browser(first.test_client())
    password_sign_in(alice, world)
    alice.http.application = second  # her next request reaches the other worker
    assert signed_in(alice, world)

    fail_until_locked(second.test_client(), world, world.bob)
    assert password_sign_in(Browser(first.test_client()), world, world.bob).status == 429
    # The same database without the prefix is another namespace: it never saw the lock.
    assert password_sign_in(Browser(unprefixed.test_client()), world, world.bob).status != 429
