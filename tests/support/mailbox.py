"""A real SMTP server (aiosmtpd) on a free loopback port, keeping what it is sent."""

from __future__ import annotations

import email
import email.policy
from contextlib import contextmanager
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Mail:
    to: list[str]
    subject: str
    text: str


@dataclass
class Mailbox:
    url: str = ""  # IDP_SMTP_URL that reaches it
    mails: list[Mail] = field(default_factory=list)

    def to(self, address: str) -> list[Mail]:
        return [m for m in self.mails if address.lower() in (t.lower() for t in m.to)]

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.mails.append(Mail(list(envelope.rcpt_tos), str(message["Subject"]), message.get_content()))
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
