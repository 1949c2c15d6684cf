"""The message senders against real servers started by the test: a Twilio-shaped HTTP API
(threading + http.server) for SMS, aiosmtpd for SMTP (plain, STARTTLS, implicit TLS), and
the outbox that the embedded default keeps and `idp outbox` lists."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import email
import email.policy
import json
import secrets
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from idp import cli, db, notify
from idp.models import OutboxMessage, Tenant
from idp.notify import outbox
from idp.notify.mail import SmtpMail
from idp.notify.sms import HttpSMS, OutboxSMS
from tests.support.ports import free_port
from tests.support.tls import self_signed
from tests.support.twilio import FROM, SID, TOKEN, FakeTwilio


@pytest.fixture
def twilio():
    with FakeTwilio() as server:
        yield server


def test_the_http_adapter_posts_twilio_form_fields_with_basic_auth(twilio):
    HttpSMS(twilio.url).send("+33612345678", "Your Acme sign-in code is 123456.")
    [sent] = twilio.requests
    assert sent["path"] == f"/2010-04-01/Accounts/{SID}/Messages.json"  # no query, no userinfo
    assert sent["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent["form"] == {"To": ["+33612345678"], "From": [FROM],
                            "Body": ["Your Acme sign-in code is 123456."]}
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert sent["headers"]["Authorization"] == f"Basic {expected}"


def test_a_refusal_or_an_unreachable_provider_is_a_send_error_without_the_text(twilio):
    twilio.status = 400
    with pytest.raises(notify.SendError) as refused:
        HttpSMS(twilio.url).send("+33612345678", "code 123456")
    assert "HTTP 400" in str(refused.value) and "21211" in str(refused.value)
    assert "123456" not in str(refused.value) and TOKEN not in str(refused.value)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(notify.SendError, match="not reachable"):
        HttpSMS(f"http://{SID}:x@127.0.0.1:{closed}/Messages.json?from={FROM}").send("+33612345678", "x")


@pytest.mark.parametrize("url,message", [
    (f"http://{SID}:t@sms.example.com/Messages.json?from={FROM}", "https"),
    (f"ftp://{SID}:t@sms.example.com/Messages.json?from={FROM}", "https"),
    (f"https://sms.example.com/Messages.json?from={FROM}", "ACCOUNT_SID:AUTH_TOKEN"),
    (f"https://{SID}:t@sms.example.com/Messages.json", "from="),
    ("https://a:b@sms.example.com:99999/x?from=1", "not a URL"),
])
def test_a_bad_sms_url_is_named_clearly(url, message):
    with pytest.raises(notify.SendError, match=message):
        HttpSMS(url)


def test_senders_are_chosen_from_the_settings(settings):
    assert isinstance(notify.sms_sender(settings, None), OutboxSMS)
    assert notify.smtp_transport(settings) is None  # mail stays in the outbox
    chosen = dataclasses.replace(settings, sms_url=f"https://{SID}:t@api.twilio.com/x?from=%2B15550001111",
                                 smtp_url="smtp+starttls://u:p@mail.example.com")
    sms = notify.sms_sender(chosen, None)
    assert isinstance(sms, HttpSMS) and sms.sender == FROM and TOKEN not in repr(sms)
    mail = notify.smtp_transport(chosen)
    assert isinstance(mail, SmtpMail) and (mail.host, mail.port) == ("mail.example.com", 587)
    assert notify.problems(chosen) == []
    assert notify.problems(dataclasses.replace(settings, smtp_url="smtp://u:p@mail.example.com")) == [
        "IDP_SMTP_URL has a login on smtp://: use smtps:// or smtp+starttls://"]


# -- the mail outbox and `idp outbox` ------------------------------------------------------

@pytest.fixture
def run_idp(settings, monkeypatch, capsys):
    """`idp ...` in this process, on the test database."""
    monkeypatch.setenv("IDP_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("IDP_SECRET_KEY", settings.secret_key)

    def run(*args):
        status = cli.main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _queue(app, to: str, who: str) -> None:
    with app.app_context():
        tenant = db.session().scalars(select(Tenant).limit(1)).one()
        outbox.mail(db.session(), app.config["IDP"], tenant, to, "login_link_created",
                    name="Carol", email=to, who=who, at="2026-12-03 10:00 UTC",
                    until="2026-12-03 10:15 UTC")
        db.session().commit()


def test_the_mail_outbox_keeps_messages_for_idp_outbox(app, world, run_idp):
    to = f"carol+{secrets.token_hex(4)}@example.com"  # the outbox is shared by every test
    _queue(app, to, "Ada")
    _queue(app, to, "Bob")
    with app.app_context():
        rows = db.session().scalars(select(OutboxMessage).where(OutboxMessage.recipient == to)
                                    .order_by(OutboxMessage.id)).all()
        # Without IDP_SMTP_URL the outbox is the delivery: kept, never sent.
        assert [(r.channel, r.kind, r.state) for r in rows] == [
            ("mail", "login_link_created", "kept")] * 2
        tenant = db.session().get(Tenant, rows[0].tenant_id)
        assert rows[0].subject == f"A sign-in link was created for your {tenant.name} account"
        assert "<p>Hello Carol,</p>" in rows[0].html and "by Ada at" in rows[0].body
        first_time = rows[0].created_at.isoformat(timespec="seconds")
        subject, body = rows[0].subject, rows[0].body

    status, out, _ = run_idp("outbox", "--json", "--to", to.upper(), "--channel", "mail")
    listed = json.loads(out)
    assert status == 0 and ["by Bob" in m["text"] for m in listed] == [True, False]
    assert listed[1] == {"recipient": to, "channel": "mail", "subject": subject,
                         "text": body, "time": first_time, "state": "kept"}
    assert listed[1]["text"].startswith("Hello Carol,\n\nA sign-in link was created")
    assert datetime.datetime.fromisoformat(listed[1]["time"]).utcoffset() == datetime.timedelta(0)
    assert len(json.loads(run_idp("outbox", "--json", "--to", to, "--limit", "1")[1])) == 1
    assert json.loads(run_idp("outbox", "--json", "--to", to, "--channel", "sms")[1]) == []

    status, table, _ = run_idp("outbox", "--to", to)
    lines = table.splitlines()
    assert status == 0 and lines[0].split() == ["TIME", "CHANNEL", "STATE", "RECIPIENT",
                                                "SUBJECT", "TEXT"]
    assert "Hello Carol, A sign-in link was created" in lines[2] and "by Ada" in lines[2]
    assert lines[1].index("by Bob") == lines[2].index("by Ada")  # aligned columns


def test_idp_outbox_refuses_a_bad_limit(run_idp):
    with pytest.raises(SystemExit) as exit_:
        run_idp("outbox", "--limit", "0")
    assert exit_.value.code == 2


def test_a_header_with_a_line_break_is_refused(app):
    with app.app_context():
        with pytest.raises(notify.SendError, match="line break"):
            outbox.mail(db.session(), app.config["IDP"], None, "a@example.com\r\nBcc: evil@example.com",
                        "lockout", name="A", email="a@example.com", ends="soon", copy=False)
    with pytest.raises(notify.SendError, match="line break"):
        SmtpMail("smtp://127.0.0.1:1", "idp@example.test").message(
            "a@example.com\nBcc: evil@example.com", "Hi", "x")


# -- SMTP, against aiosmtpd ------------------------------------------------------------------

class Inbox:
    """aiosmtpd's handler: keeps every envelope it accepts."""

    def __init__(self):
        self.envelopes = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"mailer" and auth_data.password == b"p@ss:word"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    return self_signed(tmp_path_factory.mktemp("smtp-tls"), "idp test smtp")


def _server_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def smtp_server():
    """Start aiosmtpd (plain, STARTTLS or implicit TLS); stopped after the test."""
    started = []

    def start(**kwargs):
        inbox = Inbox()
        if kwargs.pop("login", False):
            kwargs.update(authenticator=inbox.authenticate, auth_required=True)
        controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return inbox, controller.port

    yield start
    for controller in started:
        controller.stop()


def _received(inbox: Inbox) -> email.message.EmailMessage:
    [envelope] = inbox.envelopes
    return email.message_from_bytes(envelope.original_content, policy=email.policy.default)


def test_plain_smtp_delivers_recipient_subject_and_body(smtp_server, settings):
    inbox, port = smtp_server()
    chosen = dataclasses.replace(settings, smtp_url=f"smtp://127.0.0.1:{port}",
                                 mail_from="Acme sign-in <signin@acme.example>")
    notify.smtp_transport(chosen).send("carol@example.com", "Your sign-in link",
                                          "Hello Carol,\n\nopen this link to sign in.\n")
    [envelope] = inbox.envelopes
    assert envelope.mail_from == "signin@acme.example" and envelope.rcpt_tos == ["carol@example.com"]
    received = _received(inbox)
    assert received["Subject"] == "Your sign-in link" and received["To"] == "carol@example.com"
    assert received["From"] == "Acme sign-in <signin@acme.example>"
    # On the wire lines end in CRLF (RFC 5321 2.3.8).
    assert received.get_content().replace("\r\n", "\n") == "Hello Carol,\n\nopen this link to sign in.\n"
    assert received["Message-ID"].endswith("@acme.example>") and received["Date"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS, see below
@pytest.mark.parametrize("scheme,server_kwargs", [
    ("smtp+starttls", lambda tls: {"tls_context": tls, "require_starttls": True}),
    # aiosmtpd knows TLS only from STARTTLS: with implicit TLS it must be told AUTH is safe.
    ("smtps", lambda tls: {"ssl_context": tls, "auth_require_tls": False}),
])
def test_tls_smtp_verifies_the_certificate_and_logs_in(smtp_server, certificate, monkeypatch,
                                                       scheme, server_kwargs):
    inbox, port = smtp_server(login=True, **server_kwargs(_server_context(certificate)))
    url = f"{scheme}://mailer:p%40ss%3Aword@127.0.0.1:{port}"

    # Not yet trusted: the mail is not sent (no fallback to an unverified connection).
    with pytest.raises(notify.SendError, match="did not take the mail"):
        SmtpMail(url, "idp@example.test").send("dave@example.com", "Hello", "Body.\n")
    assert inbox.envelopes == []

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # the system trust store, for this test
    SmtpMail(url, "idp@example.test").send("dave@example.com", "Hello", "Body.\n")
    assert inbox.logins == ["mailer"]
    received = _received(inbox)
    assert inbox.envelopes[0].rcpt_tos == ["dave@example.com"]
    assert received["Subject"] == "Hello" and received.get_content() == "Body.\r\n"

    with pytest.raises(notify.SendError, match="535"):
        SmtpMail(url.replace("p%40ss", "wrong"), "idp@example.test").send("dave@example.com", "x", "y")


def test_starttls_is_required_when_asked_for(smtp_server):
    inbox, port = smtp_server()  # offers no STARTTLS
    with pytest.raises(notify.SendError, match="STARTTLS|SMTPNotSupportedError"):
        SmtpMail(f"smtp+starttls://127.0.0.1:{port}", "idp@example.test").send("e@example.com", "x", "y")
    assert inbox.envelopes == []


def test_an_unreachable_smtp_server_is_a_send_error():
    with pytest.raises(notify.SendError, match=f"127.0.0.1:{(port := free_port())}"):
        SmtpMail(f"smtp://127.0.0.1:{port}", "idp@example.test").send("e@example.com", "x", "y")


@pytest.mark.parametrize("url,message", [
    ("smtp://user:pw@mail.example.com", "login on smtp://"),
    ("http://mail.example.com", "smtp://, smtps:// or smtp\\+starttls://"),
    ("smtp://", "with a host"),
    ("smtp://mail.example.com:99999", "not a URL"),
])
def test_a_bad_smtp_url_is_named_clearly(url, message):
    with pytest.raises(notify.SendError, match=message):
        SmtpMail(url, "idp@example.test")
