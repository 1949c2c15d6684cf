"""Redis down: sign-in answers 503 and counts nothing it cannot count; back up, it works."""

from __future__ import annotations

from dataclasses import replace

import pytest

from idp import create_app
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.redis_server import PrivateRedis
from tests.support.rp import params_for


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


def test_protocol_endpoints_while_redis_is_down(settings, world, redis_server):
    """What needs Redis fails closed with an answer its caller understands; what does not
    keeps working, reading the database (the per-worker cache cannot be checked, so it is
    bypassed, never trusted stale)."""
    app = create_app(replace(settings, redis_url=redis_server.url), TESTING=True)
    http = app.test_client()
    service = (world.service.client_id, world.service.client_secret)
    redis_server.stop()
    try:
        # Opening the sign-in stores nothing (the pending sign-in is sealed in the browser), so
        # the login page shows; the password, which must be counted first, gets the friendly
        # 503, with when to retry.
        login = Browser(http).authorize(f"/t/{world.slug}", params_for(world.portal))
        assert login.status == 200
        password = http.post(f"/t/{world.slug}/login", data={
            "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
            "email": world.alice, "password": world.password})
        assert password.status_code == 503 and password.headers["Retry-After"] == "30"
        assert "temporarily unavailable" in password.get_data(as_text=True)
        # Client credentials need no shared state: the client is read from the database.
        token = http.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                          auth=service)
        assert token.status_code == 200 and token.get_json()["token_type"] == "Bearer"
        # A wrong secret is still refused: the bypassed cache is no way around the check.
        wrong = http.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                          auth=(world.service.client_id, "not-the-secret"))
        assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
        for path in ("/.well-known/openid-configuration", "/jwks"):
            assert http.get(f"/t/{world.slug}{path}").status_code == 200, path
    finally:
        app.extensions["idp.engine"].dispose()
