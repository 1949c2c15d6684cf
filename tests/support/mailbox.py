"""A real SMTP server (aiosmtpd) on a free loopback port, keeping what it is sent."""

from __future__ import annotations

import email
import email.policy
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Mail:
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    message_id: str = ""
    sender: str = ""  # the From header
    images: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # cid: (type, bytes)


@dataclass
class Mailbox:
    url: str = ""  # IDP_SMTP_URL that reaches it
    mails: list[Mail] = field(default_factory=list)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address.lower() in (t.lower() for t in m.to)]

    def wait_for(self, address: str, world=None, count: int = 1,
                 within: float = 15.0) -> list[Mail]:
        """The mails to ``address`` (from ``world``'s tenant) once ``count`` arrived: mail leaves
        after the request, from the outbox's sender. Fails when they do not arrive ``within``
        seconds (a deadline, not a measurement)."""
        deadline = time.monotonic() + within

        def arrived():
            return self.to(address) if world is None else tenant_mail(self, world, address)

        while len(arrived()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} mail(s) to {address} never arrived; "
                                     f"got {[m.subject for m in self.mails]}")
            time.sleep(0.02)
        return arrived()

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        text = message.get_body(("plain",))
        html = message.get_body(("html",))
        images = {str(part["Content-ID"]).strip("<>"): (part.get_content_type(), part.get_content())
                  for part in message.walk() if part.get_content_maintype() == "image"}
        # A long subject is folded onto the next line; unfolded, the space after "Subject:"
        # is no part of it (RFC 5322 2.2.3), though Python's parser keeps it.
        self.mails.append(Mail(list(envelope.rcpt_tos), str(message["Subject"]).strip(),
                               text.get_content() if text is not None else "",
                               html.get_content() if html is not None else None,
                               str(message["Message-ID"]), str(message["From"]), images))
        return "250 OK"


@contextmanager
def smtp_mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.url = f"smtp://127.0.0.1:{controller.port}"
    try:
        yield box
    finally:
        controller.stop()


@contextmanager
def mailing_app(settings, smtp_url: str, sender: bool = True):
    """The app sending mail to ``smtp_url`` (its own background sender, unless ``sender`` is
    False: the test's settings have none), stopped at the end so that no sender of a finished
    test takes another test's mail."""
    from dataclasses import replace

    from idp import create_app
    from idp.notify import outbox

    app = create_app(replace(settings, smtp_url=smtp_url, mail_sender=sender), TESTING=True)
    try:
        yield app
    finally:
        outbox.stop(app)
        app.extensions["idp.engine"].dispose()


def tenant_mail(box: Mailbox, world, address: str) -> list[Mail]:
    """The mails to ``address`` from ``world``'s tenant (test tenants share one outbox)."""
    return [m for m in box.to(address) if f"Tenant {world.slug}" in m.subject]
