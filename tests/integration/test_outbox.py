"""The durable outbox: mail is written with the change that causes it and delivered after, by
senders that claim each message, retry with back-off, and never send one twice. A real SMTP
server (aiosmtpd) is stopped and started under them."""

from __future__ import annotations

import logging
import secrets
import threading
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from idp import db, directory
from idp.models import OutboxMessage
from idp.notify import outbox
from tests.support.mailbox import Mailbox, tenant_mail
from tests.support.ports import free_port


def queue(app, world, to: str, who: str = "Ada") -> int:
    """A message to ``to`` from the world's tenant, committed; its id."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        message = outbox.mail(session, app.config["IDP"], tenant, to, "login_link_created",
                              name="Carol", email=to, who=who, at="2026-12-03 10:00 UTC",
                              until="2026-12-03 10:15 UTC")
        session.commit()
        return message.id


def rows(app, ids) -> list[OutboxMessage]:
    with app.app_context():
        found = db.session().scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))
                                     .order_by(OutboxMessage.id)).all()
        db.session().expunge_all()
        return found


def smtp_settings(app, port: int):
    return replace(app.config["IDP"], smtp_url=f"smtp://127.0.0.1:{port}")


@contextmanager
def smtp_configured(app, settings):
    """Messages queued meanwhile are pending (there is an SMTP server to send them to)."""
    saved = app.config["IDP"]
    app.config["IDP"] = settings
    try:
        yield
    finally:
        app.config["IDP"] = saved


def test_mail_waits_while_smtp_is_down_and_leaves_once_when_it_is_back(app, world, caplog):
    port = free_port()
    settings = smtp_settings(app, port)
    to = f"carol+{secrets.token_hex(4)}@example.com"
    with smtp_configured(app, settings):
        message_id = queue(app, world, to)
    engine = app.extensions["idp.engine"]
    now = datetime.now(timezone.utc)

    with caplog.at_level(logging.WARNING, logger="idp.notify.outbox"):
        outbox.deliver(engine, settings, now=now)  # nothing listens on the port
    [row] = rows(app, [message_id])
    assert (row.state, row.attempts, row.sent_at) == ("pending", 1, None)
    assert row.next_attempt_at == now + timedelta(seconds=30)
    assert f"127.0.0.1:{port}" in row.last_error
    # The logs say what failed and when it is tried again, never the mail's text or subject.
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert f"mail {message_id} (login_link_created) not sent (attempt 1)" in logged
    assert to not in logged and "Carol" not in logged and "sign-in link" not in logged

    outbox.deliver(engine, settings, now=now + timedelta(seconds=10))  # not due yet
    assert rows(app, [message_id])[0].attempts == 1

    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=port)
    server.start()
    try:
        outbox.deliver(engine, settings, now=now + timedelta(seconds=31))
        outbox.deliver(engine, settings, now=now + timedelta(hours=2))  # nothing left to send
    finally:
        server.stop()
    [row] = rows(app, [message_id])
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)
    # Once it left, its text (and any link in it) is not kept in the database.
    assert row.body == outbox.GONE["body"] and row.html is None
    [mail] = tenant_mail(box, world, to)  # once
    assert mail.message_id == row.message_id and "Hello Carol" in mail.text
    assert f"Tenant {world.slug}" in mail.subject and "<p>Hello Carol,</p>" in mail.html


def test_parallel_senders_send_each_message_exactly_once(app, world):
    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=free_port())
    server.start()
    settings = smtp_settings(app, server.port)
    addresses = [f"p{i}+{secrets.token_hex(3)}@example.com" for i in range(24)]
    with smtp_configured(app, settings):
        ids = [queue(app, world, to) for to in addresses]
    start = threading.Barrier(4)
    errors = []

    def sender():
        start.wait()
        try:
            outbox.deliver(app.extensions["idp.engine"], settings)
        except Exception as e:  # a failing sender must fail the test, not vanish in a thread
            errors.append(e)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        server.stop()
    assert errors == []
    assert [r.state for r in rows(app, ids)] == ["sent"] * len(ids)
    for to in addresses:
        assert len(tenant_mail(box, world, to)) == 1, to
    delivered = [m.message_id for m in box.mails if f"Tenant {world.slug}" in m.subject]
    assert len(delivered) == len(set(delivered)) == len(ids)


def test_a_message_is_given_up_after_the_last_attempt_and_when_too_old(app, world):
    settings = smtp_settings(app, free_port())  # nothing listens
    with smtp_configured(app, settings):
        failing = queue(app, world, f"f+{secrets.token_hex(3)}@example.com")
        old = queue(app, world, f"o+{secrets.token_hex(3)}@example.com")
    with app.app_context():
        db.session().execute(update(OutboxMessage).where(OutboxMessage.id == failing)
                             .values(attempts=outbox.MAX_ATTEMPTS - 1))
        db.session().execute(update(OutboxMessage).where(OutboxMessage.id == old).values(
            created_at=datetime.now(timezone.utc) - outbox.MAX_AGE - timedelta(minutes=1)))
        db.session().commit()
    outbox.deliver(app.extensions["idp.engine"], settings, now=datetime.now(timezone.utc))
    given_up, expired = rows(app, [failing, old])
    assert (given_up.state, given_up.attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert "did not take the mail" in given_up.last_error
    assert expired.state == "expired" and expired.sent_at is None


def test_a_change_rolled_back_sends_nothing(app, world):
    to = f"r+{secrets.token_hex(3)}@example.com"
    with app.app_context():
        session = db.session()
        outbox.mail(session, app.config["IDP"], directory.get_tenant(session, world.slug), to,
                    "lockout", name="R", email=to, ends="soon", copy=False)
        session.rollback()
        assert session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == to)).all() == []


def test_back_off_doubles_up_to_an_hour():
    assert [outbox.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert outbox.backoff(9) == outbox.backoff(30) == timedelta(hours=1)


def test_idp_mail_send_without_smtp_says_where_mail_is(idp):
    code, out, err = idp("mail", "send")
    assert code == 1 and out == ""
    assert err.strip() == ("idp: IDP_SMTP_URL is not set: mail stays in the outbox "
                           "(idp outbox lists it)")


def test_the_background_sender_can_be_left_to_a_timer(settings):
    from idp import create_app
    from idp.config import Settings

    assert Settings.from_env({"IDP_SECRET_KEY": "k" * 40}).mail_sender is True
    off = Settings.from_env({"IDP_MAIL_SENDER": "off", "IDP_SECRET_KEY": "k" * 40})
    assert off.mail_sender is False
    with pytest.raises(ValueError, match="IDP_MAIL_SENDER is on or off"):
        Settings.from_env({"IDP_MAIL_SENDER": "yes", "IDP_SECRET_KEY": "k" * 40})
    quiet = create_app(replace(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}",
                               mail_sender=False), TESTING=True)
    busy = create_app(replace(settings, smtp_url=f"smtp://127.0.0.1:{free_port()}",
                              mail_sender=True), TESTING=True)
    try:
        assert "idp.mail_sender" not in quiet.extensions
        assert "idp.mail_sender" in busy.extensions
    finally:
        outbox.stop(busy)
        for app in (quiet, busy):
            app.extensions["idp.engine"].dispose()


def test_the_owner_is_mailed_when_a_sign_in_method_is_added(app, world):
    from tests.support.journey import Browser
    from tests.support.totp import enroll_totp

    enroll_totp(Browser(app.test_client()), world, name="Work phone")
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        [mail] = db.session().scalars(select(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.recipient == world.alice,
            OutboxMessage.kind == "factor_added")).all()
        assert mail.subject == f"A new sign-in method was added to your {tenant.name} account"
        assert 'Authenticator app ("Work phone") was added' in mail.body
        assert "reset your password from the sign-in page now" in mail.body


# Every kind of mail, with what its callers give it (StrictUndefined: a missing value fails).
KINDS = {
    "lockout": {"name": "Carol", "email": "c@example.com", "ends": "2026-12-03 11:00 UTC", "copy": False},
    "login_link_created": {"name": "Carol", "email": "c@example.com", "who": "Ada",
                           "at": "2026-12-03 10:00 UTC", "until": "2026-12-03 10:15 UTC"},
    "reset": {"name": "Carol", "link": "https://idp.example/t/x/login/reset/TOKEN", "minutes": 30},
    "password_changed": {"name": "Carol", "email": "c@example.com", "why": "change",
                         "at": "2026-12-03 10:00 UTC"},
    "verify": {"name": "Carol", "email": "c@example.com", "days": 2,
               "link": "https://idp.example/t/x/login/verify-email/TOKEN"},
    "invite": {"name": "Carol", "email": "c@example.com", "who": "Ada", "days": 7,
               "link": "https://idp.example/t/x/login/invitation/TOKEN"},
    "factor_added": {"name": "Carol", "email": "c@example.com", "method": "Authenticator app",
                     "label": "Work phone", "at": "2026-12-03 10:00 UTC"},
    "signup_exists": {"name": "Carol", "email": "c@example.com", "link": "https://idp.example/t/x/login"},
    "email_code": {"name": "Carol", "code": "024680", "minutes": 10, "setup": False},
}


def test_every_kind_of_mail_reaches_a_real_smtp_server_as_text_and_html(app, world):
    from pathlib import Path

    from idp.config import ROOT

    made = {p.stem for p in Path(ROOT / "templates" / "mail").glob("*.txt")}
    assert made == set(KINDS)  # a new kind of mail is added here too
    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=free_port())
    server.start()
    settings = smtp_settings(app, server.port)
    try:
        with smtp_configured(app, settings):
            for kind, context in KINDS.items():
                with app.app_context():
                    session = db.session()
                    outbox.mail(session, settings, directory.get_tenant(session, world.slug),
                                f"{kind}@example.com", kind, **context)
                    session.commit()
        outbox.deliver(app.extensions["idp.engine"], settings)
    finally:
        server.stop()
    for kind, context in KINDS.items():
        [mail] = tenant_mail(box, world, f"{kind}@example.com")
        assert "{{" not in mail.text + mail.html and "Hello Carol," in mail.text, kind
        assert f"Tenant {world.slug}" in mail.html and "<p>Hello Carol,</p>" in mail.html, kind
        if "link" in context:
            assert context["link"] in mail.text and context["link"] in mail.html, kind
