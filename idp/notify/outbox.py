"""Durable mail: every message is a row written in the transaction of the change that causes
it, and delivered from there by a sender, never inside the request.

- ``mail(db, settings, ...)`` composes a message from its templates (``templates/mail/``: a
  plain-text body whose first line is ``Subject: ...``, and an HTML body) and adds it to the
  caller's session. It leaves exactly when the caller commits: a rolled-back change sends
  nothing, a committed one is never lost. It is written in one language (``locale``; by
  default the recipient's own, ``User.locale``, when they are a user of the tenant who signed
  in or chose one; else the language of the page that caused it, else English:
  ``reader_locale``, ``mail_locale``), its
  templates translated with ``_()`` from the catalogs (``idp.i18n.translations``), a
  datetime in its context written the reader's way, in UTC (``when``).
- ``deliver(engine, settings)`` hands the due messages to the SMTP server (``IDP_SMTP_URL``).
  A sender first *claims* a message: one UPDATE that succeeds only while nobody holds it
  (``claimed_until``), committed before the message is sent. So however many senders run
  (``idp mail send`` from a timer, the background sender of each server worker), one message
  goes out once. A failure is retried with back-off (30 s, 1 min, 2 min, … up to an hour) until
  ``MAX_ATTEMPTS``; a message older than ``MAX_AGE`` is dropped as ``expired`` (its links would
  be dead), or older than its kind's ``MAX_AGE_OF`` (a sign-in code: 10 minutes). The one case of a second copy: a sender that dies between the server's "250 OK"
  and marking the row sent; its lease ends and the copy carries the same Message-ID, which
  mail clients use to show it once.
- Without ``IDP_SMTP_URL`` (the embedded default) a message is ``kept``: the outbox is the
  delivery, and ``idp outbox`` lists it. A ``dropped`` message was never meant to leave (see
  ``mail``).
- Back-channel logout notices (``idp.notify.backchannel``, ``channel="logout"``) share
  the rows, the claims, the back-off and the senders: each is a signed logout token POSTed
  to a client. They leave with or without SMTP, given the keys to sign them with
  (``keyring``); a notice older than an hour is given up.
- Webhooks (``idp.notify.webhooks``, ``channel="webhook"``) too: each a JSON message signed
  at delivery with its endpoint's secret, opened with ``box`` (the SecretBox); each attempt's
  time and HTTP status are kept on the row (``last_attempt_at``, ``last_status``): the
  console's delivery log. An answer that says retrying cannot help (``SendError.final``: a
  410 Gone) gives the message up at once.
- ``Sender``: the background sender of a server process. It wakes when a request of its own
  process commits a message, and every ``POLL`` seconds for the rest (other workers, the CLI,
  retries).

No log line carries a message's text or its links: only its id, its kind and the server's
answer.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import make_msgid

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import case, event, or_, select, update
from sqlalchemy.orm import Session

from idp import branding, i18n
from idp.config import ROOT, Settings
from idp.models import OutboxMessage, Tenant, User
from idp.notify import SendError, backchannel, webhooks

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_AGE = timedelta(days=1)
# Kinds of no use sooner than a day, by kind: a sign-in code mailed after it expired only
# confuses (``idp.mfa.email_code``: a code is valid 10 minutes).
MAX_AGE_OF = {"email_code": timedelta(minutes=10), backchannel.KIND: backchannel.MAX_AGE}
LEASE = timedelta(minutes=2)  # longer than a send can take (SmtpMail's timeouts)
POLL = 5.0  # seconds between looks at the outbox when nothing wakes the sender
BATCH = 50
# How long a sender works through a batch before it looks again for what is due: a message
# queued meanwhile (a sign-in code) waits at most this and one send (``idp.outbound.DEADLINE``).
FRESH_LOOK = 5.0

# The language of the message being composed: ``compose`` sets it, the templates' ``_`` and
# ``ngettext`` read it (one Environment serves every language, and threads do not mix).
_composing = contextvars.ContextVar("idp_mail_locale", default=i18n.SOURCE)


def _gettext(message: str) -> str:
    return i18n.translations(_composing.get()).gettext(message)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations(_composing.get()).ngettext(singular, plural, n)


_templates = Environment(loader=FileSystemLoader(str(ROOT / "templates" / "mail")),
                         autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                         keep_trailing_newline=True, extensions=["jinja2.ext.i18n"])
_templates.install_gettext_callables(_gettext, _ngettext, newstyle=True)


# What a message keeps once it left or was given up: its links must not outlive it in the
# database (or its backups); the subject, recipient and times stay for ``idp outbox``.
GONE = {"body": "(sent or given up: the text is not kept)", "html": None}


def backoff(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failure."""
    return min(timedelta(seconds=30) * 2 ** max(attempts - 1, 0), timedelta(hours=1))


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str


def mail_locale(locale: str | None = None) -> str:
    """The language of a message: ``locale`` if we ship it; else, composed inside a request,
    the language of that request's page (a reset asked for from a German page is German);
    else English (the CLI, a timer)."""
    chosen = i18n.supported(locale)
    if chosen:
        return chosen
    from flask import has_request_context

    if has_request_context():
        from flask_babel import get_locale

        return i18n.supported(str(get_locale() or "")) or i18n.SOURCE
    return i18n.SOURCE


def reader_locale(db: Session, tenant: Tenant | None, to: str) -> str | None:
    """The language ``to`` reads, when they are a user of ``tenant`` who signed in or chose
    one (``User.locale``; one query); else None. Not the page's: a lockout copy to an admin
    must not speak the language an attacker's browser asked for."""
    if tenant is None:
        return None
    return i18n.supported(db.scalar(select(User.locale).where(
        User.tenant_id == tenant.id, User.email == to).limit(1)))


def when(moment: datetime, locale: str) -> str:
    """A moment as a person of ``locale`` writes it, to the minute, in UTC and saying so
    ("December 3, 2026, 10:05 AM UTC", "3. Dezember 2026, 10:05 UTC")."""
    from babel import Locale
    from babel.dates import format_datetime

    speaker = Locale.parse(i18n.supported(locale) or i18n.SOURCE)
    pattern = (speaker.datetime_formats["long"]
               .replace("{1}", speaker.date_formats["long"].pattern)
               .replace("{0}", speaker.time_formats["short"].pattern))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    text = format_datetime(moment, pattern, tzinfo=timezone.utc, locale=speaker)
    return text.replace("\u202f", " ").replace("\xa0", " ") + " UTC"


def compose(kind: str, locale: str | None = None, **context) -> Composed:
    """The message ``kind`` with ``context`` (always given ``tenant``, the name the tenant's
    branding shows, and ``brand``: ``idp.branding.mail_context``), in ``locale``
    (``mail_locale``); a datetime in ``context`` is written in that language."""
    lang = mail_locale(locale)
    values = {name: when(value, lang) if isinstance(value, datetime) else value
              for name, value in context.items()}
    token = _composing.set(lang)
    try:
        text = _templates.get_template(f"{kind}.txt").render(lang=lang, **values)
        first, _, body = text.partition("\n")
        if not first.startswith("Subject: "):
            raise ValueError(f"templates/mail/{kind}.txt must start with a Subject: line")
        html = _templates.get_template(f"{kind}.html").render(lang=lang, **values)
    finally:
        _composing.reset(token)
    return Composed(" ".join(first[len("Subject: "):].split()), body.lstrip("\n"), html)


def mail(db: Session, settings: Settings, tenant: Tenant | None, to: str, kind: str, *,
         deliver: bool = True, locale: str | None = None, **context) -> OutboxMessage:
    """Queue the message ``kind`` to ``to``: it leaves when ``db`` commits. ``deliver`` False:
    composed and written the same way, but ``dropped``, never sent (a request for an address
    with no account costs the same work as one for an account, and says nothing). ``locale``:
    its language: by default the recipient's own (``reader_locale``), else the page's, else
    English (``mail_locale``). A caller that holds the recipient's ``User`` passes its
    ``locale``."""
    if not i18n.supported(locale):
        locale = reader_locale(db, tenant, to)
    domain = settings.mail_from.rpartition("@")[2].strip("> ") or None
    composed = compose(kind, locale, **branding.mail_context(db, tenant.id if tenant else None,
                                                             tenant.name if tenant else "",
                                                             domain),
                       **context)
    if "\r" in to or "\n" in to or "\r" in composed.subject or "\n" in composed.subject:
        raise SendError("a mail recipient or subject cannot contain a line break")
    message = OutboxMessage(
        tenant_id=tenant.id if tenant else None, channel="mail", kind=kind, recipient=to[:320],
        subject=composed.subject[:300], body=composed.text if deliver else GONE["body"],
        html=composed.html if deliver else None,
        state=("pending" if settings.smtp_url else "kept") if deliver else "dropped",
        message_id=make_msgid(domain=domain))
    db.add(message)
    db.flush()
    if settings.smtp_url:  # a message that is not delivered wakes the sender all the same
        db.info["idp.mail_queued"] = True  # wake this process's sender once it is committed
    return message


@event.listens_for(Session, "after_commit")
def _wake(session: Session) -> None:
    if session.info.pop("idp.mail_queued", False):
        for sender in list(_SENDERS.values()):
            sender.ensure_running()
            sender.wake()


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("idp.mail_queued", None)


# -- delivery ---------------------------------------------------------------------------------

@dataclass
class Delivered:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    expired: int = 0

    def as_dict(self) -> dict:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed,
                "expired": self.expired}


def _due(now: datetime, channels: list[str]):
    return (select(OutboxMessage.id)
            .where(OutboxMessage.channel.in_(channels), OutboxMessage.state == "pending",
                   or_(OutboxMessage.next_attempt_at.is_(None),
                       OutboxMessage.next_attempt_at <= now),
                   or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
            # Mail and logout notices first: a tenant's slow webhook receivers must not keep
            # another's sign-in code waiting (``deliver`` looks again every ``FRESH_LOOK``).
            .order_by(case((OutboxMessage.channel == webhooks.CHANNEL, 1), else_=0),
                      OutboxMessage.id).limit(BATCH))


def _claim(db: Session, message_id: int, now: datetime) -> datetime | None:
    """Take the message for ``LEASE`` (committed at once), or None when another sender has it."""
    lease = now + LEASE
    taken = db.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.state == "pending",
               or_(OutboxMessage.claimed_until.is_(None), OutboxMessage.claimed_until < now))
        .values(claimed_until=lease, attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)).rowcount
    db.commit()
    return lease if taken == 1 else None


def _finish(db: Session, message_id: int, lease: datetime, **values) -> None:
    """Record the outcome, if the lease is still ours (it is, unless the send outlived it)."""
    db.execute(update(OutboxMessage)
               .where(OutboxMessage.id == message_id, OutboxMessage.claimed_until == lease)
               .values(claimed_until=None, **values)
               .execution_options(synchronize_session=False))
    db.commit()


def deliver(engine, settings: Settings, *, transport=None, now=None, keyring=None,
            box=None, store=None) -> Delivered:
    """Send what is due now; the counts of what happened. ``transport``: the SMTP sender (from
    the settings by default; without either, mail is not this sender's to send). ``keyring``:
    the keys that sign back-channel logout tokens (without it, those wait for a sender that
    has them); ``box``: the SecretBox that opens webhook secrets (likewise). ``store``: the
    shared Redis, so that an endpoint a 410 Gone turned off leaves every worker's cache at
    once (``idp.cache``; without it, messages queued for it meanwhile are dropped here)."""
    from idp.notify.mail import SmtpMail

    if transport is None and settings.smtp_url:
        transport = SmtpMail(settings.smtp_url, settings.mail_from)
    channels = (["mail"] if transport is not None else []) + (
        [backchannel.CHANNEL] if keyring is not None else []) + (
        [webhooks.CHANNEL] if box is not None else [])
    done = Delivered()
    if not channels:
        return done
    send = _Channels(transport, keyring, settings.base_url, settings.calls_private_addresses, box,
                     settings.secret_key)
    info = {"idp.store": store} if store is not None and settings.redis_url else {}
    with Session(engine, expire_on_commit=False, info=info) as db:
        while True:
            moment = now or datetime.now(timezone.utc)
            ids = db.scalars(_due(moment, channels)).all()
            db.commit()
            if not ids:
                return done
            looked = time.monotonic()
            for message_id in ids:
                if now is None and time.monotonic() - looked > FRESH_LOOK:
                    break  # look again: what came in meanwhile may go first
                # The time of each claim, not of the batch: a lease must run from when it is
                # taken, or a slow batch would hand out leases already over.
                claimed_at = now or datetime.now(timezone.utc)
                lease = _claim(db, message_id, claimed_at)
                if lease is None:
                    continue
                _deliver_one(db, send, db.get(OutboxMessage, message_id, populate_existing=True),
                             lease, claimed_at, done)
            if now is not None:  # a fixed clock (tests): one pass
                return done


@dataclass(frozen=True)
class _Channels:
    """How each channel's message leaves: (True, the HTTP status if any) once it did, (False,
    None) when it has nowhere to go any more; an exception to retry."""
    transport: object
    keyring: object
    base_url: str
    private_allowed: bool  # may a request go to a private address (``idp.outbound``)?
    box: object = None
    secret_key: str = ""  # pairwise subjects in logout tokens (``idp.subjects``)

    def __call__(self, db: Session, message: OutboxMessage) -> tuple[bool, int | None]:
        if message.channel == backchannel.CHANNEL:
            return backchannel.post(db, message, self.keyring, self.base_url,
                                    private_allowed=self.private_allowed,
                                    secret_key=self.secret_key), None
        if message.channel == webhooks.CHANNEL:
            status = webhooks.post(db, message, self.box, private_allowed=self.private_allowed)
            return status is not None, status
        # The tenant's display name and logo as they are now (``idp.branding``).
        self.transport.send(message.recipient, message.subject or "", message.body,
                            html=message.html, message_id=message.message_id,
                            **branding.mail_dressing(db, message.tenant_id, message.html))
        return True, None


def _deliver_one(db: Session, send: _Channels, message: OutboxMessage, lease: datetime,
                 now: datetime, done: Delivered) -> None:
    what = message.channel
    if message.created_at < now - MAX_AGE_OF.get(message.kind, MAX_AGE):
        log.warning("%s %s (%s) expired unsent after %s attempts", what, message.id,
                    message.kind, message.attempts - 1)
        _finish(db, message.id, lease, state="expired", **GONE)
        done.expired += 1
        return
    try:
        left, status = send(db, message)
    except Exception as e:  # noqa: BLE001  (one bad message must not stop the others)
        error = (str(e) if isinstance(e, SendError) else f"cannot send it ({type(e).__name__})")[:300]
        tried = {"last_attempt_at": now, "last_status": getattr(e, "status", None)}
        if message.attempts >= MAX_ATTEMPTS or getattr(e, "final", False):
            log.error("%s %s (%s) failed for good after %s attempts: %s", what, message.id,
                      message.kind, message.attempts, error)
            _finish(db, message.id, lease, state="failed", last_error=error, **tried, **GONE)
            done.failed += 1
        else:
            retry = now + backoff(message.attempts)
            log.warning("%s %s (%s) not sent (attempt %s), retrying at %s: %s", what, message.id,
                        message.kind, message.attempts, retry.isoformat(timespec="seconds"),
                        error)
            _finish(db, message.id, lease, next_attempt_at=retry, last_error=error, **tried)
            done.retrying += 1
        return
    if not left:  # a logout notice whose client, or its URI, is gone: nobody to tell
        _finish(db, message.id, lease, state="dropped", last_attempt_at=now, **GONE)
        return
    _finish(db, message.id, lease, state="sent", sent_at=datetime.now(timezone.utc),
            last_error=None, last_attempt_at=now, last_status=status, **GONE)
    done.sent += 1


# -- the background sender of a server process ------------------------------------------------

class Sender:
    """One per app and process: a daemon thread delivering the outbox. It starts on the first
    request of each process (so after a fork) and ends with the app."""

    def __init__(self, app):
        self._app = weakref.ref(app)
        self._event = threading.Event()
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def ensure_running(self) -> None:
        if self._pid == os.getpid() or self._stopped:
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="idp-mail-sender", daemon=True).start()

    def wake(self) -> None:
        self._event.set()

    def stop(self) -> None:
        """End the thread (after the send it may be in): the app is going away."""
        self._stopped = True
        self._event.set()

    def _run(self) -> None:
        pid = os.getpid()
        while self._pid == pid and not self._stopped:
            app = self._app()
            if app is None:
                return
            engine, settings = app.extensions["idp.engine"], app.config["IDP"]
            keyring, box = app.extensions["idp.keyrings"], app.extensions["idp.secretbox"]
            store = app.extensions["idp.store"]
            del app  # held weakly: a dropped app's sender ends
            self._event.clear()
            if self._stopped:
                return
            try:
                deliver(engine, settings, keyring=keyring, box=box, store=store)
            except SendError as e:  # IDP_SMTP_URL is malformed: said at start, said again
                log.error("the mail sender cannot run: %s", e)
            except Exception:  # the database is away, say: the next round tries again
                log.exception("the mail sender failed; trying again in %s s", POLL)
            self._event.wait(POLL)


_SENDERS: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def stop(app) -> None:
    """Stop ``app``'s background sender, if it has one (before its engine is disposed)."""
    sender = app.extensions.get("idp.mail_sender")
    if sender is not None:
        sender.stop()


def init_app(app) -> None:
    """Run a background sender in each process that serves ``app`` (unless
    ``IDP_MAIL_SENDER=off``): it sends mail with SMTP configured, and back-channel logout
    notices and webhooks always."""
    settings = app.config["IDP"]
    if not settings.mail_sender:
        return
    sender = Sender(app)
    app.extensions["idp.mail_sender"] = sender
    _SENDERS[id(sender)] = sender

    @app.before_request
    def _start_sender():
        sender.ensure_running()
