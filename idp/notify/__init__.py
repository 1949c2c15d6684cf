"""Sending mail and text messages: one small class per backend, chosen from the settings.

- SMS: ``send(to, text)`` — the outbox (``OutboxMessage(channel="sms")``, the embedded
  default) or, with ``IDP_SMS_URL``, an HTTP provider in the shape of Twilio's Messages API.
- Mail: never sent inside a request. ``outbox.mail(...)`` writes it to the outbox in the
  caller's transaction; the outbox's sender hands it to the SMTP server of ``IDP_SMTP_URL``
  (``smtp://``, ``smtps://``, ``smtp+starttls://``) with retries, or, without one, keeps it
  there for ``idp outbox`` (``idp.notify.outbox``).

The SMS outbox backend adds a row to the caller's database session, so a message is kept
exactly when the request that wrote it commits. The network backends raise ``SendError`` when
the message could not be handed over; callers turn that into a message for people (``NotNow``)
and never show the error's text, which is for logs. Nothing here ever logs the text of a
message: it may hold a code or a link.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from idp.config import Settings


class SendError(Exception):
    """A message could not be handed to the provider (network, refusal, configuration).

    The text is for operators' logs: it names the provider's answer, never the message.
    ``status``: the HTTP status the receiver answered, if it answered (a webhook's delivery
    log shows it); ``final``: retrying cannot help (a webhook endpoint answered 410 Gone)."""

    def __init__(self, message: str, *, status: int | None = None, final: bool = False):
        super().__init__(message)
        self.status = status
        self.final = final


def sms_sender(settings: Settings, db: Session | None):
    """The SMS backend the settings choose: HTTP when ``sms_url`` is set, else the outbox."""
    from idp.notify import sms

    if settings.sms_url:
        return sms.HttpSMS(settings.sms_url)
    return sms.OutboxSMS(db)


def smtp_transport(settings: Settings):
    """The outbox's SMTP transport, or None without ``IDP_SMTP_URL``; raises SendError when the
    URL is malformed."""
    from idp.notify import mail

    return mail.SmtpMail(settings.smtp_url, settings.mail_from) if settings.smtp_url else None


def problems(settings: Settings) -> list[str]:
    """What is wrong with ``IDP_SMS_URL`` / ``IDP_SMTP_URL``, for a warning at start
    (the same checks run again, as ``SendError``, when a message is sent)."""
    found = []
    for make in (lambda: sms_sender(settings, None), lambda: smtp_transport(settings)):
        try:
            make()
        except SendError as e:
            found.append(str(e))
    return found
