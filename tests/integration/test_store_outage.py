"""Redis down: sign-in answers 503 and counts nothing it cannot count; back up, it works."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import replace

import pytest

from idp import create_app
from tests.integration.test_authorize import params_for
from tests.support.journey import Browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, so stopping it disturbs nothing else."""

    def __init__(self):
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test (Debian package redis-server)"
        self.binary, self.port, self.process = binary, _free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
                                         "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


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
