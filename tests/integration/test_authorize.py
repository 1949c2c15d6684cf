"""The authorization endpoint: validation, errors to the right place, prompt, max_age, hints."""

from __future__ import annotations

import time

import pytest

from tests.support.journey import TX, Browser, field, query
from tests.support.rp import get_code, params_for, redeem


@pytest.fixture
def browser(client):
    return Browser(client)


def sign_in(browser, world, email=None, **extra):
    params = params_for(world.portal, **extra)
    page = browser.authorize(f"/t/{world.slug}", params)
    return browser.sign_in(page, email or world.alice, world.password, world.slug,
                           world.portal.redirect_uri)


def test_sign_in_returns_code_state_and_issuer(browser, world):
    page = sign_in(browser, world)
    assert page.status == 302 and page.location.startswith(world.portal.redirect_uri + "?")
    q = query(page.location)
    assert q["state"] == "st-123"
    assert q["iss"] == world.issuer  # RFC 9207
    assert len(q["code"]) >= 32


def test_unknown_client_gets_an_error_page_not_a_redirect(browser, world):
    page = browser.get(f"/t/{world.slug}/authorize",
                       params_for(world.portal, client_id="no-such-client"))
    assert page.status == 400 and page.location is None
    assert "not registered" in page.text


@pytest.mark.parametrize("uri", [
    "https://evil.test/callback",
    "https://portal.test/callback/",  # trailing slash
    "https://PORTAL.test/callback",  # case
    "https://portal.test/callback?x=1",  # extra query
    "https://portal.test/call",  # prefix
])
def test_unregistered_redirect_uri_gets_an_error_page_never_a_redirect(browser, world, uri):
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, redirect_uri=uri))
    assert page.status == 400 and page.location is None
    assert "not registered" in page.text


def test_missing_redirect_uri_is_an_error_page(browser, world):
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, redirect_uri=None))
    assert page.status == 400 and page.location is None


def test_public_client_without_pkce_is_refused_at_the_client(browser, world):
    params = params_for(world.spa, code_challenge=None, code_challenge_method=None)
    page = browser.get(f"/t/{world.slug}/authorize", params)
    assert page.status == 302
    q = query(page.location)
    assert q["error"] == "invalid_request" and "PKCE" in q["error_description"]
    assert q["state"] == "st-123" and q["iss"] == world.issuer


@pytest.mark.parametrize("method", ["plain", None])
def test_pkce_plain_is_refused(browser, world, method):
    params = params_for(world.portal, code_challenge="a" * 43, code_challenge_method=method)
    page = browser.get(f"/t/{world.slug}/authorize", params)
    assert query(page.location)["error"] == "invalid_request"
    assert "S256" in query(page.location)["error_description"]


def test_unsupported_response_type_goes_back_to_the_client(browser, world):
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, response_type="token"))
    q = query(page.location)
    assert q["error"] == "unsupported_response_type" and q["iss"] == world.issuer


def test_repeated_parameter_is_invalid_request(client, world):
    params = params_for(world.portal)
    qs = "&".join(f"{k}={v}" for k, v in params.items()) + "&scope=openid"
    r = client.get(f"/t/{world.slug}/authorize?{qs}")
    assert r.status_code == 302
    assert query(r.headers["Location"])["error"] == "invalid_request"


def test_prompt_none_without_session_is_login_required(browser, world):
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    q = query(page.location)
    assert page.location.startswith(world.portal.redirect_uri)
    assert q["error"] == "login_required" and q["state"] == "st-123" and q["iss"] == world.issuer


def test_prompt_none_with_session_returns_a_code_without_a_page(browser, world):
    sign_in(browser, world)
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    assert "code" in query(page.location)


def test_prompt_none_with_other_values_is_invalid(browser, world):
    sign_in(browser, world)
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none login"))
    assert query(page.location)["error"] == "invalid_request"


def test_session_is_reused_without_a_prompt(browser, world):
    sign_in(browser, world)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    assert "code" in query(page.location)


def test_prompt_login_asks_again_even_with_a_session(browser, world):
    sign_in(browser, world)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, prompt="login"))
    assert page.status == 200 and 'autocomplete="current-password"' in page.text
    done = browser.sign_in(page, world.alice, world.password, world.slug, world.portal.redirect_uri)
    assert "code" in query(done.location)


def test_max_age_exceeded_asks_for_the_password_again(browser, world):
    sign_in(browser, world)
    time.sleep(1.1)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, max_age="0"))
    assert page.status == 200 and 'autocomplete="current-password"' in page.text
    fresh = browser.authorize(f"/t/{world.slug}", params_for(world.portal, max_age="3600"))
    assert "code" in query(fresh.location)


@pytest.mark.parametrize("value", ["-1", "soon", "1e3"])
def test_bad_max_age_is_invalid_request(browser, world, value):
    sign_in(browser, world)
    page = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, max_age=value))
    assert query(page.location)["error"] == "invalid_request"


def test_login_hint_fills_in_the_email(browser, world):
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, login_hint="bob@example.com"))
    assert 'value="bob@example.com"' in page.text


def test_garbage_id_token_hint_is_invalid_request(browser, world):
    sign_in(browser, world)
    page = browser.get(f"/t/{world.slug}/authorize",
                       params_for(world.portal, id_token_hint="a.b.c", prompt="none"))
    assert query(page.location)["error"] == "invalid_request"


def test_consent_prompt_shows_a_page_and_deny_is_access_denied(browser, world):
    sign_in(browser, world)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, prompt="consent"))
    assert page.status == 200 and "Allow" in page.text and "Portal" in page.text
    denied = browser.consent(page, world.slug, allow=False, stop_at=world.portal.redirect_uri)
    q = query(denied.location)
    assert q["error"] == "access_denied" and q["iss"] == world.issuer and q["state"] == "st-123"


def test_consent_allowed_returns_a_code(browser, world):
    sign_in(browser, world)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, prompt="consent"))
    allowed = browser.consent(page, world.slug, allow=True, stop_at=world.portal.redirect_uri)
    assert "code" in query(allowed.location)


def test_a_sign_in_link_from_another_browser_is_refused(app, world):
    victim, attacker = Browser(app.test_client()), Browser(app.test_client())
    page = attacker.authorize(f"/t/{world.slug}", params_for(world.portal))
    # The victim is lured to the attacker's login transaction.

    tx = field(TX, page.text)
    hijack = victim.get(f"/t/{world.slug}/login?tx={tx}")
    assert hijack.status == 400 and "expired" in hijack.text


def test_a_nonce_already_used_by_the_client_is_refused(browser, world):
    first = sign_in(browser, world, nonce="once-only")
    assert "code" in query(first.location)
    again = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, nonce="once-only"))
    assert query(again.location)["error"] == "invalid_request"


def test_of_two_sign_ins_with_one_nonce_at_once_only_the_first_gets_a_code(app, world):
    """A request replayed while the first is still signing in: both reach the login page, and
    the database refuses the second code when it would be saved (migration 0011)."""
    params = params_for(world.portal, nonce="raced")
    first, second = Browser(app.test_client()), Browser(app.test_client())
    first_login = first.authorize(f"/t/{world.slug}", params)
    second_login = second.authorize(f"/t/{world.slug}", params)
    done = first.sign_in(first_login, world.alice, world.password, world.slug,
                         world.portal.redirect_uri)
    assert "code" in query(done.location)
    replayed = second.sign_in(second_login, world.alice, world.password, world.slug,
                              world.portal.redirect_uri)
    answer = query(replayed.location)
    assert replayed.location.startswith(world.portal.redirect_uri) and "code" not in answer
    assert answer["error"] == "invalid_request" and answer["state"] == params["state"]


def test_unknown_tenant_is_404(browser, world):
    page = browser.get("/t/no-such-tenant/authorize", params_for(world.portal))
    assert page.status == 404 and page.location is None


def test_id_token_hint_for_someone_else_with_prompt_none_is_login_required(app, world):
    bobs_browser = app.test_client()
    code, verifier = get_code(bobs_browser, world, world.portal, email=world.bob)
    bobs_id_token = redeem(bobs_browser, world, world.portal, code, verifier).get_json()["id_token"]
    alices_browser = Browser(app.test_client())
    sign_in(alices_browser, world)
    page = alices_browser.get(f"/t/{world.slug}/authorize",
                              params_for(world.portal, prompt="none", id_token_hint=bobs_id_token))
    assert query(page.location)["error"] == "login_required"
    own = alices_browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    assert "code" in query(own.location)
