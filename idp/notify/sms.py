"""SMS backends: ``send(to, text)`` with ``to`` in E.164.

``OutboxSMS`` (the embedded default) keeps the message as ``OutboxMessage(channel="sms")`` in
the caller's session. ``HttpSMS`` posts to a provider in the shape of Twilio's Messages API,
configured by one URL::

    IDP_SMS_URL=https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com/2010-04-01/Accounts/ACCOUNT_SID/Messages.json?from=+15550001111

It POSTs the form fields ``To``, ``From`` and ``Body`` with HTTP basic auth (RFC 7617) from the
URL's userinfo, and treats anything but a 2xx answer as a failure (Twilio answers 201 Created).
"""

from __future__ import annotations

import ipaddress
import logging
from urllib.parse import unquote, urlsplit, urlunsplit

import requests
from sqlalchemy.orm import Session

from idp.models import OutboxMessage
from idp.notify import SendError
from idp.untrusted import UntrustedInput, parse_json_object

log = logging.getLogger(__name__)

TIMEOUT = 10  # seconds, to connect and again to read: a sign-in page waits for this


class OutboxSMS:
    """Keeps the message in the database (committed with the request); ``idp outbox`` shows it."""

    def __init__(self, db: Session):
        self.db = db

    def send(self, to: str, text: str) -> None:
        self.db.add(OutboxMessage(channel="sms", recipient=to, subject=None, body=text, state="kept"))
        self.db.flush()


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _query(query: str) -> dict[str, str]:
    """The query's parameters, percent-decoded but with ``+`` kept as a plus: in
    ``?from=+15550001111`` it is the E.164 prefix, not a form-encoded space."""
    found = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name:
            found[unquote(name)] = unquote(value)
    return found


class HttpSMS:
    """Twilio's Messages API shape: POST form To/From/Body, basic auth, 2xx or a SendError."""

    def __init__(self, url: str):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError on a bad port)
        except ValueError:
            raise SendError("IDP_SMS_URL is not a URL") from None
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise SendError("IDP_SMS_URL must be an https:// URL")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            # The URL carries the account's credentials: never over plain HTTP on a network.
            raise SendError("IDP_SMS_URL must use https (http only for a loopback address)")
        self.account = unquote(parts.username or "")
        self._token = unquote(parts.password or "")
        if not self.account or not self._token:
            raise SendError("IDP_SMS_URL needs ACCOUNT_SID:AUTH_TOKEN@ before the host")
        self.sender = _query(parts.query).get("from", "").strip()
        if not self.sender:
            raise SendError("IDP_SMS_URL needs ?from= with the sending number or sender id")
        self.host = parts.hostname
        self.endpoint = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))

    def __repr__(self) -> str:  # never the token
        return f"HttpSMS({self.endpoint!r}, from={self.sender!r})"

    def send(self, to: str, text: str) -> None:
        try:
            answer = requests.post(self.endpoint, data={"To": to, "From": self.sender, "Body": text},
                                   auth=(self.account, self._token), timeout=TIMEOUT,
                                   allow_redirects=False)
        except requests.RequestException as e:
            raise SendError(f"SMS provider {self.host} not reachable ({type(e).__name__})") from None
        if not 200 <= answer.status_code < 300:
            raise SendError(f"SMS provider {self.host} answered HTTP {answer.status_code}"
                            f"{_detail(answer)}")
        log.info("SMS handed to %s (HTTP %s)", self.host, answer.status_code)


def _detail(answer: requests.Response) -> str:
    """Twilio's error body is JSON with ``code`` and ``message``; a short hint for the log."""
    try:
        body = parse_json_object(answer.content, what="answer")
    except UntrustedInput:
        return ""
    parts = [str(body[k])[:200] for k in ("code", "message") if body.get(k) is not None]
    return f": {' '.join(parts)}" if parts else ""
