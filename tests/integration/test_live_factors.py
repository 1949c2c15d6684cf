"""What a relying party sees after each factor, and after the policy's and its own demands:
Authlib's OAuth 2 client against the live ``idp serve``, ID tokens verified against JWKS.

Factors are enrolled through the hosted pages of the in-process app (same database); the
sign-ins that matter go through the live server, as a portal's users would.
"""

from __future__ import annotations

import json
import secrets
import time

import pyotp
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from idp import db, directory
from tests.support.account import CEREMONY, answer_challenge, enroll_backup_codes, password_sign_in
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.questions import ASKED, enroll as enroll_questions
from tests.support.relying_party import ID_TOKEN_ALGS, rp
from tests.support.signin import not_now_to_backup_codes, open_forced_setup, set_policy, user_mfa
from tests.support.sms import enroll_sms, latest_code, new_mobile, thirty_seconds_later
from tests.support.soft_authenticator import SoftAuthenticator, options_from
from tests.support.totp import TOTP_KEY, enroll_totp
from tests.support.webauthn import answer as answer_webauthn, enroll
from tests.support.world import ClientCreds


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def provider(live_world) -> dict:
    return requests.get(f"{live_world.issuer}/.well-known/openid-configuration", timeout=10).json()


@pytest.fixture
def jwks(provider) -> KeySet:
    return KeySet.import_key_set(requests.get(provider["jwks_uri"], timeout=10).json())


def portal_sign_in(live_server, world, provider, jwks, prove=None, browser=None, creds=None, **params):
    """A portal signs alice in with Authlib; ``prove(browser, page)`` answers a factor page.
    Returns (verified ID-token claims, the browser)."""
    creds = creds or world.portal
    oauth = rp(creds, provider)
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url, _ = oauth.create_authorization_url(provider["authorization_endpoint"], code_verifier=verifier,
                                            state=state, nonce=nonce, **params)
    browser = browser or Browser(requests.Session(), origin=live_server.url)
    page = browser.follow(browser.get(url), creds.redirect_uri)
    if page.status == 200 and 'autocomplete="current-password"' in page.text:
        page = browser.sign_in(page, world.alice, world.password, world.slug, creds.redirect_uri)
    if page.status == 200:
        assert prove, page.text[:600]
        page = browser.follow(prove(browser, page), creds.redirect_uri)
    assert page.location and page.location.startswith(creds.redirect_uri), (page.status, page.text[:600])
    token = oauth.fetch_token(provider["token_endpoint"], authorization_response=page.location,
                              code_verifier=verifier, state=state)
    claims = jwt.decode(token["id_token"], jwks, algorithms=ID_TOKEN_ALGS).claims
    assert claims["nonce"] == nonce and claims["iss"] == world.issuer
    return claims, browser


def local(app) -> Browser:
    return Browser(app.test_client())


def test_password_only(live_server, live_world, provider, jwks):
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks)
    assert (claims["amr"], claims["acr"]) == (["pwd"], "pwd")


def test_authenticator_app(app, live_server, live_world, provider, jwks):
    secret = enroll_totp(local(app), live_world)
    # The next step's code: the step used to enroll is spent (on every worker, with Redis).
    next_step_code = pyotp.TOTP(secret).at(time.time() + 30)
    prove = lambda b, page: answer_challenge(b, live_world, page, "totp", code=next_step_code)  # noqa: E731
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, prove)
    assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "mfa")


def test_backup_code(app, live_server, live_world, provider, jwks):
    codes = enroll_backup_codes(local(app), live_world)
    prove = lambda b, page: answer_challenge(b, live_world, page, "backup", code=codes[0])  # noqa: E731
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, prove)
    assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "mfa")


def test_text_message(app, live_server, live_world, provider, jwks):
    phone = new_mobile()
    enroll_sms(app, local(app), live_world, phone)
    thirty_seconds_later(app, live_world)
    prove = lambda b, page: answer_challenge(b, live_world, page, "sms",  # noqa: E731
                                             code=latest_code(app, phone))
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, prove)
    assert (claims["amr"], claims["acr"]) == (["pwd", "sms", "mfa"], "mfa")


def test_security_questions_are_knowledge_never_mfa(app, live_server, live_world, provider, jwks):
    browser = local(app)
    password_sign_in(browser, live_world)
    answers = enroll_questions(browser, live_world)

    def prove(b, page):
        import html

        question = html.unescape(ASKED.search(page.text).group(1))
        return answer_challenge(b, live_world, page, "kba", answer=answers[question])

    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, prove)
    assert (claims["amr"], claims["acr"]) == (["pwd", "kba"], "pwd")


def test_step_up_with_acr_values_asks_only_the_second_factor(app, live_server, live_world, provider, jwks):
    codes = enroll_backup_codes(local(app), live_world)
    set_policy(app, live_world, mode="disabled")
    first, browser = portal_sign_in(live_server, live_world, provider, jwks)
    assert first["acr"] == "pwd"
    set_policy(app, live_world, mode="optional")

    def prove(b, page):
        assert "current-password" not in page.text  # no password again
        return answer_challenge(b, live_world, page, "backup", code=codes[1])

    stepped, _ = portal_sign_in(live_server, live_world, provider, jwks, prove, browser=browser,
                                acr_values="mfa")
    assert (stepped["amr"], stepped["acr"]) == (["pwd", "otp", "mfa"], "mfa")
    assert stepped["auth_time"] == first["auth_time"] and stepped["sid"] != first["sid"]


def test_an_unmet_essential_acr_reaches_the_portal_as_an_error(app, live_server, live_world, provider):
    enroll_backup_codes(local(app), live_world)
    oauth = rp(live_world.portal, provider)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["phr"]}}})
    url, state = oauth.create_authorization_url(provider["authorization_endpoint"], code_verifier="v" * 50,
                                                nonce="n", claims=claims)
    browser = Browser(requests.Session(), origin=live_server.url)
    page = browser.follow(browser.get(url), live_world.portal.redirect_uri)
    page = browser.sign_in(page, live_world.alice, live_world.password, live_world.slug,
                           live_world.portal.redirect_uri)
    # What a portal's callback reads (Authlib's web clients raise OAuthError from these).
    callback = query(page.location)
    assert callback["error"] == "unmet_authentication_requirements"
    assert callback["state"] == state and callback["iss"] == live_world.issuer


def test_forced_enrollment_then_the_code(app, live_server, live_world, provider, jwks):
    set_policy(app, live_world, mode="required", factors=["totp"])

    def enroll_now(b, page):
        setup = page  # the only method allowed: its setup at once (issue 16, finding 8)
        secret = TOTP_KEY.search(setup.text).group(1).replace(" ", "")
        return b.post(f"/t/{live_world.slug}/login/setup/totp", {
            "csrf_token": field(CSRF, setup.text), "tx": field(TX, setup.text),
            "ceremony": field(CEREMONY, setup.text), "code": pyotp.TOTP(secret).now()})

    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, enroll_now)
    assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "mfa")


def test_a_client_minimum_acr_applies_to_its_requests(app, live_server, live_world, provider, jwks):
    codes = enroll_backup_codes(local(app), live_world)
    set_policy(app, live_world, mode="disabled")
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, live_world.slug)
        new = directory.create_client(session, tenant, "Bank", ["https://bank.test/cb"], min_acr="mfa")
        session.commit()

    bank = ClientCreds(new.client.client_id, new.secret, "https://bank.test/cb", "")
    # MFA is off for the tenant, so the bank's floor cannot be met: an error, not a weak token.
    oauth = rp(bank, provider)
    url, state = oauth.create_authorization_url(provider["authorization_endpoint"], code_verifier="v" * 50)
    browser = Browser(requests.Session(), origin=live_server.url)
    page = browser.sign_in(browser.follow(browser.get(url), bank.redirect_uri), live_world.alice,
                           live_world.password, live_world.slug, bank.redirect_uri)
    assert query(page.location)["error"] == "unmet_authentication_requirements"
    set_policy(app, live_world, mode="optional")
    prove = lambda b, p: answer_challenge(b, live_world, p, "backup", code=codes[0])  # noqa: E731
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, prove, creds=bank)
    assert claims["acr"] == "mfa"


def test_passkey_reaches_phr(live_server, live_world, provider, jwks):
    """Enrolled and used on the live server itself: its origin is the relying party's view."""
    soft = SoftAuthenticator(live_server.url)
    browser = Browser(requests.Session(), origin=live_server.url)
    password_sign_in(browser, live_world)
    enroll(browser, live_world, soft)
    prove = lambda b, page: answer_webauthn(b, live_world, page, soft.get(options_from(page.text)))  # noqa: E731
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks, prove)
    assert (claims["amr"], claims["acr"]) == (["pwd", "hwk", "user", "mfa"], "phr")


# --- The tenant's policy, as a portal using Authlib sees it -----------------------------------
def admin_action(app, world, email, action):
    user_mfa(app, world, email, action)


def totp_setup(world):
    """Complete the forced setup wizard with an authenticator app."""

    def enroll_now(b, page):
        assert "Set up " in page.text, page.text[:400]
        setup = open_forced_setup(b, world, page)  # the wizard, or its only method's page
        secret = TOTP_KEY.search(setup.text).group(1).replace(" ", "")
        done = b.post(f"/t/{world.slug}/login/setup/totp", {
            "csrf_token": field(CSRF, setup.text), "tx": field(TX, setup.text),
            "ceremony": field(CEREMONY, setup.text), "code": pyotp.TOTP(secret).now()})
        return not_now_to_backup_codes(b, done)

    return enroll_now


def test_policy_disabled_ignores_enrolled_factors(app, live_server, live_world, provider, jwks):
    enroll_backup_codes(local(app), live_world)
    set_policy(app, live_world, mode="disabled")
    claims, _ = portal_sign_in(live_server, live_world, provider, jwks)
    assert claims["amr"] == ["pwd"]


def test_policy_for_a_group(app, live_server, live_world, provider, jwks):
    from idp import admin

    codes = enroll_backup_codes(local(app), live_world)
    with app.app_context():
        session = db.session()
        admin.create_group(session, directory.get_tenant(session, live_world.slug), "Finance", "test")
        session.commit()
    set_policy(app, live_world, mode="required", groups=["Finance"])
    assert portal_sign_in(live_server, live_world, provider, jwks)[0]["amr"] == ["pwd"]
    with app.app_context():
        session = db.session()
        admin.add_to_group(session, directory.get_tenant(session, live_world.slug), "Finance",
                           live_world.alice, "test")
        session.commit()
    prove = lambda b, p: answer_challenge(b, live_world, p, "backup", code=codes[0])  # noqa: E731
    assert portal_sign_in(live_server, live_world, provider, jwks, prove)[0]["acr"] == "mfa"


def test_admin_enforce_exempt_and_reset(app, live_server, live_world, provider, jwks):
    set_policy(app, live_world, mode="optional", factors=["totp", "backup"])
    admin_action(app, live_world, live_world.alice, "enforce")
    enforced, _ = portal_sign_in(live_server, live_world, provider, jwks, totp_setup(live_world))
    assert enforced["acr"] == "mfa"  # an admin switched it on: setup at the next sign-in
    admin_action(app, live_world, live_world.alice, "exempt")
    assert portal_sign_in(live_server, live_world, provider, jwks)[0]["amr"] == ["pwd"]
    admin_action(app, live_world, live_world.alice, "default")
    admin_action(app, live_world, live_world.alice, "reset")  # factors gone: set up again
    again, _ = portal_sign_in(live_server, live_world, provider, jwks, totp_setup(live_world))
    assert again["acr"] == "mfa"


def test_grace_skip_then_forced_setup(app, live_server, live_world, provider, jwks):
    set_policy(app, live_world, mode="required", factors=["totp"], grace_skips=1)

    def skip(b, page):
        assert "Not now (1 skip left)" in page.text
        return b.post(f"/t/{live_world.slug}/login/setup/skip",
                      {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text)})

    assert portal_sign_in(live_server, live_world, provider, jwks, skip)[0]["amr"] == ["pwd"]
    forced, _ = portal_sign_in(live_server, live_world, provider, jwks, totp_setup(live_world))
    assert forced["amr"] == ["pwd", "otp", "mfa"]
