"""Malformed input anywhere is a 4xx with a clear error, never a 500, and changes nothing."""

from __future__ import annotations

import base64

import pytest

from idp import db, directory
from idp.journey.upstream_trust import upstream_methods

GARBAGE = [
    "", " ", "\x00", "%00", "😀" * 50, "a" * 5000, "' OR 1=1 --", "<script>alert(1)</script>",
    "../../etc/passwd", "null", "[]", "{}", "%ff%fe", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
]

ENDPOINTS = [
    ("GET", "/authorize"), ("POST", "/authorize"), ("POST", "/token"), ("POST", "/revoke"),
    ("POST", "/introspect"), ("GET", "/userinfo"), ("POST", "/userinfo"), ("GET", "/logout"),
    ("POST", "/login"), ("POST", "/consent"), ("GET", "/authorize/resume"), ("GET", "/login"),
]

PARAMS = ["client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "prompt", "max_age",
          "code_challenge", "code_challenge_method", "id_token_hint", "login_hint", "grant_type", "code",
          "code_verifier", "refresh_token", "token", "token_type_hint", "access_token", "tx",
          "post_logout_redirect_uri", "client_secret", "email", "password"]


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("value", GARBAGE)
def test_every_parameter_garbage_is_never_a_500(client, world, method, path, value):
    data = {name: value for name in PARAMS}
    url = f"/t/{world.slug}{path}"
    r = client.get(url, query_string=data) if method == "GET" else client.post(url, data=data)
    assert r.status_code < 500, r.get_data(as_text=True)[:500]


@pytest.mark.parametrize("value", GARBAGE)
def test_garbage_with_a_real_client_is_never_a_500(client, world, value):
    """Past the client check the request reaches Authlib; it must still answer 4xx or redirect."""
    base = {"client_id": world.portal.client_id, "redirect_uri": world.portal.redirect_uri,
            "response_type": "code", "scope": "openid"}
    for name in ("response_type", "scope", "state", "nonce", "prompt", "max_age", "code_challenge",
                 "code_challenge_method", "id_token_hint", "login_hint"):
        r = client.get(f"/t/{world.slug}/authorize", query_string={**base, name: value})
        assert r.status_code < 500, (name, r.get_data(as_text=True)[:300])
    basic = base64.b64encode(f"{world.portal.client_id}:{world.portal.client_secret}".encode()).decode()
    for grant in ("authorization_code", "refresh_token", "client_credentials", value):
        r = client.post(f"/t/{world.slug}/token", headers={"Authorization": f"Basic {basic}"},
                        data={"grant_type": grant, "code": value, "refresh_token": value,
                              "code_verifier": value, "redirect_uri": value, "scope": value})
        assert 400 <= r.status_code < 500 and "error" in r.get_json(), r.get_data(as_text=True)[:300]


@pytest.mark.parametrize("header", [
    "Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(),
    "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(), "Bearer",
    # NUL reached PostgreSQL through the client lookup: now an unknown client, 401.
    "Basic " + base64.b64encode(b"\x00:x").decode(), "Basic " + base64.b64encode(b"a\x00b:\x00").decode(), "Bearer a b c", "Digest x=y", "x" * 9000,
])
def test_broken_authorization_headers(client, world, header):
    for path in ("/token", "/revoke", "/introspect", "/userinfo"):
        r = client.post(f"/t/{world.slug}{path}", headers={"Authorization": header},
                        data={"grant_type": "client_credentials", "token": "x"})
        assert 400 <= r.status_code < 500, (path, r.status_code)


def test_json_body_and_wrong_content_types(client, world):
    for path in ("/token", "/revoke", "/introspect", "/login", "/userinfo"):
        r = client.post(f"/t/{world.slug}{path}", json={"grant_type": ["a", "b"]})
        assert 400 <= r.status_code < 500
        r = client.post(f"/t/{world.slug}{path}", data=b"\xff\xfe\x00garbage",
                        content_type="application/x-www-form-urlencoded")
        assert 400 <= r.status_code < 500


def test_huge_body_is_413_not_500(client, world):
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "x" * (300 * 1024)})
    assert r.status_code == 413


def test_wrong_methods_are_405(client, world):
    assert client.get(f"/t/{world.slug}/token").status_code == 405
    assert client.delete(f"/t/{world.slug}/authorize").status_code == 405


def test_a_trailing_newline_is_not_part_of_a_valid_name(app, client, world):
    """A `$` anchor accepts "name\\n": slugs and emails must match whole."""
    assert client.get(f"/t/{world.slug}%0A/.well-known/openid-configuration").status_code == 404
    assert client.get(f"/t/{world.slug}%00/jwks").status_code == 404
    with app.app_context():
        session = db.session()
        with pytest.raises(directory.DirectoryError, match="slug"):
            directory.create_tenant(session, "newline\n")
    # An upstream's amr value is copied into our tokens only if it is a plain token.
    assert upstream_methods({"amr": ["pwd\n", "otp"]}) == ["otp"]


def test_a_value_the_database_refuses_is_a_400_not_a_500(app, client, world,
                                                          monkeypatch):
    """The last net under every check: a value the database cannot hold (PostgreSQL's NUL,
    an overlong string) is the request's fault, on the fast token path and in Flask alike."""
    from sqlalchemy.exc import DataError

    from idp import clients

    def refused(tenant_id, client_id):
        raise DataError("SELECT …", {}, ValueError("text fields cannot contain NUL"))

    monkeypatch.setattr(clients, "_load_client", refused)
    monkeypatch.setattr(clients, "CLIENTS", type(clients.CLIENTS)("clients-test"))
    auth = {"Authorization": "Basic " + base64.b64encode(b"someone:x").decode()}
    for path in ("/token", "/revoke"):
        r = client.post(f"/t/{world.slug}{path}", headers=auth,
                        data={"grant_type": "client_credentials", "token": "x"})
        assert r.status_code == 400, (path, r.status_code)
        assert r.get_json()["error"] == "invalid_request"
    page = client.get(f"/t/{world.slug}/authorize", query_string={
        "client_id": "someone", "response_type": "code", "scope": "openid",
        "redirect_uri": "https://portal.test/callback"})
    assert page.status_code == 400 and "never valid here" in page.get_data(as_text=True)


def test_an_id_no_row_can_have_is_not_found_not_a_500(app, world):
    """A number past 64 bits in an address: SQLite's driver cannot even bind it (404, there
    is nothing there), PostgreSQL refuses the value (400, never valid): never a 500."""
    from tests.support.account import password_sign_in
    from tests.support.journey import CSRF, Browser, field
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    account = browser.get(f"/t/{world.slug}/account")
    huge = "9" * 30
    for path in (f"/account/factors/{huge}/rename", f"/account/remembered/{huge}/forget"):
        page = browser.post(f"/t/{world.slug}{path}", {"csrf_token": field(CSRF, account.text),
                                                       "name": "x"})
        assert page.status in (400, 404), (path, page.status)
        assert "Internal Server Error" not in page.text
