"""Backup codes through the hosted pages: enroll, sign in with one, single use, regenerate."""

from __future__ import annotations

import re
import threading

from sqlalchemy import select

from idp import db
from idp.models import AuditEvent, BackupCode
from tests.support.account import (answer_challenge, enroll_backup_codes, start_enrollment,
                                   submit_enrollment)
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.rp import jwt_claims, redeem
from tests.support.signin import challenge_page


def test_ten_codes_shown_once_and_stored_only_hashed(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context():
        hashes = db.session().scalars(select(BackupCode.code_hash)).all()
    assert not any(code in h or code.replace("-", "") in h for code in codes for h in hashes)
    account = client.get(f"/t/{world.slug}/account").get_data(as_text=True)
    assert "10 of 10 left" in account and codes[0] not in account


def test_a_backup_code_completes_the_sign_in_and_counts_as_mfa(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    browser, verifier, page = challenge_page(app, world)
    assert page.status == 200 and "Backup code" in page.text  # no code before the second factor
    done = browser.follow(answer_challenge(browser, world, page, "backup", code=codes[3].upper()),
                          world.portal.redirect_uri)
    tokens = redeem(browser.http, world, world.portal, query(done.location)["code"], verifier)
    claims = jwt_claims(tokens.get_json()["id_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"
    assert "9 of 10 left" in Browser(client).get(f"/t/{world.slug}/account").text


def test_a_used_code_is_refused(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    browser, _, page = challenge_page(app, world)
    browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), world.portal.redirect_uri)
    browser2, _, page2 = challenge_page(app, world)
    again = answer_challenge(browser2, world, page2, "backup", code=codes[0])
    assert again.status == 400 and "used already" in again.text


def test_wrong_code_is_refused_and_audited(app, client, world):
    enroll_backup_codes(Browser(client), world)
    browser, _, page = challenge_page(app, world)
    wrong = answer_challenge(browser, world, page, "backup", code="aaaaa-bbbbb")
    assert wrong.status == 400 and "not right" in wrong.text
    with app.app_context():
        actions = db.session().scalars(select(AuditEvent.action).where(AuditEvent.action.like("mfa.%"))).all()
    assert "mfa.challenge_failed" in actions and "mfa.enrolled" in actions


def test_one_code_racing_in_parallel_passes_once(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    pages = [challenge_page(app, world) for _ in range(6)]
    results = []

    def attempt(browser, page):
        results.append(answer_challenge(browser, world, page, "backup", code=codes[5]).status)

    threads = [threading.Thread(target=attempt, args=(b, p)) for b, _, p in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results).count(302) == 1, results


def test_regenerating_invalidates_the_old_set(app, world):
    browser = Browser(app.test_client())
    old = enroll_backup_codes(browser, world)
    # Changing factors needs a session that proved the second factor: sign in with a code.
    page = browser.get(f"/t/{world.slug}/account/add/backup")
    assert page.status == 302 and "/login" in page.location
    login = browser.follow(page, "\0")

    after_password = browser.follow(browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
        "email": world.alice, "password": world.password}), "\0")
    answered = browser.follow(answer_challenge(browser, world, after_password, "backup", code=old[0]), "\0")
    assert "Sign-in and security" in answered.text
    new = enroll_backup_codes_again(browser, world)
    assert set(new).isdisjoint(old)
    _, _, page = challenge_page(app, world)
    b2, _, p2 = challenge_page(app, world)
    assert answer_challenge(b2, world, p2, "backup", code=old[1]).status == 400
    b3, _, p3 = challenge_page(app, world)
    assert answer_challenge(b3, world, p3, "backup", code=new[1]).status == 302


def enroll_backup_codes_again(browser, world):
    page = start_enrollment(browser, world, "backup")
    codes = re.findall(r"<code>([a-z0-9-]+)</code>", page.text)
    assert submit_enrollment(browser, world, "backup", page).status == 302
    return codes
