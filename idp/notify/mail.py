"""The SMTP transport of the outbox's sender (``idp.notify.outbox``): ``SmtpMail`` hands a
message to the server named by ``IDP_SMTP_URL``:

- ``smtp://host[:25]`` — no TLS, no login: a relay on the same host or network;
- ``smtps://user:pass@host[:465]`` — TLS from the first byte ("implicit TLS", RFC 8314 3.3);
- ``smtp+starttls://user:pass@host[:587]`` — submission upgraded with STARTTLS (RFC 3207).

Certificates are verified against the system's trust store (``ssl.create_default_context``).
Credentials are refused on ``smtp://``: they would cross the network in the clear.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from urllib.parse import unquote, urlsplit

from idp.notify import SendError

log = logging.getLogger(__name__)

TIMEOUT = 10  # seconds for each network operation
PORTS = {"smtp": 25, "smtps": 465, "smtp+starttls": 587}


def _check_header(name: str, value: str) -> str:
    # A CR or LF in a header would let the value start a header of its own (RFC 5322 2.2).
    if "\r" in value or "\n" in value:
        raise SendError(f"a mail {name} cannot contain a line break")
    return value


class SmtpMail:
    def __init__(self, url: str, mail_from: str):
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise SendError("IDP_SMTP_URL is not a URL") from None
        if parts.scheme not in PORTS or not parts.hostname:
            raise SendError("IDP_SMTP_URL must be smtp://, smtps:// or smtp+starttls:// with a host")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = port or PORTS[parts.scheme]
        self.user = unquote(parts.username or "")
        self._password = unquote(parts.password or "")
        if self.user and self.scheme == "smtp":
            raise SendError("IDP_SMTP_URL has a login on smtp://: use smtps:// or smtp+starttls://")
        self.mail_from = _check_header("sender (IDP_MAIL_FROM)", mail_from)

    def __repr__(self) -> str:  # never the password
        return f"SmtpMail({self.scheme}://{self.host}:{self.port}, user={self.user!r})"

    def message(self, to: str, subject: str, text: str, html: str | None = None,
                message_id: str | None = None, *, from_name: str | None = None,
                images: list[tuple[str, bytes, str]] = ()) -> EmailMessage:
        """``from_name``: the sender's name people see (the tenant's display name) instead of
        IDP_MAIL_FROM's; ``images``: (content id, bytes, content type) parts the HTML shows as
        ``cid:`` (RFC 2392), sent with it as multipart/related (RFC 2387)."""
        msg = EmailMessage()
        try:
            if from_name:
                address = parseaddr(self.mail_from)[1] or self.mail_from
                msg["From"] = formataddr((_check_header("sender name", from_name), address))
            else:
                msg["From"] = self.mail_from
            msg["To"] = _check_header("recipient", to)
            msg["Subject"] = _check_header("subject", subject)
        except ValueError as e:  # the email package refuses a malformed address
            raise SendError(f"cannot build the mail: {e}") from None
        msg["Date"] = formatdate(usegmt=True)
        domain = self.mail_from.rpartition("@")[2].strip("> ") or None
        # The outbox keeps one id per message: a copy sent again after a crash is the same mail.
        msg["Message-ID"] = message_id or make_msgid(domain=domain)
        msg.set_content(text)
        if html:
            msg.add_alternative(html, subtype="html")
            body = msg.get_body(("html",))
            for cid, data, content_type in images if body is not None else ():
                maintype, _, subtype = content_type.partition("/")
                body.add_related(data, maintype, subtype, cid=f"<{cid}>", disposition="inline")
        return msg

    def send(self, to: str, subject: str, text: str, *, html: str | None = None,
             message_id: str | None = None, from_name: str | None = None,
             images: list[tuple[str, bytes, str]] = ()) -> None:
        msg = self.message(to, subject, text, html, message_id, from_name=from_name,
                           images=images)
        context = ssl.create_default_context()
        try:
            if self.scheme == "smtps":
                server = smtplib.SMTP_SSL(self.host, self.port, timeout=TIMEOUT, context=context)
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=TIMEOUT)
            with server:
                if self.scheme == "smtp+starttls":
                    # starttls() raises if the server does not offer it: never fall back to clear.
                    server.starttls(context=context)
                if self.user:
                    server.login(self.user, self._password)
                # Exactly the row's recipient: never addresses the To header might parse into.
                refused = server.send_message(msg, to_addrs=[to])
        except (smtplib.SMTPException, OSError) as e:
            raise SendError(f"SMTP server {self.host}:{self.port} did not take the mail "
                            f"({type(e).__name__}: {_reason(e)})") from None
        if refused:
            raise SendError(f"SMTP server {self.host}:{self.port} refused the recipient")
        log.info("mail handed to %s:%s", self.host, self.port)


def _reason(e: Exception) -> str:
    if isinstance(e, smtplib.SMTPResponseException):
        return f"{e.smtp_code} {e.smtp_error.decode(errors='replace')[:200]}"
    return str(e)[:200]
