"""The token endpoint, JWKS and discovery are served in front of Flask (idp.oidc.direct).
Whatever a client sends, the answer is the one Flask's views give: the plain requests are
served directly, and everything else is handed to Flask untouched."""

from __future__ import annotations

import json

import pytest
from flask import request_started
from sqlalchemy.exc import OperationalError
from werkzeug.datastructures import MultiDict
from werkzeug.test import Client

from tests.support.rp import basic

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def flask_only(app):
    """The same app without the direct path: Flask's own answer to compare with."""
    return Client(app.wsgi_app.wsgi_app)


@pytest.fixture
def flask_requests(app):
    seen = []

    def note(sender, **extra):
        seen.append(1)

    request_started.connect(note, app)
    yield seen
    request_started.disconnect(note, app)


def comparable(response) -> tuple:
    body = response.get_data()
    try:
        doc = json.loads(body)
    except ValueError:
        doc = body
    if isinstance(doc, dict):  # tokens differ by nature; their shape must not
        doc = {k: (v if k in ("error", "error_description", "token_type", "scope", "expires_in",
                               "issuer", "jwks_uri", "token_endpoint", "keys")
                   else type(v).__name__) for k, v in doc.items()}
    # Each response has a request id of its own (idp.logs): both must have one.
    headers = {k.lower(): (bool(v) if k.lower() == "x-request-id" else v)
               for k, v in response.headers.items() if k.lower() not in ("content-length",)}
    return response.status_code, doc, headers


def test_a_plain_client_credentials_grant_skips_flask_and_answers_as_flask_would(
        client, flask_only, world, flask_requests):
    def grant(c):
        return c.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                      headers=basic(world.service.client_id, world.service.client_secret))

    direct = grant(client)
    assert direct.status_code == 200 and not flask_requests  # Flask never saw it
    assert direct.headers["Cache-Control"] == "no-store"
    assert direct.headers["X-Content-Type-Options"] == "nosniff"
    assert comparable(direct) == comparable(grant(flask_only))


@pytest.mark.parametrize("data, secret, status, error", [
    ({"grant_type": "client_credentials"}, "wrong", 401, "invalid_client"),
    ({"grant_type": "password", "username": "a", "password": "b"}, None, 400,
     "unsupported_grant_type"),
    ({}, None, 400, "unsupported_grant_type"),
    ({"grant_type": "client_credentials", "scope": "admin"}, None, 400, "invalid_scope"),
    (MultiDict([("grant_type", "client_credentials"), ("scope", "openid"), ("scope", "email")]),
     None, 400, "invalid_request"),
    ({"grant_type": "refresh_token", "refresh_token": "nope"}, None, 400, "unauthorized_client"),
    ({"grant_type": "client_credentials", "scope": "\u00e9"}, None, 400, "invalid_request"),
])
def test_failures_are_the_same_oauth_errors_on_both_paths(client, flask_only, world, data, secret,
                                                          status, error):
    def post(c):
        return c.post(f"/t/{world.slug}/token", data=data,
                      headers=basic(world.service.client_id, secret or world.service.client_secret))

    direct, flask = post(client), post(flask_only)
    assert (direct.status_code, direct.get_json()["error"]) == (status, error)
    assert comparable(direct) == comparable(flask)


def test_a_service_token_has_the_scope_asked_for_within_the_registered_one(client, world):
    def granted(**extra):
        r = client.post(f"/t/{world.slug}/token",
                        data={"grant_type": "client_credentials", **extra},
                        headers=basic(world.service.client_id, world.service.client_secret))
        assert r.status_code == 200, r.get_json()
        return r.get_json()["scope"]

    assert granted(scope="email") == "email"
    assert granted() == "openid profile email offline_access"  # registered (RFC 6749 3.3)


@pytest.mark.parametrize("how", ["json body", "query string", "nul byte", "bad utf-8", "too large",
                                 "no length", "unknown tenant"])
def test_requests_that_are_not_plain_go_to_flask(client, world, flask_requests, how):
    path, headers = f"/t/{world.slug}/token", basic(world.service.client_id,
                                                    world.service.client_secret)
    body, content_type = b"grant_type=client_credentials", FORM
    if how == "json body":
        body, content_type = b'{"grant_type": "client_credentials"}', "application/json"
    elif how == "query string":
        path += "?grant_type=client_credentials"
        body = b""
    elif how == "nul byte":
        body = b"grant_type=client_credentials&scope=%00"
    elif how == "bad utf-8":
        body = b"grant_type=client_credentials&scope=%ff"
    elif how == "too large":
        body += b"&pad=" + b"x" * (300 * 1024)
    elif how == "unknown tenant":
        path = "/t/no-such-tenant/token"
    environ = {"CONTENT_TYPE": content_type}
    if how == "no length":
        environ["CONTENT_LENGTH"] = ""
    r = client.post(path, data=body, headers=headers, environ_overrides=environ)
    assert flask_requests, "Flask should have answered this one"
    assert r.status_code < 500 and r.is_json
    expected = {"json body": 400, "query string": 200, "nul byte": 400, "bad utf-8": 400,
                "too large": 413, "no length": 400, "unknown tenant": 404}[how]
    assert r.status_code == expected, r.get_data(as_text=True)


def test_discovery_and_jwks_are_flasks_documents(client, flask_only, world, flask_requests):
    for path in ("/.well-known/openid-configuration", "/.well-known/oauth-authorization-server",
                 "/jwks"):
        direct = client.get(f"/t/{world.slug}{path}")
        assert not flask_requests  # served in front of Flask
        flask = flask_only.get(f"/t/{world.slug}{path}")
        flask_requests.clear()
        assert direct.status_code == 200 and direct.headers["Cache-Control"] == "public, max-age=300"
        assert direct.get_data() == flask.get_data()
        assert comparable(direct) == comparable(flask)
    assert client.get("/t/no-such-tenant/jwks").status_code == 404


def test_redis_failing_during_a_grant_is_temporarily_unavailable(client, world, monkeypatch):
    from redis.exceptions import ConnectionError

    from idp.clients import CLIENTS

    def down(*args, **kwargs):
        raise ConnectionError("down")

    monkeypatch.setattr(CLIENTS, "get", down)
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(world.service.client_id, world.service.client_secret))
    assert r.status_code == 503, r.get_data(as_text=True)
    assert r.get_json()["error"] == "temporarily_unavailable" and r.headers["Retry-After"]


@pytest.mark.parametrize("failure,status,error", [
    # The database went away: the client is told to retry, as OAuth says.
    (OperationalError("SELECT", {}, Exception("the database went away")), 503,
     "temporarily_unavailable"),
    # A fault of ours: a JSON 500 the client can read, never a dropped connection.
    (RuntimeError("a bug"), 500, "server_error"),
])
def test_a_failure_during_a_grant_is_a_json_answer_not_a_dropped_connection(
        client, world, monkeypatch, failure, status, error):
    from idp.clients import CLIENTS

    def broken(*args, **kwargs):
        raise failure

    monkeypatch.setattr(CLIENTS, "get", broken)
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(world.service.client_id, world.service.client_secret))
    assert r.status_code == status and r.get_json()["error"] == error
