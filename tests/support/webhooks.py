"""A tenant's webhook receiver: a loopback server that takes the POSTed messages, answers as
it is told, and checks each one as a receiver must, with standardwebhooks' ``Webhook.verify``
and the secret it was given."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from standardwebhooks import Webhook

from idp import db, directory
from idp.admin import webhooks as hooks
from idp.models import OutboxMessage
from idp.notify import outbox
from idp.notify import webhooks as notify_hooks
from tests.support.local_http import LocalService
from tests.support.outbox_rows import outbox_rows


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # names in lower case
    body: bytes

    def verified(self, secret: str) -> dict:
        """The message, checked with ``secret`` (raises WebhookVerificationError if it does not
        verify: wrong secret, altered body, stale timestamp)."""
        return Webhook(secret).verify(self.body, self.headers)

    @property
    def message(self) -> dict:
        return json.loads(self.body)

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class WebhookReceiver(LocalService):
    """Answers each POST with the next of ``statuses`` (then 200); keeps what it got."""

    def __init__(self, *statuses: int):
        super().__init__()
        self.statuses = list(statuses)
        self.received: list[Received] = []
        self.arrived = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def answer(self, method, path, headers, body):
        self.received.append(Received({k.lower(): v for k, v in headers.items()}, body))
        status = self.statuses.pop(0) if self.statuses else 200
        self.arrived.set()
        return status, "text/plain", b""

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.message["type"] == event_type]


def add_endpoint(app, world, url: str, *event_types: str) -> tuple[str, str]:
    """An endpoint of ``world``'s tenant, as an admin adds it: (its id, its secret)."""
    with app.app_context():
        session = db.session()
        new = hooks.create_endpoint(session, app.extensions["idp.secretbox"],
                                    directory.get_tenant(session, world.slug), world.admin, url,
                                    event_types=event_types)
        session.commit()
        return new.endpoint.public_id, new.secret


def rotate(app, world, endpoint: str) -> str:
    with app.app_context():
        session = db.session()
        new = hooks.rotate_secret(session, app.extensions["idp.secretbox"],
                                  directory.get_tenant(session, world.slug), endpoint, world.admin)
        session.commit()
        return new.secret


def deliver(app, now: datetime | None = None) -> outbox.Delivered:
    """What the background sender does, once (``now``: the clock it reads)."""
    return outbox.deliver(app.extensions["idp.engine"], app.config["IDP"],
                          keyring=app.extensions["idp.keyrings"],
                          box=app.extensions["idp.secretbox"], store=app.extensions["idp.store"],
                          now=now)


def messages(app, world) -> list[OutboxMessage]:
    """The tenant's webhook rows (its delivery log), oldest first."""
    return outbox_rows(app, world, notify_hooks.CHANNEL)


def make_due(app, world, when: datetime) -> None:
    """Time moves on: every pending retry of the tenant is due at ``when``."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        session.execute(update(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.channel == notify_hooks.CHANNEL,
            OutboxMessage.state == "pending").values(next_attempt_at=when))
        session.commit()
