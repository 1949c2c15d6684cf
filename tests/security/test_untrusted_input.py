"""Input nobody signed in sent: deep JSON, JSON of the wrong types, control characters in a
redirect target. Each is a 4xx with a clear message (or an OAuth error), never a 500.

Peer CVE classes: uncontrolled recursion while parsing JSON nested deep (CWE-674; e.g.
CVE-2020-36518, jackson-databind), and CR/LF in what ends up in a header (CWE-113; e.g.
CVE-2019-9740, CPython's urllib). Review finding 10 of issue 15.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading

import pytest
from flask import Flask
from werkzeug.serving import make_server

from idp import admin, db, directory, untrusted
from tests.support.captcha import challenge_on, solve
from tests.support.console import admin_browser
from tests.support.journey import CSRF, TX, Browser, field, pkce_pair, query

CONTROL_CHARACTERS = ["\r\n", "\n", "\r", "\t", "\x7f", "\x85"]  # NUL: refused on arrival (below)


def params_for(creds, **extra) -> dict:
    _, challenge = pkce_pair()
    return {"response_type": "code", "client_id": creds.client_id,
            "redirect_uri": creds.redirect_uri, "scope": "openid", "state": "st-1",
            "nonce": secrets.token_urlsafe(8), "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def sign_in_form(page_text: str, world, **extra) -> dict:
    return {"csrf_token": field(CSRF, page_text), "tx": field(TX, page_text),
            "email": world.alice, "password": world.password, **extra}


# --- next= after signing in -----------------------------------------------------------------


@pytest.mark.parametrize("control", CONTROL_CHARACTERS)
def test_a_next_with_a_control_character_goes_home_after_sign_in(client, world, control):
    target = f"/t/{world.slug}/account{control}Set-Cookie: owned=1"
    page = client.get(f"/t/{world.slug}/login", query_string={"next": target})
    r = client.post(f"/t/{world.slug}/login", data=sign_in_form(page.get_data(as_text=True), world))
    assert r.status_code == 302, r.get_data(as_text=True)[:300]
    assert r.headers["Location"] == f"/t/{world.slug}/"
    assert "owned" not in str(r.headers)


def test_a_next_with_nul_is_refused_on_arrival(client, world):
    r = client.get(f"/t/{world.slug}/login", query_string={"next": f"/t/{world.slug}/account\x00"})
    assert r.status_code == 400 and "Location" not in r.headers


def test_a_clean_next_is_still_followed(client, world):
    page = client.get(f"/t/{world.slug}/login", query_string={"next": f"/t/{world.slug}/account"})
    r = client.post(f"/t/{world.slug}/login", data=sign_in_form(page.get_data(as_text=True), world))
    assert r.status_code == 302 and r.headers["Location"] == f"/t/{world.slug}/account"


def test_the_consoles_return_address_with_a_line_break_goes_to_the_users_list(app, world):
    browser = admin_browser(app, world)
    users = browser.get(f"/t/{world.slug}/admin/users")
    bob = re.search(rf'/admin/users/(\d+)"[^>]*>{re.escape(world.bob)}<', users.text).group(1)
    r = browser.post(f"/t/{world.slug}/admin/users/{bob}/unlock", {
        "csrf_token": field(CSRF, users.text),
        "back": f"/t/{world.slug}/admin/users\r\nSet-Cookie: owned=1"})
    assert r.status == 302 and r.location == f"/t/{world.slug}/admin/users"


# --- the claims parameter -------------------------------------------------------------------


@pytest.mark.parametrize("claims,reason", [
    ("[" * 4000, "nested too deeply"),  # within the 4,096 characters a parameter may have
    ('{"a":' * 680 + "1" + "}" * 680, "nested too deeply"),  # parses, yet too deep
    ('{"id_token": {"acr": {"essential": true, "values": ' + "[" * 30 + "]" * 30 + "}}}",
     "nested too deeply"),
    ("[]", "must be a JSON object"),
    ('"acr"', "must be a JSON object"),
    ("{", "not valid JSON"),
])
def test_a_hostile_claims_parameter_is_invalid_request(client, world, claims, reason):
    r = client.get(f"/t/{world.slug}/authorize", query_string=params_for(world.portal, claims=claims))
    assert r.status_code == 302 and r.headers["Location"].startswith(world.portal.redirect_uri)
    answer = query(r.headers["Location"])
    assert answer["error"] == "invalid_request" and reason in answer["error_description"]
    assert answer["state"] == "st-1"


def test_wrong_types_inside_the_claims_parameter_are_invalid_request(client, world):
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": [1, {"x": []}]}}})
    r = client.get(f"/t/{world.slug}/authorize", query_string=params_for(world.portal, claims=claims))
    assert query(r.headers["Location"])["error"] == "invalid_request"


# --- the CAPTCHA ----------------------------------------------------------------------------


def altcha(payload) -> str:
    return base64.b64encode((payload if isinstance(payload, str) else json.dumps(payload)).encode()).decode()


def captcha_page(client, world) -> str:
    """The login page once the account has failed enough to be asked for a CAPTCHA."""
    for _ in range(3):
        page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
        r = client.post(f"/t/{world.slug}/login",
                        data=sign_in_form(page, world, password="wrong password"))
    page = r.get_data(as_text=True)
    assert challenge_on(page) is not None
    return page


def solved_with(page: str, **changes) -> str:
    solution = json.loads(base64.b64decode(solve(page)))
    return altcha({**solution, **changes})


@pytest.mark.parametrize("make", [
    lambda page: altcha("[" * 3000),  # past the interpreter's stack, within the 4,096 characters
    lambda page: altcha('{"salt":' * 300 + '""' + "}" * 300),
    lambda page: solved_with(page, salt=["a", "b"]),
    lambda page: solved_with(page, salt={"expires": 1}),
    lambda page: solved_with(page, number="12"),
    lambda page: solved_with(page, algorithm=None),
    lambda page: altcha([1, 2, 3]),
    lambda page: "!!not base64!!",
], ids=["deep-array", "deep-object", "salt-list", "salt-object", "number-string",
        "algorithm-null", "array", "not-base64"])
def test_a_malformed_captcha_is_not_solved(client, world, make):
    page = captcha_page(client, world)
    fresh = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    r = client.post(f"/t/{world.slug}/login", data=sign_in_form(fresh, world, altcha=make(page)))
    assert r.status_code == 400 and "Complete the check" in r.get_data(as_text=True)
    # The real solution still works afterwards: nothing was spent or broken by the garbage.
    r = client.post(f"/t/{world.slug}/login", data=sign_in_form(fresh, world, altcha=solve(page)))
    assert r.status_code == 302


# --- an upstream's answers ------------------------------------------------------------------


@pytest.fixture
def deep_upstream():
    """An "OpenID provider" whose discovery document is nested 5,000 deep."""
    app = Flask("deep-upstream")
    app.add_url_rule("/.well-known/openid-configuration",
                     view_func=lambda: ("[" * 5000 + "]" * 5000, 200,
                                        {"Content-Type": "application/json"}))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_an_upstream_answering_deep_json_is_an_error_page(app, client, world, deep_upstream):
    with app.app_context():
        session = db.session()
        admin.add_upstream(session, app.extensions["idp.secretbox"],
                           directory.get_tenant(session, world.slug), slug="deep", name="Deep SSO",
                           issuer=deep_upstream, client_id="c", client_secret="s",
                           email_domains=[], trust_mfa="never", actor="test")
        session.commit()
    browser = Browser(client)
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    assert "Deep SSO" in login.text
    r = browser.post(f"/t/{world.slug}/login/upstream/deep",
                     {"csrf_token": field(CSRF, login.text), "tx": field(TX, login.text)})
    assert r.status == 502 and "Deep SSO is not available" in r.text


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value, why", [
    ({"a": ["b", {"c": 1}]}, None),
    ({"a": "x\x00y"}, "nul"),
    ({"k\x00": 1}, "nul"),
    (["\ud800"], "surrogate"),
    (_nested(40), "deep"),
    (_nested(20000), "deep"),  # deeper than Python could recurse
])
def test_what_no_database_stores_is_found_at_any_depth(value, why):
    assert untrusted.unstorable(value, max_depth=32) == why
