"""Text message (SMS) codes through the hosted pages: enroll a number (then its code), sign in
with a code read from the outbox, single use, parallel use, resend limits, expiry, removal,
and the Twilio-style provider behind the same pages.

Codes are read where a user would read them: the text message, i.e. the outbox row that
``idp outbox --json`` lists. "Time passing" is a change to the Redis keys that hold the
throttle or the code, never a sleep.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import threading
import time

import pytest
from sqlalchemy import func, select

from idp import create_app, db
from idp.mfa.sms import code_key, hour_key, mask, pretty
from idp.models import AuditEvent, Authenticator, OutboxMessage, User
from tests.support.account import (CEREMONY, answer_challenge, password_sign_in, start_enrollment,
                                   submit_enrollment)
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.rp import jwt_claims, redeem
from tests.support.signin import challenge_page, set_policy, start, tokens_for
from tests.support.sms import (CODE, alice, enroll_number, enroll_sms, latest_code, new_mobile,
                               texts, thirty_seconds_later)
from tests.support.twilio import FakeTwilio
from tests.support.world import make_world


@pytest.fixture
def phone() -> str:
    return new_mobile()


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def store(app):
    return app.extensions["idp.store"]


def an_hour_later(app, world) -> None:
    """The hourly send counter is gone too (it expires an hour after the first send)."""
    thirty_seconds_later(app, world)
    store(app).delete(hour_key(alice(app, world).subject))


def test_enrolling_normalises_the_number_and_confirms_it_with_the_texted_code(app, client, world, idp, phone):  # noqa: F811
    with app.app_context():
        db.session().get(User, alice(app, world).id).phone = phone
        db.session().commit()
    browser = Browser(client)
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "sms")
    assert f'value="{pretty(phone)}"' in page.text  # prefilled with the directory's number
    assert 'type="tel"' in page.text and 'autocomplete="tel"' in page.text

    # Typed the way people write it: spaces, dots, dashes, the national 0 in brackets.
    national = phone[3:]
    typed = f"+33 (0){national[0]} {national[1:3]}-{national[3:5]}.{national[5:7]} {national[7:]}"
    code_page = submit_enrollment(browser, world, "sms", page, phone=typed)
    assert code_page.status == 200, code_page.text[:800]
    assert f"We sent a 6-digit code to <strong>{pretty(phone)}</strong>" in code_page.text
    code_input = re.search(r'<input id="code"[^>]*>', code_page.text).group(0)
    assert 'autocomplete="one-time-code"' in code_input and 'inputmode="numeric"' in code_input

    [sms] = texts(app, phone)  # sent to the number in E.164
    code = CODE.search(sms.body).group(1)
    assert sms.body == (f"Your Tenant {world.slug} sign-in code is {code}. "
                        "It expires in 5 minutes. Don't share it.")
    # What the operator of an embedded install reads: the same message, from the command line.
    status, out, err = idp("outbox", "--json", "--channel", "sms", "--to", pretty(phone), "--limit", "1")
    assert status == 0, err
    assert json.loads(out) == [{"recipient": phone, "channel": "sms", "subject": None,
                                "text": sms.body, "time": sms.created_at.isoformat(timespec="seconds"), "state": "kept"}]

    # Only a keyed hash of the code is kept, and neither the page nor an audit event shows it.
    pending = store(app).hgetall(code_key(alice(app, world).subject, "enroll"))
    assert pending["to"] == phone and code not in json.dumps(pending)
    assert code not in code_page.text

    done = submit_enrollment(browser, world, "sms", code_page, code=f"{code[:3]} {code[3:]}")
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account")
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Text message (SMS)" in account and f"Phone ending {phone[-4:]}" in account
    assert mask(phone) in account and phone not in account
    with app.app_context():
        auth = db.session().scalar(select(Authenticator).where(
            Authenticator.type == "sms", Authenticator.user_id == alice(app, world).id))
        assert auth.data == {"phone": phone}
        events = [(e.action, json.dumps(e.data)) for e in db.session().scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == auth.tenant_id))]
    assert ("mfa.sms_sent", json.dumps({"purpose": "enroll", "to": mask(phone)})) in events
    assert "mfa.enrolled" in [action for action, _ in events]
    assert all(code not in data for _, data in events)


def test_a_wrong_enrollment_code_is_refused_and_the_right_one_still_works(app, client, world, phone):
    browser = Browser(client)
    password_sign_in(browser, world)
    code_page = enroll_number(browser, world, phone)
    code = latest_code(app, phone)
    refused = submit_enrollment(browser, world, "sms", code_page, code=other_code(code), name="Work")
    assert refused.status == 400 and "That code is not right" in refused.text
    assert 'value="Work"' in refused.text  # the typed name is kept
    short = submit_enrollment(browser, world, "sms", refused, code="12345")
    assert short.status == 400 and "Enter the 6-digit code" in short.text
    done = submit_enrollment(browser, world, "sms", short, code=code, name="Work")
    assert done.status == 302
    assert ">Work<" in browser.get(f"/t/{world.slug}/account").text
    with app.app_context():
        failed = db.session().scalars(select(AuditEvent.action).where(
            AuditEvent.action == "mfa.enroll_failed", AuditEvent.user_id == alice(app, world).id)).all()
    assert len(failed) == 2  # wrong codes count against the account like any wrong answer


@pytest.mark.parametrize("typed,message", [
    ("06 12 34 56 78", "international format"),  # no country code
    ("+33 6 12", "international format"),
    ("call me maybe", "international format"),
    ("+44 20 7946 0958", "+44 20 7946 0958 cannot receive text messages"),  # a London landline
    ("", "Enter your mobile number"),
])
def test_a_number_that_cannot_get_a_text_is_refused_with_a_clear_message(app, client, world, phone,
                                                                          typed, message):
    def outbox_size():
        with app.app_context():
            return db.session().scalar(select(func.count()).select_from(OutboxMessage))

    browser = Browser(client)
    password_sign_in(browser, world)
    before = outbox_size()
    refused = enroll_number(browser, world, typed)
    assert refused.status == 400 and message in html.unescape(refused.text)
    assert 'name="phone"' in refused.text  # still the number page, to correct it
    assert outbox_size() == before
    # Nothing was sent, so nothing waits: a good number right after gets its code.
    assert submit_enrollment(browser, world, "sms", refused, phone=phone).status == 200
    assert len(texts(app, phone)) == 1


def test_sign_in_with_a_texted_code_gives_mfa(app, client, world, phone):
    enroll_sms(app, Browser(client), world, phone)
    browser, verifier, page = challenge_page(app, world)
    assert page.status == 200 and f"We sent a code to {mask(phone)}" in page.text
    assert phone not in page.text and pretty(phone) not in page.text
    assert len(texts(app, phone)) == 2  # the enrollment's code and this one
    done = browser.follow(answer_challenge(browser, world, page, "sms", code=latest_code(app, phone)),
                          world.portal.redirect_uri)
    assert done.location.startswith(world.portal.redirect_uri)
    tokens = redeem(browser.http, world, world.portal, query(done.location)["code"], verifier)
    claims = jwt_claims(tokens.get_json()["id_token"])
    assert claims["amr"] == ["pwd", "sms", "mfa"] and claims["acr"] == "mfa"


def test_a_wrong_code_is_refused_counted_and_leaves_the_sent_code_valid(app, client, world, phone):
    enroll_sms(app, Browser(client), world, phone)
    browser, _, page = challenge_page(app, world)
    code = latest_code(app, phone)
    wrong = answer_challenge(browser, world, page, "sms", code=other_code(code))
    assert wrong.status == 400 and "That code is not right" in wrong.text
    assert f"We sent a code to {mask(phone)}" in wrong.text
    with app.app_context():
        failed = db.session().scalars(select(AuditEvent.action).where(
            AuditEvent.action == "mfa.challenge_failed", AuditEvent.user_id == alice(app, world).id)).all()
    assert failed == ["mfa.challenge_failed"]
    assert answer_challenge(browser, world, wrong, "sms", code=code).status == 302


def test_a_code_is_accepted_once(app, client, world, phone):
    enroll_sms(app, Browser(client), world, phone)
    # Two sign-ins within the resend wait share the code sent for the first one.
    first, _, page1 = challenge_page(app, world)
    second, _, page2 = challenge_page(app, world)
    assert len(texts(app, phone)) == 2 and "The code we sent is still valid" in page2.text
    code = latest_code(app, phone)
    assert answer_challenge(first, world, page1, "sms", code=code).status == 302
    replay = answer_challenge(second, world, page2, "sms", code=code)
    assert replay.status == 400 and "expired or was used already" in replay.text


def test_one_code_racing_in_parallel_passes_once(app, client, world, phone):
    enroll_sms(app, Browser(client), world, phone)
    pages = [challenge_page(app, world) for _ in range(5)]
    code = latest_code(app, phone)
    results = []

    def attempt(browser, page):
        results.append(answer_challenge(browser, world, page, "sms", code=code).status)

    threads = [threading.Thread(target=attempt, args=(b, p)) for b, _, p in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [302, 400, 400, 400, 400], results


def test_resending_is_throttled_per_30_seconds_and_per_hour(app, client, world, phone):
    enroll_sms(app, Browser(client), world, phone)  # send 1 of this hour
    browser, _, page = challenge_page(app, world)  # send 2
    first = latest_code(app, phone)
    too_soon = answer_challenge(browser, world, page, "sms", resend="1")
    assert too_soon.status == 400
    wait = re.search(r"You can ask for a new one in (\d+) seconds?\.", too_soon.text)
    assert wait and 1 <= int(wait.group(1)) <= 30
    assert len(texts(app, phone)) == 2

    thirty_seconds_later(app, world)
    resent = answer_challenge(browser, world, too_soon, "sms", resend="1")  # send 3
    assert resent.status == 200 and "We sent a new code." in resent.text
    assert len(texts(app, phone)) == 3
    # Only the newest code works (a new code equals the old one once in a million).
    stale = answer_challenge(browser, world, resent, "sms", code=first)
    assert stale.status == 400 and "not right" in stale.text

    for _ in range(2):  # sends 4 and 5
        thirty_seconds_later(app, world)
        assert answer_challenge(browser, world, stale, "sms", resend="1").status == 200
    thirty_seconds_later(app, world)
    capped = answer_challenge(browser, world, stale, "sms", resend="1")
    assert capped.status == 400 and "Too many codes were sent" in capped.text
    minutes = int(re.search(r"Try again in (\d+) minutes?", capped.text).group(1))
    assert 1 <= minutes <= 60
    assert len(texts(app, phone)) == 5
    # The last code sent still signs in.
    assert answer_challenge(browser, world, capped, "sms", code=latest_code(app, phone)).status == 302


def test_a_code_expires_after_five_minutes(app, client, world, phone):
    enroll_sms(app, Browser(client), world, phone)
    browser, _, page = challenge_page(app, world)
    key = code_key(alice(app, world).subject, "signin")
    assert 290 <= store(app).ttl(key) <= 300
    store(app).pexpire(key, 1)  # five minutes later
    deadline = time.monotonic() + 5
    while store(app).exists(key) and time.monotonic() < deadline:
        time.sleep(0.01)
    expired = answer_challenge(browser, world, page, "sms", code=latest_code(app, phone))
    assert expired.status == 400 and "That code has expired" in expired.text


def sign_in_again_for_account(app, browser: Browser, world, phone: str):
    """Changing factors needs a session that proved the second factor."""
    login = browser.get(f"/t/{world.slug}/login", {"next": f"/t/{world.slug}/account"})
    after_password = browser.follow(browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
        "email": world.alice, "password": world.password}), "\0")
    assert after_password.status == 200 and f"We sent a code to {mask(phone)}" in after_password.text
    return browser.follow(answer_challenge(browser, world, after_password, "sms",
                                           code=latest_code(app, phone)), "\0")


def test_several_numbers_a_duplicate_refused_and_removal_from_the_account_page(app, world, phone):
    other = new_mobile("+4915", 9)
    browser = Browser(app.test_client())
    enroll_sms(app, browser, world, phone)
    account = sign_in_again_for_account(app, browser, world, phone)
    assert "Sign-in and security" in account.text
    thirty_seconds_later(app, world)
    again = enroll_number(browser, world, phone)
    assert again.status == 400 and f"{pretty(phone)} is already set up" in html.unescape(again.text)
    second = enroll_number(browser, world, other)
    assert second.status == 200
    assert submit_enrollment(browser, world, "sms", second, code=latest_code(app, other)).status == 302
    thirty_seconds_later(app, world)

    # At sign-in the first number gets the code; the page offers the other one.
    b2, _, p2 = challenge_page(app, world)
    assert f"We sent a code to {mask(phone)}" in p2.text and f"Send to {mask(other)} instead" in p2.text
    send_to = re.search(r'name="send_to" value="(\d+)"', p2.text).group(1)
    thirty_seconds_later(app, world)
    switched = answer_challenge(b2, world, p2, "sms", send_to=send_to)
    assert switched.status == 200 and f"We sent a code to {mask(other)}" in switched.text
    assert answer_challenge(b2, world, switched, "sms", code=latest_code(app, other)).status == 302

    # Remove the first number from the account page.
    name = f"Phone ending {phone[-4:]}"
    page = browser.get(f"/t/{world.slug}/account")
    action = re.search(r'action="([^"]*/factors/\d+/remove)"[^<]*<input[^>]*>\s*'
                       rf'<button[^>]*>Remove {name}<', page.text).group(1)
    assert browser.post(html.unescape(action), {"csrf_token": field(CSRF, page.text)}).status == 302
    after = browser.get(f"/t/{world.slug}/account").text
    assert f"{name} removed" in after and mask(phone) not in after and mask(other) in after
    with app.app_context():
        removed = db.session().scalars(select(AuditEvent.data).where(
            AuditEvent.action == "mfa.removed", AuditEvent.user_id == alice(app, world).id)).all()
    assert [e["name"] for e in removed] == [name]
    an_hour_later(app, world)  # five texts were sent this hour: the limit
    b3, _, p3 = challenge_page(app, world)
    assert f"We sent a code to {mask(other)}" in p3.text and mask(phone) not in p3.text


@pytest.fixture
def app_with_provider(settings):
    """The app configured with IDP_SMS_URL pointing at a Twilio-shaped server of the test's own."""
    with FakeTwilio() as provider:
        app = create_app(dataclasses.replace(settings, sms_url=provider.url), TESTING=True)
        yield app, provider
        app.extensions["idp.engine"].dispose()


def test_enrollment_through_the_http_provider_and_its_failure(app_with_provider, settings, phone):
    app, provider = app_with_provider
    world = make_world(app, settings)
    browser = Browser(app.test_client())
    password_sign_in(browser, world)

    provider.status = 500
    failed = enroll_number(browser, world, phone)
    assert failed.status == 400
    assert ("We could not send a text message right now. Try another method or try again later."
            in html.unescape(failed.text))
    # A failed send is no send: asking again at once is not "too soon".
    provider.status = 201
    code_page = submit_enrollment(browser, world, "sms", failed, phone=phone)
    assert code_page.status == 200, code_page.text[:800]
    form = provider.requests[-1]["form"]
    assert form["To"] == [phone] and form["From"] == ["+15550001111"]
    code = CODE.search(form["Body"][0]).group(1)
    assert texts(app, phone) == []  # sent by the provider, not kept in the outbox
    assert submit_enrollment(browser, world, "sms", code_page, code=code).status == 302
    with app.app_context():
        actions = db.session().scalars(select(AuditEvent.action).where(
            AuditEvent.action.like("mfa.sms_%"), AuditEvent.user_id == alice(app, world).id)).all()
    assert sorted(actions) == ["mfa.sms_failed", "mfa.sms_sent"]


def test_forced_setup_in_the_sign_in_takes_both_pages_and_counts_as_sms(app, world, phone):
    """A tenant that requires SMS: the number, then the code, inside the sign-in itself."""
    set_policy(app, world, mode="required", factors=["sms"])
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    number_page = page  # the only method allowed: its setup at once (issue 16, finding 8)
    assert number_page.status == 200 and 'name="phone"' in number_page.text

    def post(page, **fields):
        return browser.post(f"/t/{world.slug}/login/setup/sms", {
            "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "ceremony": field(CEREMONY, page.text), **fields})

    assert post(number_page, phone="+44 20 7946 0958").status == 400  # a landline
    code_page = post(number_page, phone=pretty(phone))
    assert code_page.status == 200 and f"We sent a 6-digit code to <strong>{pretty(phone)}</strong>" in code_page.text
    wrong = post(code_page, code=other_code(latest_code(app, phone)))
    assert wrong.status == 400 and "That code is not right" in wrong.text
    done = browser.follow(post(wrong, code=latest_code(app, phone)), world.portal.redirect_uri)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["amr"] == ["pwd", "sms", "mfa"] and claims["acr"] == "mfa"
