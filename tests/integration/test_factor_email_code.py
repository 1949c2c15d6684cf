"""Codes by email through the hosted pages: set up on the account page and inside a sign-in
whose policy requires it, a sign-in with a mailed code, single use, wrong codes counted until
the account locks, expiry, resend limits, a code mail that could not leave in time, and the
tenant's choice of methods. One portal signs in with Authlib against the live server.

Codes are read where a user reads them: mail received by a real SMTP server (aiosmtpd), sent
by the outbox's sender after each request. "Time passing" is a change to the Redis keys that
hold the throttle or the code, or the clock given to the outbox's sender, never a sleep.
"""

from __future__ import annotations

import html
import json
import logging
import re
import secrets
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import requests
from aiosmtpd.controller import Controller
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update

from idp import db, directory
from idp.mfa.email_code import CODE_TTL, CODES, MAIL_KIND
from idp.models import AuditEvent, Authenticator, OutboxMessage
from idp.notify import outbox
from tests.support.account import (CEREMONY, answer_challenge, password_sign_in, start_enrollment,
                                   submit_enrollment)
from tests.support.email_code import CODE as CODE_LINE, code_mails, enroll_email, nth_code, resend_wait_over
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.live_server import serve
from tests.support.mailbox import Mailbox, mailing_app, smtp_mailbox
from tests.support.ports import free_port
from tests.support.relying_party import ID_TOKEN_ALGS, rp
from tests.support.signin import challenge_page, set_policy, start, tokens_for
from tests.support.sms import alice
from tests.support.world import make_world

ADDRESS = "alice@example.com"  # the world's alice, as the directory keeps her address
MASKED = "a•••@example.com"


@pytest.fixture
def box():
    with smtp_mailbox() as mailbox:
        yield mailbox


@pytest.fixture
def mailing(settings, box):
    """The app with IDP_SMTP_URL on ``box``: its own background sender mails what it writes
    (any pending mail of the database: one per test, so no test's sender takes another's)."""
    with mailing_app(settings, box.url) as app:
        yield app


@pytest.fixture
def subject(app, world) -> str:
    return alice(app, world).subject


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def audit_of(app, world) -> list[tuple[str, str]]:
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        return [(e.action, json.dumps(e.data)) for e in db.session().scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id))]


def code_rows(app, world) -> list[OutboxMessage]:
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        rows = db.session().scalars(select(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.kind == "email_code")
            .order_by(OutboxMessage.id)).all()
        db.session().expunge_all()
        return rows


def settled(app, world, within: float = 15.0) -> list[OutboxMessage]:
    """The code mails' rows once the sender has recorded each one's outcome (right after the
    SMTP server's answer)."""
    deadline = time.monotonic() + within
    rows = code_rows(app, world)
    while any(r.state == "pending" for r in rows):
        assert time.monotonic() < deadline, [(r.id, r.state) for r in rows]
        time.sleep(0.02)
        rows = code_rows(app, world)
    return rows


def test_enrolling_mails_a_code_to_the_account_address_and_keeps_it_once_typed(mailing, box, world, subject):
    browser = Browser(mailing.test_client())
    password_sign_in(browser, world)
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Add code by email" in account

    page = start_enrollment(browser, world, "email")
    assert f"We will send a code to <strong>{ADDRESS}</strong>" in page.text
    assert code_rows(mailing, world) == []  # looking at the page mails nothing

    code_page = submit_enrollment(browser, world, "email", page)
    assert code_page.status == 200, code_page.text[:800]
    assert f"We sent a 6-digit code to <strong>{ADDRESS}</strong>" in code_page.text
    code_input = re.search(r'<input id="code"[^>]*>', code_page.text).group(0)
    assert 'autocomplete="one-time-code"' in code_input and 'inputmode="numeric"' in code_input

    code = nth_code(box, world, 1)
    [mail] = code_mails(box, world)
    assert mail.to == [ADDRESS] and mail.subject == f"Your Tenant {world.slug} setup code"
    assert "Hello Alice," in mail.text and "It works once, for 10 minutes" in mail.text
    assert f">{code}</p>" in mail.html
    # Only a keyed hash waits in Redis; the page never shows the code.
    pending = mailing.extensions["idp.store"].hgetall(CODES.code_key(subject, "enroll"))
    assert pending["to"] == ADDRESS and code not in json.dumps(pending)
    assert code not in code_page.text

    wrong = submit_enrollment(browser, world, "email", code_page, code=other_code(code))
    assert wrong.status == 400 and "That code is not right. Check the latest email" in wrong.text
    done = submit_enrollment(browser, world, "email", wrong, code=f"{code[:3]} {code[3:]}")
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account")
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Code by email added." in account and MASKED in account
    assert "Add code by email" not in account  # one per account: it has one address
    # The code came back from the mailbox: the address is verified, as by a link.
    assert '<span id="email-state">Verified</span>' in account
    with mailing.app_context():
        auth = db.session().scalar(select(Authenticator).where(
            Authenticator.type == "email", Authenticator.user_id == alice(mailing, world).id))
        assert auth.data == {"email": ADDRESS}

    events = audit_of(mailing, world)
    assert ("mfa.email_sent", json.dumps({"purpose": "enroll", "to": MASKED})) in events
    assert [a for a, _ in events].count("mfa.enroll_failed") == 1
    assert "mfa.enrolled" in [a for a, _ in events]
    assert all(code not in data for _, data in events)
    # Once it left, the outbox keeps no text of the code mail.
    [row] = settled(mailing, world)
    assert (row.state, row.body, row.html) == ("sent", outbox.GONE["body"], None)
    assert code not in (row.subject or "")


def test_opening_the_setup_again_keeps_the_code_just_mailed(mailing, box, world):
    browser = Browser(mailing.test_client())
    password_sign_in(browser, world)
    submit_enrollment(browser, world, "email", start_enrollment(browser, world, "email"))
    code = nth_code(box, world, 1)
    again = submit_enrollment(browser, world, "email", start_enrollment(browser, world, "email"))
    assert again.status == 200 and "The code we sent is still valid." in again.text
    assert len(code_rows(mailing, world)) == 1
    assert submit_enrollment(browser, world, "email", again, code=code).status == 302


def test_sign_in_with_a_mailed_code_gives_mfa_and_the_code_works_once(mailing, box, world, subject):
    enroll_email(mailing, Browser(mailing.test_client()), world, box, subject)
    first, verifier, page = challenge_page(mailing, world)
    assert page.status == 200 and f"We sent a code to {ADDRESS}." in page.text
    # A second sign-in within the resend wait shares the code already mailed.
    second, _, page2 = challenge_page(mailing, world)
    assert "The code we sent is still valid." in page2.text
    code = nth_code(box, world, 2)
    assert len(code_rows(mailing, world)) == 2  # the setup's code and this one: no third

    done = first.follow(answer_challenge(first, world, page, "email", code=code),
                        world.portal.redirect_uri)
    claims = tokens_for(first, world, done, verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"
    replay = answer_challenge(second, world, page2, "email", code=code)
    assert replay.status == 400 and "That code has expired or was used already" in replay.text


def test_wrong_codes_count_and_lock_the_account_at_the_tenants_limit(mailing, box, world, subject):
    set_policy(mailing, world, lock_after=3, captcha_after=100)
    enroll_email(mailing, Browser(mailing.test_client()), world, box, subject)
    browser, _, page = challenge_page(mailing, world)
    other, _, other_page = challenge_page(mailing, world)  # the same code stands for both
    code = nth_code(box, world, 2)
    for _ in range(2):
        page = answer_challenge(browser, world, page, "email", code=other_code(code))
        assert page.status == 400 and "That code is not right" in page.text
    locked = answer_challenge(browser, world, page, "email", code=other_code(code))
    assert locked.status == 429 and "locked" in locked.text
    # Locked means locked: the right code does not open it either, nor does the password.
    assert answer_challenge(other, world, other_page, "email", code=code).status == 429
    assert challenge_page(mailing, world)[2].status == 429
    actions = [a for a, _ in audit_of(mailing, world)]
    assert actions.count("mfa.challenge_failed") == 3 and "account.locked" in actions


def test_an_expired_code_is_refused(mailing, box, world, subject):
    enroll_email(mailing, Browser(mailing.test_client()), world, box, subject)
    browser, _, page = challenge_page(mailing, world)
    code = nth_code(box, world, 2)
    key = CODES.code_key(subject, "signin")
    store = mailing.extensions["idp.store"]
    assert 590 <= store.ttl(key) <= 600  # valid for ten minutes
    store.pexpire(key, 1)  # ten minutes later
    deadline = time.monotonic() + 5
    while store.exists(key) and time.monotonic() < deadline:
        time.sleep(0.01)
    expired = answer_challenge(browser, world, page, "email", code=code)
    assert expired.status == 400 and "That code has expired" in expired.text


def test_resending_waits_30_seconds_and_stops_at_ten_an_hour(mailing, box, world, subject):
    enroll_email(mailing, Browser(mailing.test_client()), world, box, subject)  # mail 1
    browser, _, page = challenge_page(mailing, world)  # mail 2
    first = nth_code(box, world, 2)
    too_soon = answer_challenge(browser, world, page, "email", resend="1")
    assert too_soon.status == 400
    wait = re.search(r"You can ask for a new one in (\d+) seconds?\.", too_soon.text)
    assert wait and 1 <= int(wait.group(1)) <= 30

    resend_wait_over(mailing, subject)
    resent = answer_challenge(browser, world, too_soon, "email", resend="1")  # mail 3
    assert resent.status == 200 and "We sent a new code." in resent.text
    newest = nth_code(box, world, 3)
    if newest != first:  # the same six digits again: once in a million
        stale = answer_challenge(browser, world, resent, "email", code=first)
        assert stale.status == 400 and "not right" in stale.text
    for sent in range(4, 11):  # mails 4 to 10: the hour's last
        resend_wait_over(mailing, subject)
        assert answer_challenge(browser, world, resent, "email", resend="1").status == 200, sent
    resend_wait_over(mailing, subject)
    capped = answer_challenge(browser, world, resent, "email", resend="1")
    assert capped.status == 400 and "Too many codes were sent" in capped.text
    assert 1 <= int(re.search(r"Try again in (\d+) minutes?", capped.text).group(1)) <= 60
    last = nth_code(box, world, 10)
    assert len(code_rows(mailing, world)) == 10
    assert answer_challenge(browser, world, capped, "email", code=last).status == 302


def test_the_code_is_in_no_log_audit_event_page_or_sign_in_state(mailing, box, world, subject, caplog):
    caplog.set_level(logging.DEBUG)
    enrolled = enroll_email(mailing, Browser(mailing.test_client()), world, box, subject)
    browser, _, page = challenge_page(mailing, world)
    code = nth_code(box, world, 2)
    store = mailing.extensions["idp.store"]
    state = store.get(f"ltx:{field(TX, page.text)}")
    assert state and "authenticator_id" in state and code not in state
    wrong = answer_challenge(browser, world, page, "email", code=other_code(code))
    done = answer_challenge(browser, world, wrong, "email", code=code)
    assert done.status == 302
    settled(mailing, world)
    # Every line of ours (the test's SMTP server, aiosmtpd's "mail.log", shows what it received).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "mail.log")
    assert "mail" in logged  # the sender's lines are there, and say no more than they should
    for secret in (enrolled, code):
        assert secret not in logged and secret not in page.text and secret not in wrong.text
        assert all(secret not in data for _, data in audit_of(mailing, world))
    assert ADDRESS not in logged  # nor does a log line name the recipient


def test_a_sign_in_that_requires_it_sets_it_up_on_the_way(mailing, box, world):
    set_policy(mailing, world, mode="required", factors=["email"])
    browser = Browser(mailing.test_client())
    verifier, send_page, _ = start(browser, world)
    # The only method allowed: its setup at once.
    assert send_page.status == 200 and "We will send a code to" in send_page.text

    def post(page, **fields):
        return browser.post(f"/t/{world.slug}/login/setup/email", {
            "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "ceremony": field(CEREMONY, page.text), **fields})

    code_page = post(send_page)
    assert code_page.status == 200 and f"We sent a 6-digit code to <strong>{ADDRESS}</strong>" in code_page.text
    code = nth_code(box, world, 1)
    wrong = post(code_page, code=other_code(code))
    assert wrong.status == 400 and "That code is not right" in wrong.text
    done = browser.follow(post(wrong, code=code), world.portal.redirect_uri)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"


def test_a_code_mail_that_could_not_leave_in_ten_minutes_is_never_sent(settings, world, subject):
    """SMTP is down while two codes are mailed, the first eleven minutes ago; when it is back,
    the younger code mail leaves and the older one is dropped with its text: its code is dead,
    and a late code only confuses."""
    assert outbox.MAX_AGE_OF[MAIL_KIND] == timedelta(seconds=CODE_TTL)  # a mail lives as its code
    port = free_port()
    down = replace(settings, smtp_url=f"smtp://127.0.0.1:{port}", mail_sender=False)
    with mailing_app(down, down.smtp_url, sender=False) as app:
        browser = Browser(app.test_client())
        password_sign_in(browser, world)
        code_page = submit_enrollment(browser, world, "email", start_enrollment(browser, world, "email"))
        assert code_page.status == 200, code_page.text[:800]
        resend_wait_over(app, subject)
        resent = submit_enrollment(browser, world, "email", code_page, resend="1")
        assert resent.status == 200 and f"We sent a new code to {ADDRESS}." in resent.text
        old, new = code_rows(app, world)
        assert old.state == new.state == "pending" and CODE_LINE.search(old.body)
        with app.app_context():  # the first one was written eleven minutes ago
            db.session().execute(update(OutboxMessage).where(OutboxMessage.id == old.id)
                                 .values(created_at=old.created_at - timedelta(minutes=11)))
            db.session().commit()

        box = Mailbox()
        server = Controller(box, hostname="127.0.0.1", port=port)
        server.start()
        try:
            outbox.deliver(app.extensions["idp.engine"], down, now=datetime.now(timezone.utc))
        finally:
            server.stop()
        old, new = code_rows(app, world)
        assert (old.state, old.body, old.html) == ("expired", outbox.GONE["body"], None)
        assert (new.state, new.body, new.html) == ("sent", outbox.GONE["body"], None)
        [mail] = code_mails(box, world)
        assert mail.message_id == new.message_id
        assert submit_enrollment(browser, world, "email", resent,
                                 code=CODE_LINE.search(mail.text).group(1)).status == 302


@pytest.mark.parametrize("factors,offered", [(None, True), (["totp", "sms"], False)])
def test_the_tenant_chooses_whether_codes_by_email_are_offered(mailing, world, idp, factors, offered):
    """A new tenant's policy row allows every type there is; a tenant whose admin chose its
    methods keeps exactly those (its row lists them), so codes by email appear only where
    an admin allows them."""
    if factors:
        status, out, err = idp("policy", "set", world.slug, "--factors", ",".join(factors))
        assert status == 0, err
    status, out, err = idp("policy", "show", world.slug)
    assert status == 0, err
    assert ("email" in json.loads(out)["factors"]) is offered
    browser = Browser(mailing.test_client())
    password_sign_in(browser, world)
    account = browser.get(f"/t/{world.slug}/account").text
    assert ("Add code by email" in account) is offered
    adding = browser.get(f"/t/{world.slug}/account/add/email")
    assert adding.status == (200 if offered else 403)
    if not offered:
        assert "does not allow code by email" in html.unescape(adding.text)


def test_an_admin_allows_it_from_the_command_line_and_sees_it_on_the_policy_page(mailing, world, idp):
    status, _, err = idp("policy", "set", world.slug, "--factors", "email,totp")
    assert status == 0, err
    status, out, _ = idp("policy", "show", world.slug)
    assert json.loads(out)["factors"] == ["totp", "email"]  # strongest first
    status, _, err = idp("policy", "set", world.slug, "--factors", "mail")
    assert status != 0 and "factors must be among" in err and "email" in err


# --- a portal, with Authlib, against the live server ------------------------------------------

@pytest.fixture
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def test_a_portal_reads_otp_and_mfa_from_the_verified_id_token(mailing, box, settings, tmp_path,
                                                               plain_http_is_fine):
    server = serve(settings, tmp_path / "server.log", smtp_url=box.url)
    try:
        world = make_world(mailing, settings, base_url=server.url)
        enroll_email(mailing, Browser(mailing.test_client()), world, box, alice(mailing, world).subject)
        provider = requests.get(f"{world.issuer}/.well-known/openid-configuration", timeout=10).json()
        oauth = rp(world.portal, provider)
        verifier, state, nonce = (secrets.token_urlsafe(48), secrets.token_urlsafe(16),
                                  secrets.token_urlsafe(16))
        url, _ = oauth.create_authorization_url(provider["authorization_endpoint"],
                                                code_verifier=verifier, state=state, nonce=nonce)
        browser = Browser(requests.Session(), origin=server.url)
        page = browser.follow(browser.get(url), world.portal.redirect_uri)
        page = browser.sign_in(page, world.alice, world.password, world.slug, world.portal.redirect_uri)
        assert page.status == 200 and f"We sent a code to {ADDRESS}." in page.text
        code = nth_code(box, world, 2)  # mailed by the live server's own sender
        done = browser.follow(answer_challenge(browser, world, page, "email", code=code),
                              world.portal.redirect_uri)
        token = oauth.fetch_token(provider["token_endpoint"], authorization_response=done.location,
                                  code_verifier=verifier, state=state)
        keys = KeySet.import_key_set(requests.get(provider["jwks_uri"], timeout=10).json())
        claims = jwt.decode(token["id_token"], keys, algorithms=ID_TOKEN_ALGS).claims
        assert claims["nonce"] == nonce and claims["iss"] == world.issuer
        assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "mfa")
    finally:
        server.stop()
