"""Authenticator apps (TOTP) through the hosted pages: enroll with a QR code or the setup key,
sign in with a code, one use per code on every worker, remove from the account page.

Codes are made with pyotp from the setup key shown on the page, at the real time: the server
accepts the previous, current and next step, so a code "one step ahead" made now is still
good a few seconds later, and it is later than the step the enrollment used.
"""

from __future__ import annotations

import html
import re
import threading
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import select

from idp import db, directory
from idp.models import AuditEvent, Authenticator
from tests.support.account import (answer_challenge, password_sign_in, start_enrollment,
                                   submit_enrollment)
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.rp import jwt_claims, redeem
from tests.support.signin import challenge_page
from tests.support.totp import TOTP_KEY, enroll_another, enroll_totp, totp_code

URI = re.compile(r'href="(otpauth://[^"]+)"')


def test_enrollment_page_shows_qr_and_setup_key_for_this_tenant_and_user(app, client, world):
    browser = Browser(client)
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "totp")
    assert re.search(r'id="totp-qr">\s*<svg[^>]*viewBox=', page.text) and "<path" in page.text
    assert "<img" not in page.text and "data:" not in page.text and "<script" not in page.text
    key = TOTP_KEY.search(page.text).group(1)
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{4})+", key)  # grouped in fours for typing
    uri = urlsplit(html.unescape(URI.search(page.text).group(1)))
    params = {k: v[0] for k, v in parse_qs(uri.query).items()}
    assert uri.netloc == "totp"
    assert params["issuer"] == f"Tenant {world.slug}"
    assert unquote(uri.path) == f"/Tenant {world.slug}:{world.alice}"
    assert params["secret"] == key.replace(" ", "")
    code_input = re.search(r'<input id="code"[^>]*>', page.text).group(0)
    assert 'autocomplete="one-time-code"' in code_input and 'inputmode="numeric"' in code_input
    assert 'pattern="[0-9]*"' in code_input
    assert 'name="name"' in page.text and 'value="Authenticator app"' in page.text


def test_a_wrong_confirmation_code_is_refused_and_a_valid_one_confirms(app, client, world):
    browser = Browser(client)
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "totp")
    secret = TOTP_KEY.search(page.text).group(1).replace(" ", "")
    wrong = str((int(totp_code(secret)) + 500_000) % 10**6).zfill(6)
    refused = submit_enrollment(browser, world, "totp", page, code=wrong, name="Work phone")
    assert refused.status == 400 and "not right" in refused.text
    # The page is shown again with the same key, and keeps the typed name.
    assert TOTP_KEY.search(refused.text).group(1).replace(" ", "") == secret
    assert 'value="Work phone"' in refused.text
    for junk in ("12ab56", "", "1" * 500):
        assert submit_enrollment(browser, world, "totp", refused, code=junk, name="Work phone").status == 400
    with app.app_context():  # in this tenant: other tests name their apps "Work phone" too
        tenant = directory.get_tenant(db.session(), world.slug)
        assert db.session().scalars(select(Authenticator).where(Authenticator.type == "totp")
                                    .where(Authenticator.tenant_id == tenant.id)
                                    .where(Authenticator.name == "Work phone")).first() is None
    done = submit_enrollment(browser, world, "totp", refused, code=totp_code(secret), name="Work phone")
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account")
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Work phone" in account and "Authenticator app" in account and secret not in account
    with app.app_context():
        auth = db.session().scalars(select(Authenticator).where(Authenticator.name == "Work phone")).one()
        assert auth.type == "totp" and secret not in str(auth.data)  # encrypted at rest


def test_a_code_completes_the_sign_in_as_mfa_and_a_wrong_one_is_refused(app, client, world):
    secret = enroll_totp(Browser(client), world)
    browser, verifier, page = challenge_page(app, world)
    assert page.status == 200 and "authenticator app" in page.text
    assert 'autocomplete="one-time-code"' in page.text and 'inputmode="numeric"' in page.text
    wrong = answer_challenge(browser, world, page, "totp", code=str((int(totp_code(secret, 1)) + 1) % 10**6).zfill(6))
    assert wrong.status == 400 and "not right" in wrong.text
    assert browser.http.get_cookie("idp_sso", path=f"/t/{world.slug}/") is None
    done = browser.follow(answer_challenge(browser, world, wrong, "totp", code=totp_code(secret, 1)),
                          world.portal.redirect_uri)
    assert done.location.startswith(world.portal.redirect_uri)
    tokens = redeem(browser.http, world, world.portal, query(done.location)["code"], verifier)
    claims = jwt_claims(tokens.get_json()["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"
    with app.app_context():
        actions = db.session().scalars(select(AuditEvent.action).where(AuditEvent.action.like("mfa.%"))).all()
    assert "mfa.challenge_failed" in actions and "mfa.challenge_passed" in actions


def test_a_code_used_in_one_sign_in_is_refused_in_the_next(app, client, world):
    secret = enroll_totp(Browser(client), world)
    value = totp_code(secret, 1)
    browser, _, page = challenge_page(app, world)
    first = browser.follow(answer_challenge(browser, world, page, "totp", code=value),
                           world.portal.redirect_uri)
    assert first.location.startswith(world.portal.redirect_uri)
    browser2, _, page2 = challenge_page(app, world)
    again = answer_challenge(browser2, world, page2, "totp", code=value)
    assert again.status == 400 and "used already" in again.text
    assert browser2.http.get_cookie("idp_sso", path=f"/t/{world.slug}/") is None


def test_the_confirmation_code_cannot_sign_in(app, client, world):
    browser = Browser(client)
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "totp")
    secret = TOTP_KEY.search(page.text).group(1).replace(" ", "")
    value = totp_code(secret)
    assert submit_enrollment(browser, world, "totp", page, code=value).status == 302
    browser2, _, page2 = challenge_page(app, world)
    assert answer_challenge(browser2, world, page2, "totp", code=value).status == 400


def test_one_code_racing_in_parallel_passes_once(app, client, world):
    secret = enroll_totp(Browser(client), world)
    pages = [challenge_page(app, world) for _ in range(4)]
    value = totp_code(secret, 1)
    barrier = threading.Barrier(len(pages))
    results = []

    def attempt(browser, page):
        barrier.wait()
        results.append(answer_challenge(browser, world, page, "totp", code=value).status)

    threads = [threading.Thread(target=attempt, args=(b, p)) for b, _, p in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [302, 400, 400, 400], results


def test_any_of_several_named_apps_signs_in(app, world):
    browser = Browser(app.test_client())
    phone = enroll_totp(browser, world, name="Phone")
    # A second app needs a session that passed the first one.
    after_mfa = sign_in_again_for_account(browser, world, totp_code(phone, 1))
    assert "Sign-in and security" in after_mfa.text
    tablet = enroll_another(browser, world, name="Tablet")
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Phone" in account and "Tablet" in account
    b2, _, p2 = challenge_page(app, world)
    assert "Phone, Tablet" in p2.text
    assert answer_challenge(b2, world, p2, "totp", code=totp_code(tablet, 1)).status == 302


def sign_in_again_for_account(browser: Browser, world, totp_code: str):
    """Changing factors needs a session that proved the second factor (as in the backup test)."""
    page = browser.get(f"/t/{world.slug}/account/add/totp")
    assert page.status == 302 and "/login" in page.location
    login = browser.follow(page, "\0")
    after_password = browser.follow(browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
        "email": world.alice, "password": world.password}), "\0")
    assert after_password.status == 200 and 'autocomplete="one-time-code"' in after_password.text
    return browser.follow(answer_challenge(browser, world, after_password, "totp", code=totp_code), "\0")


def test_removed_app_is_no_longer_asked_for(app, world):
    browser = Browser(app.test_client())
    secret = enroll_totp(browser, world, name="Old phone")
    account = sign_in_again_for_account(browser, world, totp_code(secret, 1))
    assert "Sign-in and security" in account.text and "Remove Old phone" in account.text
    action = re.search(r'action="([^"]*/factors/\d+/remove)"', account.text).group(1)
    removed = browser.post(html.unescape(action), {"csrf_token": field(CSRF, account.text)})
    assert removed.status == 302
    after = browser.get(f"/t/{world.slug}/account").text
    assert "Old phone removed" in after and "Remove Old phone" not in after
    with app.app_context():
        actions = db.session().scalars(select(AuditEvent.action).where(AuditEvent.action == "mfa.removed")).all()
    assert actions
    # The next sign-in goes from the password straight back to the portal.
    fresh, verifier, done = challenge_page(app, world)
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri)
    tokens = redeem(fresh.http, world, world.portal, query(done.location)["code"], verifier)
    assert jwt_claims(tokens.get_json()["id_token"])["amr"] == ["pwd"]
