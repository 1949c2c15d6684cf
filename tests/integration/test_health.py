"""/health/live and /health/ready: what a load balancer asks before sending users here."""

from __future__ import annotations

from dataclasses import replace

import pytest

from idp import create_app
from tests.support.ports import free_port
from tests.support.redis_server import PrivateRedis


def test_live_and_ready_answer_json_when_everything_is_up(client):
    live = client.get("/health/live")
    assert live.status_code == 200 and live.get_json() == {"status": "ok"}
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ok",
                                "checks": {"database": "ok", "redis": "ok"}}
    # A proxy must never answer a later check from its cache.
    assert live.headers["Cache-Control"] == ready.headers["Cache-Control"] == "no-store"


def test_ready_says_redis_is_down_and_live_stays_up(settings):
    redis = PrivateRedis()
    redis.start()
    app = create_app(replace(settings, redis_url=redis.url), TESTING=True)
    client = app.test_client()
    try:
        assert client.get("/health/ready").status_code == 200
        redis.stop()
        down = client.get("/health/ready")
        assert down.status_code == 503
        assert down.get_json() == {"status": "unavailable",
                                   "checks": {"database": "ok", "redis": "unavailable"}}
        assert client.get("/health/live").status_code == 200
        redis.start()  # back on the same port: ready again, no restart of the app
        assert client.get("/health/ready").status_code == 200
    finally:
        if redis.process.poll() is None:
            redis.stop()
        app.extensions["idp.engine"].dispose()


def test_ready_says_the_database_is_down_without_saying_why(settings, caplog):
    # Nothing listens on this port: the connection is refused.
    unreachable = f"postgresql://idp:secret-password@127.0.0.1:{free_port()}/idp"
    app = create_app(replace(settings, database_url=unreachable), TESTING=True)
    client = app.test_client()
    with caplog.at_level("WARNING", logger="idp.health"):
        down = client.get("/health/ready")
    assert down.status_code == 503
    assert down.get_json()["checks"] == {"database": "unavailable", "redis": "ok"}
    assert "secret-password" not in down.get_data(as_text=True)
    assert "the database does not answer" in caplog.text  # the operator learns why from the log
    assert client.get("/health/live").status_code == 200
    app.extensions["idp.engine"].dispose()


@pytest.mark.parametrize("path", ["/health/live", "/health/ready"])
def test_health_checks_refuse_other_methods(client, path):
    assert client.post(path).status_code == 405
