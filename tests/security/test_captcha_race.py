"""The CAPTCHA threshold holds under a burst: of simultaneous wrong guesses, no more than the
tenant's ``captcha_after`` are checked without a solved CAPTCHA, for passwords and second
factors alike, on real Redis and on the embedded store. A refused guess spends nothing.

Peers: Keycloak CVE-2024-4629 (brute-force protection bypassed by simultaneous logins), and
the limit-overrun race class (CWE-362; Keycloak CVE-2024-1722). Review finding 6 of issue 15.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
import requests
from sqlalchemy import func, select

from idp import create_app, db
from idp import password
from idp.models import AuditEvent, Tenant
from tests.support.account import password_sign_in, start_enrollment, submit_enrollment
from tests.support.attempts import answer, try_password
from tests.support.burst import EveryoneAtTheGuard, all_at_once
from tests.support.captcha import solve
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.signin import set_policy

CAPTCHA_AFTER, LOCK_AFTER = 3, 5
GHOST = "ghost@example.com"  # no account behind it


def audited(app, world, action: str) -> int:
    with app.app_context():
        session = db.session()
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == world.slug))
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == tenant_id, AuditEvent.action == action))


def ready_to_guess(browsers: list[Browser], world, email: str) -> list:
    """One wrong-password post per browser, each from its own login page."""
    posts = []
    for browser in browsers:
        page = browser.get(f"/t/{world.slug}/login")
        form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
                "email": email, "password": "a wrong guess"}
        posts.append(lambda b=browser, f=form: answer(b.post(f"/t/{world.slug}/login", f)))
    return posts


def the_rest_waits_for_a_captcha(app, world, browser: Browser, email: str, checked: int) -> None:
    """After the burst the account is not locked: the next guess needs a CAPTCHA, and with one
    solved it is checked."""
    page = try_password(browser, world, email, "one more guess")
    assert answer(page) == "captcha"
    assert answer(try_password(browser, world, email, "one more guess", solve(page.text))) == "incorrect"
    assert audited(app, world, "user.sign_in_failed") == checked + 1


@pytest.mark.parametrize("who", ["real account", "unknown address"])
def test_a_burst_of_wrong_passwords_at_a_live_server_checks_no_more_than_the_threshold(
        app, live_server, live_world, who):
    world = live_world
    set_policy(app, world, captcha_after=CAPTCHA_AFTER, lock_after=LOCK_AFTER)
    email = world.alice if who == "real account" else GHOST
    browsers = [Browser(requests.Session(), live_server.url) for _ in range(30)]
    answers = all_at_once(ready_to_guess(browsers, world, email))
    # Refused: asked for the CAPTCHA, or to retry before anything was counted (a worker's
    # queue of password checks was full), or told it is locked while the others' guesses
    # were being checked.
    assert set(answers) <= {"incorrect", "captcha", "busy", "locked"}, answers
    checked = audited(app, world, "user.sign_in_failed")
    assert 1 <= answers.count("incorrect") == checked <= CAPTCHA_AFTER, answers
    the_rest_waits_for_a_captcha(app, world, browsers[0], email, checked)


@pytest.mark.parametrize("who", ["real account", "unknown address"])
def test_wrong_passwords_reaching_the_guard_together_check_no_more_than_the_threshold(
        app, world, monkeypatch, who):
    """The worst order: every guess of the burst reaches the guard before any goes on."""
    set_policy(app, world, captcha_after=CAPTCHA_AFTER, lock_after=LOCK_AFTER)
    email = world.alice if who == "real account" else GHOST
    burst = password.CONCURRENT_VERIFIES + password.QUEUED_VERIFIES  # all a worker admits
    assert burst > LOCK_AFTER
    browsers = [Browser(app.test_client()) for _ in range(burst)]
    posts = ready_to_guess(browsers, world, email)
    guard = app.extensions["idp.guard"]
    monkeypatch.setitem(app.extensions, "idp.guard",
                        replace(guard, store=EveryoneAtTheGuard(guard.store, burst)))
    answers = all_at_once(posts)
    monkeypatch.setitem(app.extensions, "idp.guard", guard)
    checked = audited(app, world, "user.sign_in_failed")
    assert answers.count("incorrect") == checked == CAPTCHA_AFTER, answers
    assert set(answers) <= {"incorrect", "captcha", "locked"}, answers
    the_rest_waits_for_a_captcha(app, world, browsers[0], email, checked)


def test_wrong_second_factors_reaching_the_guard_together_check_no_more_than_the_threshold(
        app, world, monkeypatch):
    set_policy(app, world, captcha_after=CAPTCHA_AFTER, lock_after=LOCK_AFTER)
    setup = Browser(app.test_client())
    password_sign_in(setup, world)
    page = start_enrollment(setup, world, "backup")
    assert submit_enrollment(setup, world, "backup", page).status == 302
    burst = LOCK_AFTER + 3
    posts = []
    for _ in range(burst):  # each at the second-factor page of its own sign-in
        browser = Browser(app.test_client())
        page = password_sign_in(browser, world)
        assert page.status == 200 and "/login/verify" in page.text, page.text[:500]
        form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
                "factor": "backup", "code": "aaaa-bbbb"}
        posts.append(lambda b=browser, f=form: b.post(f"/t/{world.slug}/login/verify", f))
    guard = app.extensions["idp.guard"]
    monkeypatch.setitem(app.extensions, "idp.guard",
                        replace(guard, store=EveryoneAtTheGuard(guard.store, burst)))
    pages = all_at_once(posts)
    monkeypatch.setitem(app.extensions, "idp.guard", guard)
    answers = ["incorrect" if "backup code is not right" in p.text else answer(p) for p in pages]
    assert answers.count("incorrect") == audited(app, world, "mfa.challenge_failed") == CAPTCHA_AFTER
    assert set(answers) <= {"incorrect", "captcha", "locked"}, answers


def test_a_guess_refused_for_want_of_a_captcha_spends_nothing(settings, world):
    """Neither the account's attempts nor the network's: the refused guesses checked nothing."""
    app = create_app(replace(settings, ip_failures_per_10_minutes=LOCK_AFTER), TESTING=True)
    try:
        set_policy(app, world, captcha_after=CAPTCHA_AFTER, lock_after=LOCK_AFTER)
        browser = Browser(app.test_client())
        browser.http.environ_base["REMOTE_ADDR"] = f"2001:db8::{secrets.token_hex(2)}:7"
        for _ in range(CAPTCHA_AFTER):
            page = try_password(browser, world, world.alice, "a wrong guess")
        answers = [answer(try_password(browser, world, world.alice, "a guess")) for _ in range(10)]
        assert answers == ["captcha"] * 10
        page = try_password(browser, world, world.alice, "a wrong guess", solve(page.text))
        assert answer(page) == "incorrect"
        page = try_password(browser, world, world.alice, world.password, solve(page.text))
        assert answer(page) == "signed in"
    finally:
        app.extensions["idp.engine"].dispose()
