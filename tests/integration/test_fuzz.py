"""Hypothesis against every endpoint's parameters: whatever arrives (known names with hostile
values, unknown names, repeated names, NUL, CR/LF and other control characters, surrogates,
huge strings, JSON nested deep or of the wrong types), the answer is an error a client or a
person can read, never a 500."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.support.journey import CSRF, TX, field
from tests.support.rp import basic

FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

controls = st.text(alphabet=st.one_of(st.characters(categories=["Cc"]), st.sampled_from("/a.?=")),
                   min_size=1, max_size=20)  # NUL, CR, LF, DEL, C1: what splits a header
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
deep_json = st.builds(lambda opener, depth: opener * depth, st.sampled_from(["[", '{"a":', '{"id_token":']),
                      st.integers(min_value=900, max_value=4000))
json_text = st.one_of(json_values.map(json.dumps), deep_json,
                      st.dictionaries(st.sampled_from(["id_token", "userinfo", "acr", "essential",
                                                       "values", "value"]),
                                      json_values, max_size=3).map(json.dumps))

hostile = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=300),
    controls,
    json_text,
    st.sampled_from(["", "\x00", "%00", "null", "[]", "{}", "-1", "1e309", "S256", "plain",
                     "openid", "openid profile email offline_access", "code", "token",
                     "https://portal.test/callback", "https://evil.test/", "../../etc/passwd",
                     "a" * 5000, "\u202e", "\ud800" * 0 + "\U0001f600", "<script>", "' OR 1=1 --",
                     "\r\n", "/t/x/\r\nSet-Cookie: a=1", "[" * 4000]),
)


def params(names):
    """A list of (name, value) pairs: known names, sometimes repeated, plus unknown ones."""
    known = st.tuples(st.sampled_from(names), hostile)
    unknown = st.tuples(st.text(min_size=1, max_size=20), hostile)
    return st.lists(st.one_of(known, known, unknown), max_size=12)


AUTHORIZE = ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce",
             "code_challenge", "code_challenge_method", "prompt", "max_age", "acr_values",
             "claims", "login_hint", "ui_locales", "response_mode", "request", "request_uri"]
TOKEN = ["grant_type", "code", "redirect_uri", "code_verifier", "refresh_token", "scope",
         "client_id", "client_secret", "client_assertion", "client_assertion_type"]
LOGIN = ["csrf_token", "tx", "email", "password", "altcha", "factor", "code", "next"]


def _body(pairs) -> bytes:
    return urlencode([(k, v) for k, v in pairs], encoding="utf-8",
                     errors="surrogatepass").encode("utf-8", "surrogatepass")


def answered_cleanly(response) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data()[:300])


@FUZZ
@given(pairs=params(AUTHORIZE), registered=st.booleans())
@example(pairs=[("claims", "[" * 4000)], registered=True)  # RecursionError in json.loads
def test_authorize_never_answers_500(client, world, pairs, registered):
    if registered:  # a real client and its redirect URI: the request gets past the first checks
        pairs = [("client_id", world.portal.client_id), ("redirect_uri", world.portal.redirect_uri),
                 ("response_type", "code"), ("scope", "openid")] + pairs
    query = urlencode(pairs, encoding="utf-8", errors="surrogatepass")
    answered_cleanly(client.get(f"/t/{world.slug}/authorize?{query}"))


@FUZZ
@given(pairs=params(TOKEN), auth=st.sampled_from(["portal", "service", "wrong", "none"]),
       content_type=st.sampled_from(["application/x-www-form-urlencoded", "application/json",
                                     "text/plain", "multipart/form-data"]))
def test_token_never_answers_500(client, world, pairs, auth, content_type):
    headers = {"Content-Type": content_type}
    if auth == "portal":
        headers |= basic(world.portal.client_id, world.portal.client_secret)
    elif auth == "service":
        headers |= basic(world.service.client_id, world.service.client_secret)
    elif auth == "wrong":
        headers |= basic(world.portal.client_id, "not-the-secret")
    response = client.post(f"/t/{world.slug}/token", data=_body(pairs), headers=headers)
    answered_cleanly(response)
    assert response.is_json  # an OAuth error (or a token), never a page


@FUZZ
@given(pairs=params(["token", "token_type_hint", "client_id", "client_secret"]),
       endpoint=st.sampled_from(["revoke", "introspect"]))
def test_revocation_and_introspection_never_answer_500(client, world, pairs, endpoint):
    answered_cleanly(client.post(
        f"/t/{world.slug}/{endpoint}", data=_body(pairs),
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 **basic(world.portal.client_id, world.portal.client_secret)}))


@FUZZ
@given(client_id=hostile, secret=hostile,
       endpoint=st.sampled_from(["token", "revoke", "introspect"]))
@example(client_id="\x00", secret="x", endpoint="token")  # reached PostgreSQL's client lookup
def test_client_credentials_in_any_header_never_answer_500(client, world, client_id, secret,
                                                           endpoint):
    encoded = f"{client_id}:{secret}".encode("utf-8", "surrogatepass")
    response = client.post(f"/t/{world.slug}/{endpoint}",
                           headers={"Authorization": "Basic " + base64.b64encode(encoded).decode()},
                           data={"grant_type": "client_credentials", "token": "x"})
    answered_cleanly(response)
    assert response.is_json


@FUZZ
@given(authorization=hostile, scheme=st.sampled_from(["Bearer ", "bearer ", "Basic ", "", "DPoP "]))
def test_userinfo_never_answers_500(client, world, authorization, scheme):
    # What can travel in a header: bytes as latin-1, no line breaks.
    value = (scheme + authorization).encode("utf-8", "surrogatepass").decode("latin-1")
    value = value.replace("\r", "").replace("\n", "")
    answered_cleanly(client.get(f"/t/{world.slug}/userinfo", headers={"Authorization": value}))


@FUZZ
@given(pairs=params(LOGIN), path=st.sampled_from(["login", "login/verify", "login/setup/totp",
                                                  "consent", "signout"]),
       query=params(["tx", "next", "factor"]))
def test_hosted_pages_never_answer_500(client, world, pairs, path, query):
    url = f"/t/{world.slug}/{path}?{urlencode(query, encoding='utf-8', errors='surrogatepass')}"
    answered_cleanly(client.get(url))
    answered_cleanly(client.post(url, data=_body(pairs),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}))


@FUZZ
@given(slug=st.text(max_size=80), rest=st.sampled_from(
    ["", "/", "/.well-known/openid-configuration", "/jwks", "/token", "/authorize", "/login"]))
@example(slug="\x00", rest="/")  # PostgreSQL refused the lookup (found by CI on PostgreSQL)
@example(slug="acme\n", rest="/jwks")
def test_any_tenant_path_never_answers_500(client, slug, rest):
    path = "/t/" + quote(slug.encode("utf-8", "surrogatepass"), safe="") + rest
    answered_cleanly(client.get(path))


def _login_form(client, world, **fields) -> dict:
    page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    return {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": world.alice, **fields}


@FUZZ
@given(suffix=st.one_of(hostile, controls))
@example(suffix="account\r\nSet-Cookie: a=1")  # a 500 right after a successful sign-in
def test_signing_in_with_any_next_never_answers_500(client, world, suffix):
    """The ``next`` a sign-in link carries is only used once the password was right."""
    target = f"/t/{world.slug}/{suffix}"
    page = client.get(f"/t/{world.slug}/login?" + urlencode({"next": target}, encoding="utf-8",
                                                             errors="surrogatepass"))
    answered_cleanly(page)
    if page.status_code != 200:
        return  # refused on arrival (NUL, a broken encoding): nothing to sign in to
    html = page.get_data(as_text=True)
    response = client.post(f"/t/{world.slug}/login", data={
        "csrf_token": field(CSRF, html), "tx": field(TX, html), "email": world.alice,
        "password": world.password})
    answered_cleanly(response)
    assert response.status_code == 302


captcha_payloads = st.one_of(
    hostile,
    json_text.map(lambda text: base64.b64encode(text.encode()).decode()),
    st.fixed_dictionaries({name: json_values for name in
                           ("algorithm", "challenge", "number", "salt", "signature")})
    .map(lambda d: base64.b64encode(json.dumps(d).encode()).decode()),
)


@pytest.fixture
def asked_for_captcha(client, world):
    """Alice failed enough that every further attempt needs a CAPTCHA (unsolved ones are not
    counted, so she stays there for every example)."""
    for _ in range(3):
        client.post(f"/t/{world.slug}/login", data=_login_form(client, world, password="wrong"))
    return world


@FUZZ
@given(payload=captcha_payloads)
@example(payload=base64.b64encode(json.dumps(
    {"algorithm": "SHA-256", "challenge": "x", "number": 1, "salt": ["a"], "signature": "y"}).encode()).decode())
@example(payload=base64.b64encode(b"[" * 3000).decode())
def test_any_captcha_payload_never_answers_500(client, asked_for_captcha, payload):
    world = asked_for_captcha
    response = client.post(f"/t/{world.slug}/login",
                           data=_login_form(client, world, password="wrong", altcha=payload))
    answered_cleanly(response)
