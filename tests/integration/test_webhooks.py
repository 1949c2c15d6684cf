"""Signed webhooks (Standard Webhooks): what happens in a tenant reaches its endpoints through
the durable outbox, signed at delivery. A receiver in the test checks every message with
standardwebhooks' ``Webhook.verify`` and the secret the admin was shown."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, select, update
from standardwebhooks import WebhookVerificationError

from idp import db, directory
from idp.admin import webhooks as hooks
from idp.models import AuditEvent, OutboxMessage, User, WebhookEndpoint
from idp.notify import outbox, webhooks
from tests.support.console import admin_browser, console_action
from tests.support.journey import CSRF, Browser, field
from tests.support.lifecycle import add_user, portal_sign_in
from tests.support.mailed_links import mailed_paths, password_sign_in_answer, set_new_password
from tests.support.signin import fail_until_locked, set_policy
from tests.support.totp import enroll_totp
from tests.support.webhooks import (WebhookReceiver, add_endpoint, deliver, make_due, messages,
                                    rotate)
from tests.support.world import make_world


def hooks_invite(session, app, tenant, email: str, actor: str) -> None:
    from idp.admin import invitations

    invitations.invite(session, app.config["IDP"], tenant, email, actor)


def subject_of(app, world, email: str) -> str:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).subject


def endpoint_row(app, endpoint: str) -> WebhookEndpoint:
    with app.app_context():
        session = db.session()
        row = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint))
        session.expunge(row)
        return row


# -- delivery: signed, retried, given up -----------------------------------------------------


def test_a_console_action_reaches_the_receiver_signed_with_the_standard_webhooks_shape(app, world):
    with WebhookReceiver() as receiver:
        _, secret = add_endpoint(app, world, receiver.url)
        ada = admin_browser(app, world)
        assert console_action(ada, world, world.alice, "deactivate").status == 302
        assert not receiver.received  # never inside the admin's request
        deliver(app)
        (got,) = receiver.of_type("user.deactivated")
        message = got.verified(secret)
        assert message["type"] == "user.deactivated"
        assert datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00")) <= \
            datetime.now(timezone.utc)
        assert message["data"] == {
            "tenant": world.slug,
            "user": {"id": subject_of(app, world, world.alice), "email": world.alice.lower()},
            "actor": {"kind": "administrator", "email": world.admin}}
        assert got.id.startswith("msg_") and got.headers["content-type"] == "application/json"
        assert abs(int(got.headers["webhook-timestamp"]) - datetime.now(timezone.utc).timestamp()) < 300


def test_a_receiver_that_answers_500_first_gets_the_same_message_id_on_the_retry(app, world):
    with WebhookReceiver(500) as receiver:
        endpoint, secret = add_endpoint(app, world, receiver.url, "user.reactivated")
        ada = admin_browser(app, world)
        console_action(ada, world, world.alice, "deactivate")
        console_action(ada, world, world.alice, "reactivate")
        now = datetime.now(timezone.utc)
        assert deliver(app, now).retrying == 1
        (row,) = messages(app, world)
        assert (row.state, row.attempts, row.last_status) == ("pending", 1, 500)
        assert row.next_attempt_at >= now + timedelta(seconds=30)
        deliver(app, now + timedelta(seconds=10))  # not due yet
        assert len(receiver.received) == 1
        make_due(app, world, now - timedelta(seconds=1))
        assert deliver(app).sent == 1
        first, second = receiver.received
        assert first.id == second.id == row.message_id
        assert first.verified(secret) == second.verified(secret)
        assert second.message["type"] == "user.reactivated"
        (row,) = messages(app, world)
        assert (row.state, row.attempts, row.last_status) == ("sent", 2, 200)
        with app.app_context():  # the delivery log the console shows
            session = db.session()
            (logged,) = hooks.deliveries(session, directory.get_tenant(session, world.slug), endpoint)
        assert (logged.event_type, logged.state, logged.attempts, logged.last_status) == (
            "user.reactivated", "sent", 2, 200)
        assert logged.delivered_at is not None


def test_a_message_past_its_day_is_given_up_and_logged(app, world):
    with WebhookReceiver() as receiver:
        add_endpoint(app, world, receiver.url, "user.deactivated")
        console_action(admin_browser(app, world), world, world.alice, "deactivate")
        late = datetime.now(timezone.utc) + webhooks.MAX_AGE + timedelta(seconds=1)
        assert deliver(app, late).expired == 1
        assert receiver.received == []
        assert [m.state for m in messages(app, world)] == ["expired"]


def test_a_410_gone_turns_the_endpoint_off_and_gives_the_message_up(app, world):
    with WebhookReceiver(410) as receiver:
        endpoint, _ = add_endpoint(app, world, receiver.url, "signin.succeeded")
        portal_sign_in(app, world)
        assert deliver(app).failed == 1
        (row,) = messages(app, world)
        assert (row.state, row.last_status) == ("failed", 410)
        found = endpoint_row(app, endpoint)
        assert not found.enabled and "410 Gone" in found.disabled_reason
        # Nothing more is queued for it: every worker's cached list of the tenant's endpoints
        # heard of it (a sign-in changes nothing that would refresh that list otherwise).
        portal_sign_in(app, world)
        deliver(app)
        assert len(receiver.received) == 1 and len(messages(app, world)) == 1
        page = admin_browser(app, world).get(f"/t/{world.slug}/admin/webhooks/{endpoint}").text
        assert "410 Gone" in page and "Turn on" in page


def test_a_background_sender_posts_webhooks_without_smtp(settings, world):
    from idp import create_app

    server = create_app(replace(settings, mail_sender=True, smtp_url=None), TESTING=True)
    try:
        with WebhookReceiver() as receiver:
            _, secret = add_endpoint(server, world, receiver.url, "signin.succeeded")
            portal_sign_in(server, world)  # its commit wakes the sender
            assert receiver.arrived.wait(20), "the background sender never posted"
            assert receiver.received[0].verified(secret)["type"] == "signin.succeeded"
    finally:
        outbox.stop(server)
        server.extensions["idp.engine"].dispose()


# -- secret rotation -----------------------------------------------------------------------


def test_during_a_rotation_both_the_old_and_the_new_secret_verify_then_only_the_new(app, world):
    with WebhookReceiver() as receiver:
        endpoint, old = add_endpoint(app, world, receiver.url, "user.deactivated",
                                     "user.reactivated")
        new = rotate(app, world, endpoint)
        assert new != old and new.startswith("whsec_")
        ada = admin_browser(app, world)
        console_action(ada, world, world.alice, "deactivate")
        deliver(app)
        (got,) = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 2
        assert got.verified(old) == got.verified(new)  # a receiver not yet switched still verifies
        with app.app_context():  # the overlap ends
            db.session().execute(update(WebhookEndpoint).where(WebhookEndpoint.public_id == endpoint)
                                 .values(previous_until=datetime.now(timezone.utc) - timedelta(seconds=1)))
            db.session().commit()
        console_action(ada, world, world.alice, "reactivate")
        deliver(app)
        later = receiver.received[1]
        assert len(later.headers["webhook-signature"].split(" ")) == 1
        assert later.verified(new)["type"] == "user.reactivated"
        with pytest.raises(WebhookVerificationError):
            later.verified(old)


def test_a_second_rotation_inside_the_overlap_keeps_every_secret_a_receiver_may_still_use(app, world):
    """A form sent twice, or two rotations in a day: the first secret, which the receiver
    still checks with, signs on beside both new ones until the overlap ends."""
    with WebhookReceiver() as receiver:
        endpoint, first = add_endpoint(app, world, receiver.url, "user.deactivated")
        second = rotate(app, world, endpoint)
        third = rotate(app, world, endpoint)
        console_action(admin_browser(app, world), world, world.alice, "deactivate")
        deliver(app)
        (got,) = receiver.received
        assert len(got.headers["webhook-signature"].split(" ")) == 3
        for secret in (first, second, third):
            assert got.verified(secret)["type"] == "user.deactivated"


def test_an_invitation_sent_again_is_not_a_second_user_created(app, world):
    with WebhookReceiver() as receiver:
        add_endpoint(app, world, receiver.url, "user.created")
        with app.app_context():
            session = db.session()
            tenant = directory.get_tenant(session, world.slug)
            for _ in range(2):
                hooks_invite(session, app, tenant, "newcomer@example.com", world.admin)
                session.commit()
        deliver(app)
        (created,) = receiver.of_type("user.created")
        assert created.message["data"]["user"]["email"] == "newcomer@example.com"


# -- which events, and to whom ---------------------------------------------------------------


def test_sign_ins_that_succeed_and_fail_are_heard(app, world):
    with WebhookReceiver() as receiver:
        _, secret = add_endpoint(app, world, receiver.url, "signin.succeeded", "signin.failed")
        portal_sign_in(app, world)
        typed = "not-the-password-but-close"
        password_sign_in_answer(app, world, world.alice, typed)
        password_sign_in_answer(app, world, "nobody@example.com", typed)
        deliver(app)
        (ok,) = [r.verified(secret) for r in receiver.of_type("signin.succeeded")]
        assert ok["data"]["user"]["id"] == subject_of(app, world, world.alice)
        assert ok["data"]["client_id"] == world.portal.client_id
        assert ok["data"]["amr"] == ["pwd"] and ok["data"]["acr"] == "pwd"
        failed = [r.verified(secret)["data"] for r in receiver.of_type("signin.failed")]
        assert [f["reason"] for f in failed] == ["wrong_password", "wrong_password"]
        assert failed[0]["user"]["email"] == world.alice.lower()
        assert failed[1]["user"] is None  # an unknown address is not repeated back
        for got in receiver.received:
            assert typed.encode() not in got.body and b"nobody@example.com" not in got.body


def test_an_endpoint_hears_only_the_types_it_chose(app, world):
    with WebhookReceiver() as receiver:
        add_endpoint(app, world, receiver.url, "user.reactivated")
        ada = admin_browser(app, world)
        console_action(ada, world, world.alice, "deactivate")
        console_action(ada, world, world.alice, "reactivate")
        deliver(app)
        assert [r.message["type"] for r in receiver.received] == ["user.reactivated"]


def test_a_tenants_events_go_only_to_its_own_endpoints(app, settings, world):
    other = make_world(app, settings)
    with WebhookReceiver() as ours, WebhookReceiver() as theirs:
        add_endpoint(app, world, ours.url)
        add_endpoint(app, other, theirs.url)
        portal_sign_in(app, world)
        console_action(admin_browser(app, world), world, world.alice, "deactivate")
        deliver(app)
        assert ours.received and theirs.received == []
        assert {r.message["data"]["tenant"] for r in ours.received} == {world.slug}
        portal_sign_in(app, other)
        deliver(app)
        assert {r.message["data"]["tenant"] for r in theirs.received} == {other.slug}


def test_an_endpoint_added_after_a_sign_in_hears_the_next_one_at_once(app, world):
    """The tenant's endpoints are cached per worker: adding one must reach the cache."""
    portal_sign_in(app, world)  # the tenant's (empty) list of endpoints is read and kept
    assert messages(app, world) == []
    with WebhookReceiver() as receiver:
        add_endpoint(app, world, receiver.url, "signin.succeeded")
        portal_sign_in(app, world)
        deliver(app)
        assert len(receiver.of_type("signin.succeeded")) == 1


def test_a_tenant_without_endpoints_pays_no_query_per_event(app, world):
    """The hot path: ``user.signed_in`` on every sign-in. With a shared Redis the tenant's
    endpoints are a cached snapshot, so a tenant without webhooks costs no SQL per event
    (without Redis nothing is cached, by design of idp.cache: one read)."""
    statements = []

    def count(*args):
        statements.append(args[2])

    engine = app.extensions["idp.engine"]
    with app.test_request_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        webhooks.listeners(session, tenant.id)  # loaded once
        event.listen(engine, "before_cursor_execute", count)
        try:
            assert webhooks.listeners(session, tenant.id) == ()
        finally:
            event.remove(engine, "before_cursor_execute", count)
    expected = 0 if app.config["IDP"].redis_url else 1
    assert len(statements) == expected, statements


# -- payloads never carry a secret -------------------------------------------------------------


def test_no_payload_carries_a_password_code_seed_or_hash(app, world):
    with WebhookReceiver() as receiver:
        _, secret = add_endpoint(app, world, receiver.url)
        seed = enroll_totp(Browser(app.test_client()), world)  # mfa.enrolled, signin.succeeded
        browser = Browser(app.test_client())
        page = browser.get(f"/t/{world.slug}/login/forgot")
        browser.post(f"/t/{world.slug}/login/forgot",
                     {"csrf_token": field(CSRF, page.text), "tx": "", "email": world.alice})
        reset_path = mailed_paths(app, world, world.alice, "reset")[-1]
        new_password = "a brand new and long passphrase"
        assert set_new_password(browser, reset_path, new_password).status in (200, 302)
        deliver(app)
        types = {r.verified(secret)["type"] for r in receiver.received}
        assert {"mfa.enrolled", "user.updated"} <= types
        (enrolled,) = receiver.of_type("mfa.enrolled")
        assert enrolled.message["data"]["factor"] == "totp"
        changes = {r.message["data"]["change"] for r in receiver.of_type("user.updated")}
        assert changes == {"password", "email_verified"}  # a reset link proves the address
        with app.app_context():
            user = directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug),
                                       world.alice)
            password_hash = user.password_hash
        token = reset_path.rsplit("/", 1)[-1]
        for got in receiver.received:
            text = got.body.decode()
            for leaked in (seed, new_password, world.password, password_hash, token, secret,
                           "whsec_", "$argon2"):
                assert leaked not in text, (leaked, text)
        for row in messages(app, world):  # nor what the outbox keeps
            assert seed not in row.body and new_password not in row.body


# -- the console ---------------------------------------------------------------------------


def test_an_admin_adds_an_endpoint_sees_its_secret_once_and_sends_a_test_event(app, world):
    with WebhookReceiver() as receiver:
        ada = admin_browser(app, world)
        page = ada.get(f"/t/{world.slug}/admin/webhooks")
        assert page.status == 200 and "Add an endpoint" in page.text and "No endpoints yet" in page.text
        added = ada.post(f"/t/{world.slug}/admin/webhooks", {
            "csrf_token": field(CSRF, page.text), "url": receiver.url, "description": "Our CRM",
            "event_types": ["user.created", "signin.failed"]})
        assert added.status == 200 and "copy it now" in added.text
        assert added.headers["Cache-Control"] == "no-store"
        secret = re.search(r'id="webhook-secret" value="(whsec_[^"]+)"', added.text).group(1)
        endpoint = re.search(r'id="endpoint-id">(ep_[^<]+)<', added.text).group(1)
        again = ada.get(f"/t/{world.slug}/admin/webhooks/{endpoint}")
        assert again.status == 200 and secret not in again.text and "Our CRM" in again.text
        row = endpoint_row(app, endpoint)
        assert row.event_types == ["user.created", "signin.failed"]
        assert secret not in row.secret and "whsec_" not in row.secret  # encrypted at rest
        with app.app_context():
            tenant = directory.get_tenant(db.session(), world.slug)
            actor, data = db.session().execute(select(AuditEvent.actor, AuditEvent.data).where(
                AuditEvent.tenant_id == tenant.id, AuditEvent.action == "webhook.created")).one()
        assert actor == world.admin and secret not in json.dumps(data)
        sent = ada.post(f"/t/{world.slug}/admin/webhooks/{endpoint}/test",
                        {"csrf_token": field(CSRF, again.text)})
        assert sent.status == 302
        deliver(app)
        (got,) = receiver.received
        assert got.verified(secret)["type"] == "webhook.test"
        log = ada.get(f"/t/{world.slug}/admin/webhooks/{endpoint}").text
        assert "webhook.test" in log and "Delivered" in log and got.id in log


def test_the_console_rotates_turns_off_and_deletes_an_endpoint(app, world):
    endpoint, old = add_endpoint(app, world, "https://hooks.example.com/idp")
    ada = admin_browser(app, world)
    path = f"/t/{world.slug}/admin/webhooks/{endpoint}"
    page = ada.get(path)
    rotated = ada.post(f"{path}/rotate", {"csrf_token": field(CSRF, page.text)})
    assert rotated.status == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = re.search(r'id="webhook-secret" value="(whsec_[^"]+)"', rotated.text).group(1)
    assert new != old and "keeps signing too" in rotated.text
    off = ada.post(f"{path}/enabled", {"csrf_token": field(CSRF, page.text), "enabled": "0"})
    assert off.status == 302 and not endpoint_row(app, endpoint).enabled
    saved = ada.post(path, {"csrf_token": field(CSRF, page.text), "url": "https://hooks.example.com/v2",
                            "description": "", "all_events": "1"})
    assert saved.status == 302
    row = endpoint_row(app, endpoint)
    assert (row.url, row.event_types) == ("https://hooks.example.com/v2", [])
    gone = ada.post(f"{path}/delete", {"csrf_token": field(CSRF, page.text)})
    assert gone.status == 302 and ada.get(path).status == 404
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        actions = db.session().scalars(select(AuditEvent.action)
                                       .where(AuditEvent.tenant_id == tenant.id)).all()
    assert {"webhook.created", "webhook.secret_rotated", "webhook.updated",
            "webhook.deleted"} <= set(actions)


@pytest.mark.parametrize("url, said", [
    ("http://hooks.example.com/idp", "must use https"),
    ("ftp://hooks.example.com/idp", "absolute http(s) URL"),
    ("https://hooks.example.com/idp#frag", "without a fragment"),
    ("", "needs a URL"),
    ("https://[x", "not a valid URL"),
    ("https://[::1", "not a valid URL"),
    ("https://a]b/", "not a valid URL"),
    ("https://hooks.example.com:99999/x", "not a valid URL"),
    ("https://hooks.example.com/\x7fx", "control characters"),
    ("https://user:secret@hooks.example.com/x", "user name or password"),
])
def test_the_console_refuses_a_bad_url_clearly_and_adds_nothing(app, world, url, said):
    ada = admin_browser(app, world)
    page = ada.get(f"/t/{world.slug}/admin/webhooks")
    bad = ada.post(f"/t/{world.slug}/admin/webhooks", {
        "csrf_token": field(CSRF, page.text), "url": url, "all_events": "1"})
    assert bad.status == 400 and said in bad.text and 'id="webhook-error"' in bad.text
    assert "No endpoints yet" in bad.text


def test_the_console_refuses_a_form_without_csrf_or_without_events(app, world):
    ada = admin_browser(app, world)
    page = ada.get(f"/t/{world.slug}/admin/webhooks")
    assert ada.post(f"/t/{world.slug}/admin/webhooks",
                    {"url": "https://hooks.example.com/x", "all_events": "1"}).status == 400
    none = ada.post(f"/t/{world.slug}/admin/webhooks", {
        "csrf_token": field(CSRF, page.text), "url": "https://hooks.example.com/x"})
    assert none.status == 400 and "Choose the events" in none.text
    odd = ada.post(f"/t/{world.slug}/admin/webhooks", {
        "csrf_token": field(CSRF, page.text), "url": "https://hooks.example.com/x",
        "event_types": ["user.exploded"]})
    assert odd.status == 400 and "unknown event type" in odd.text


@pytest.mark.parametrize("role", ["member", "mfa-admin"])
def test_only_administrators_open_the_webhooks_pages(app, world, role):
    endpoint, _ = add_endpoint(app, world, "https://hooks.example.com/idp")
    email = f"{role}-{world.slug}@example.com"
    add_user(app, world, email, role)
    browser = admin_browser(app, world, email) if role != "member" else None
    if browser is None:
        from tests.support.account import password_sign_in

        browser = Browser(app.test_client())
        password_sign_in(browser, world, email)
    assert browser.get(f"/t/{world.slug}/admin/webhooks").status == 403
    assert browser.get(f"/t/{world.slug}/admin/webhooks/{endpoint}").status == 403
    page = browser.get(f"/t/{world.slug}/account")
    assert browser.post(f"/t/{world.slug}/admin/webhooks/{endpoint}/delete",
                        {"csrf_token": field(CSRF, page.text)}).status == 403
    assert endpoint_row(app, endpoint).enabled


def test_another_tenants_endpoint_is_not_found_in_this_console(app, settings, world):
    other = make_world(app, settings)
    endpoint, _ = add_endpoint(app, other, "https://hooks.example.com/theirs")
    ada = admin_browser(app, world)
    page = ada.get(f"/t/{world.slug}/admin/webhooks")
    assert ada.get(f"/t/{world.slug}/admin/webhooks/{endpoint}").status == 404
    assert ada.post(f"/t/{world.slug}/admin/webhooks/{endpoint}/delete",
                    {"csrf_token": field(CSRF, page.text)}).status == 404
    assert endpoint_row(app, endpoint) is not None


# -- the command line ----------------------------------------------------------------------


def test_the_command_line_creates_lists_rotates_and_deletes(app, idp, world):
    with WebhookReceiver() as receiver:
        code, out, err = idp("webhook", "create", world.slug, "--url", receiver.url,
                             "--description", "CLI hook", "--event", "user.created")
        assert code == 0, err
        made = json.loads(out)
        assert made["secret"].startswith("whsec_") and made["event_types"] == ["user.created"]
        code, out, err = idp("user", "create", world.slug, "carol@example.com",
                             "--password-stdin", stdin="a long enough password for carol\n")
        assert code == 0, err
        deliver(app)
        (got,) = receiver.received
        message = got.verified(made["secret"])
        assert message["type"] == "user.created"
        assert message["data"]["user"]["email"] == "carol@example.com"
        assert message["data"]["actor"] == {"kind": "command_line"} and message["data"]["via"] == "created"
        code, out, err = idp("webhook", "list", world.slug)
        assert code == 0, err
        (listed,) = json.loads(out)["endpoints"]
        assert listed["id"] == made["id"] and "secret" not in listed
        code, out, err = idp("webhook", "rotate", world.slug, made["id"])
        assert code == 0, err
        rotated = json.loads(out)
        assert rotated["secret"] != made["secret"] and rotated["previous_secret_until"]
        code, out, err = idp("webhook", "delete", world.slug, made["id"])
        assert code == 0, err
        assert json.loads(idp("webhook", "list", world.slug)[1])["endpoints"] == []


@pytest.mark.parametrize("args, said", [
    (["--url", "http://hooks.example.com/x"], "must use https"),
    (["--url", "https://hooks.example.com/x", "--event", "user.exploded"], "unknown event type"),
    (["--url", "https://[x"], "not a valid URL"),
])
def test_the_command_line_refuses_bad_input_in_one_line(idp, world, args, said):
    code, out, err = idp("webhook", "create", world.slug, *args)
    assert code == 1 and said in err and "Traceback" not in err and out == ""
    assert json.loads(idp("webhook", "list", world.slug)[1])["endpoints"] == []


def test_the_command_line_says_so_for_an_unknown_endpoint(idp, world):
    code, _, err = idp("webhook", "rotate", world.slug, "ep_nonesuch")
    assert code == 1 and "no webhook endpoint" in err and "Traceback" not in err


def test_a_deleted_user_is_named_by_the_event(app, world):
    with WebhookReceiver() as receiver:
        _, secret = add_endpoint(app, world, receiver.url, "user.deleted")
        subject = subject_of(app, world, world.bob)
        ada = admin_browser(app, world)
        assert console_action(ada, world, world.bob, "delete", confirm="yes").status == 302
        deliver(app)
        (got,) = receiver.received
        assert got.verified(secret)["data"]["user"] == {"id": subject, "email": world.bob}
        with app.app_context():
            assert db.session().scalar(select(User).where(User.subject == subject)) is None


def test_a_lock_an_unlock_a_reset_and_a_policy_change_are_heard(app, client, world):
    with WebhookReceiver() as receiver:
        _, secret = add_endpoint(app, world, receiver.url, "user.locked", "user.unlocked",
                                 "mfa.reset", "policy.changed")
        fail_until_locked(client, world, world.bob)
        ada = admin_browser(app, world)
        assert console_action(ada, world, world.bob, "unlock").status == 302
        assert console_action(ada, world, world.bob, "reset").status == 302
        set_policy(app, world, lock_after=7)
        deliver(app)
        said = {m["type"]: m["data"] for m in (r.verified(secret) for r in receiver.received)}
        assert set(said) == {"user.locked", "user.unlocked", "mfa.reset", "policy.changed"}
        bob = {"id": subject_of(app, world, world.bob), "email": world.bob}
        assert said["user.locked"]["user"] == bob and said["user.locked"]["cause"] == "password"
        assert datetime.fromisoformat(said["user.locked"]["until"].replace("Z", "+00:00")) > \
            datetime.now(timezone.utc)
        assert said["user.unlocked"]["actor"] == {"kind": "administrator", "email": world.admin}
        assert said["mfa.reset"]["user"] == bob and said["mfa.reset"]["factors_removed"] == 0
        assert said["policy.changed"]["changes"] == {"lock_after": 7}
        assert said["policy.changed"]["user"] is None


def test_a_bad_change_on_the_endpoint_page_is_refused_and_changes_nothing(app, world):
    endpoint, _ = add_endpoint(app, world, "https://hooks.example.com/idp", "user.created")
    ada = admin_browser(app, world)
    path = f"/t/{world.slug}/admin/webhooks/{endpoint}"
    page = ada.get(path)
    bad = ada.post(path, {"csrf_token": field(CSRF, page.text), "url": "http://hooks.example.com/idp",
                          "description": "changed", "all_events": "1"})
    assert bad.status == 400 and "must use https" in bad.text
    assert 'value="http://hooks.example.com/idp"' in bad.text  # shown again as typed
    row = endpoint_row(app, endpoint)
    assert (row.url, row.description, row.event_types) == (
        "https://hooks.example.com/idp", "", ["user.created"])


def test_a_sender_sends_mail_before_webhooks_queued_earlier(app, world):
    """A tenant's slow webhook receivers must not keep anyone's sign-in code waiting: what is
    due goes mail and logout notices first, then webhooks, each in the order queued."""
    with WebhookReceiver() as receiver:
        add_endpoint(app, world, receiver.url, "user.deactivated")
        console_action(admin_browser(app, world), world, world.alice, "deactivate")
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        session.add(OutboxMessage(tenant_id=tenant.id, channel="mail", kind="email_code",
                                  recipient="bob@example.com", subject="Your code", body="…",
                                  state="pending", message_id="<late@idp.test>"))
        session.commit()
        due = session.execute(outbox._due(datetime.now(timezone.utc) + timedelta(seconds=1),
                                          ["mail", webhooks.CHANNEL])).scalars().all()
        channels = [session.get(OutboxMessage, i).channel for i in due
                    if session.get(OutboxMessage, i).tenant_id == tenant.id]
    assert channels == ["mail", webhooks.CHANNEL]
