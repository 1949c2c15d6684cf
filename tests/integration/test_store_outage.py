"""Redis down: sign-in answers 503 and counts nothing it cannot count; back up, it works."""

from __future__ import annotations

from dataclasses import replace

import pytest

from idp import create_app
from tests.integration.test_authorize import params_for
from tests.support.journey import Browser
from tests.support.redis_server import PrivateRedis


@pytest.fixture
def redis_server():
    server = PrivateRedis()
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def test_sign_in_fails_closed_while_redis_is_down_and_recovers(settings, world, redis_server):
    app = create_app(replace(settings, redis_url=redis_server.url), TESTING=True)
    browser = Browser(app.test_client())
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    assert login.status == 200
    redis_server.stop()
    # The password is right, but the attempt cannot be counted: no code, a clear 503.
    page = browser.sign_in(login, world.alice, world.password, world.slug, world.portal.redirect_uri)
    assert page.status == 503 and "temporarily unavailable" in page.text
    assert "idp_sso" not in str(browser.http.get_cookie("idp_sso", path=f"/t/{world.slug}/"))
    redis_server.start()
    browser = Browser(app.test_client())
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    done = browser.sign_in(login, world.alice, world.password, world.slug, world.portal.redirect_uri)
    assert done.status == 302 and "code=" in done.location
    app.extensions["idp.engine"].dispose()
