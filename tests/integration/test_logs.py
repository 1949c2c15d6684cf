"""The logs a live server writes: JSON lines an operator can search by request, tenant, client
and outcome, and never a password, code, secret or token."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pyotp
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session

from idp.config import Settings
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.live_server import serve
from tests.support.totp import with_totp


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def lines(path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            assert not line.startswith("{"), line  # a JSON line that does not parse
    return out


def test_a_sign_in_logs_json_lines_with_request_tenant_client_and_outcome_and_no_secret(
        app, settings, world, tmp_path):
    log_path = tmp_path / "server.log"
    server = serve(settings, log_path)
    issuer = f"{server.url}/t/{world.slug}"
    secrets_seen: list[str] = [world.password, world.portal.client_secret]
    try:
        seed = with_totp(app, world)
        oauth = OAuth2Session(world.portal.client_id, world.portal.client_secret,
                              scope="openid offline_access",
                              redirect_uri=world.portal.redirect_uri, code_challenge_method="S256")
        verifier = secrets.token_urlsafe(48)
        url, _ = oauth.create_authorization_url(f"{issuer}/authorize", code_verifier=verifier,
                                                nonce="n-1")
        browser = Browser(requests.Session(), origin=server.url)
        login = browser.follow(browser.get(url), world.portal.redirect_uri)
        wrong = "wrong-" + secrets.token_hex(6)
        secrets_seen.append(wrong)
        login = browser.post(f"/t/{world.slug}/login", {
            "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
            "email": world.alice, "password": wrong})
        challenge = browser.sign_in(login, world.alice, world.password, world.slug,
                                    world.portal.redirect_uri)
        code = pyotp.TOTP(seed).now()
        secrets_seen.append(code)
        done = browser.post(f"/t/{world.slug}/login/verify", {
            "csrf_token": field(CSRF, challenge.text), "tx": field(TX, challenge.text),
            "factor": "totp", "code": code})
        assert done.status == 302 and "code=" in done.location
        secrets_seen.append(dict(p.split("=") for p in done.location.split("?")[1].split("&"))["code"])
        token = oauth.fetch_token(f"{issuer}/token", authorization_response=done.location,
                                  code_verifier=verifier,
                                  headers={"X-Request-ID": "rp-request-42"})
        secrets_seen += [token["access_token"], token["refresh_token"], token["id_token"]]
        refreshed = oauth.refresh_token(f"{issuer}/token", refresh_token=token["refresh_token"])
        secrets_seen += [refreshed["access_token"], refreshed["refresh_token"]]
        assert requests.get(f"{issuer}/userinfo", timeout=10, headers={
            "Authorization": f"Bearer {refreshed['access_token']}"}).status_code == 200
        # An admin's login token: the token is in the link's path.
        env = {**os.environ, "IDP_DATABASE_URL": settings.database_url,
               "IDP_KEYS_DIR": str(settings.keys_dir), "IDP_BASE_URL": server.url,
               "IDP_SECRET_KEY": settings.secret_key}
        made = subprocess.run([sys.executable, "-m", "idp", "login-token", "create", world.slug,
                               world.bob], env=env, capture_output=True, text=True, timeout=60)
        link = json.loads(made.stdout)["url"]
        secrets_seen.append(link.rsplit("/", 1)[1])
        assert requests.get(link, timeout=10, allow_redirects=False).status_code < 500
    finally:
        server.stop()

    text = log_path.read_text()
    for secret in secrets_seen:
        assert secret not in text, "a secret is in the log"
    access = [line for line in lines(log_path) if line["logger"] == "idp.access"]
    assert access and all(line["request_id"] and line["time"] and line["status"]
                          for line in access)
    mine = [line for line in access if line["tenant"] == world.slug]
    by_route = {}
    for line in mine:
        by_route.setdefault((line["method"], line["route"]), []).append(line)
    authorize = by_route[("GET", "/t/<tenant>/authorize")][0]
    assert authorize["client_id"] == world.portal.client_id and authorize["outcome"] == "ok"
    passwords = by_route[("POST", "/t/<tenant>/login")]
    assert [p["outcome"] for p in passwords][0] == "user.sign_in_failed"
    factor = by_route[("POST", "/t/<tenant>/login/verify")][0]
    assert "user.signed_in" in factor["outcome"] and factor["status"] == 302
    # The login pages know the client through the sign-in, not from a parameter.
    assert factor["client_id"] == world.portal.client_id
    tokens = by_route[("POST", "/t/<tenant>/token")]
    assert [(t["grant_type"], t["status"], t["client_id"]) for t in tokens] == [
        ("authorization_code", 200, world.portal.client_id),
        ("refresh_token", 200, world.portal.client_id)]
    assert tokens[0]["request_id"] == "rp-request-42"  # the caller's id, to join the two logs
    assert ("GET", "/t/<tenant>/login/token/<token>") in by_route


def test_log_settings_refuse_what_they_do_not_know():
    with pytest.raises(ValueError, match="IDP_LOG_FORMAT"):
        Settings.from_env({"IDP_LOG_FORMAT": "xml", "IDP_SECRET_KEY": "k" * 40})
    with pytest.raises(ValueError, match="IDP_ACCESS_LOG"):
        Settings.from_env({"IDP_ACCESS_LOG": "yes", "IDP_SECRET_KEY": "k" * 40})
