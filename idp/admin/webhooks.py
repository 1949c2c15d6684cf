"""Webhook endpoints as the console and the CLI (and later the admin API) manage them: add,
change, turn on or off, rotate the secret, delete, send a test event, read the delivery log.

A secret is made here, returned to the caller once (the console shows it on the answer to
the POST, the CLI prints it) and stored encrypted: it must be read to sign. A rotation keeps
the previous secret signing for ``webhooks.ROTATION_OVERLAP`` so the receiver can switch
without missing a message. Each change is audited with the actor; never the secret.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp import audit
from idp.directory import DirectoryError, NotFound, check_webhook_url
from idp.models import OutboxMessage, Tenant, WebhookEndpoint
from idp.models.base import utcnow
from idp.notify import webhooks

MAX_ENDPOINTS = 20  # per tenant: each event is one outbox row per endpoint
MAX_DESCRIPTION = 200
KEEP = object()  # update_endpoint: leave this setting as it is


@dataclass(frozen=True)
class NewSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown once, stored only encrypted


@dataclass(frozen=True)
class Delivery:
    """One message to an endpoint, as the delivery log shows it."""

    message_id: str
    event_type: str
    state: str  # pending (retrying, or not tried yet) | sent | failed | expired | dropped
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


def check_event_types(types) -> list[str]:
    """The event types an endpoint hears, checked, in the catalogue's order; empty: all."""
    given = list(dict.fromkeys(t.strip() for t in types or () if t and t.strip()))
    unknown = [t for t in given if t not in webhooks.EVENTS]
    if unknown:
        raise DirectoryError(f"unknown event type {unknown[0]!r}: the types are "
                             f"{', '.join(webhooks.EVENTS)}")
    return [t for t in webhooks.EVENTS if t in given]


def _description(text: str | None) -> str:
    text = " ".join((text or "").split())
    if len(text) > MAX_DESCRIPTION:
        raise DirectoryError(f"a description is at most {MAX_DESCRIPTION} characters")
    return text


def endpoints(db: Session, tenant: Tenant) -> list[WebhookEndpoint]:
    return list(db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.tenant_id == tenant.id)
                           .order_by(WebhookEndpoint.id)))


def find_endpoint(db: Session, tenant: Tenant, public_id: str) -> WebhookEndpoint:
    endpoint = db.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.tenant_id == tenant.id, WebhookEndpoint.public_id == (public_id or "")[:40]))
    if endpoint is None:
        raise NotFound(f"no webhook endpoint {public_id!r} in {tenant.slug}")
    return endpoint


def create_endpoint(db: Session, box, tenant: Tenant, actor: str, url: str, *,
                    description: str = "", event_types=()) -> NewSecret:
    """Register an endpoint (enabled); its secret, to show once."""
    url = check_webhook_url(url)
    description = _description(description)
    types = check_event_types(event_types)
    if len(endpoints(db, tenant)) >= MAX_ENDPOINTS:
        raise DirectoryError(f"an organisation has at most {MAX_ENDPOINTS} webhook endpoints")
    secret = webhooks.new_secret()
    endpoint = WebhookEndpoint(tenant_id=tenant.id, public_id="ep_" + secrets.token_urlsafe(15),
                               url=url, description=description, event_types=types,
                               enabled=True, secret=box.encrypt(secret))
    db.add(endpoint)
    db.flush()
    audit.record(db, tenant.id, "webhook.created", actor=actor, endpoint=endpoint.public_id,
                 url=url, event_types=types)
    return NewSecret(endpoint, secret)


def update_endpoint(db: Session, tenant: Tenant, public_id: str, actor: str, *, url=KEEP,
                    description=KEEP, event_types=KEEP, enabled=KEEP) -> WebhookEndpoint:
    """Change what is given; everything is checked before anything changes."""
    endpoint = find_endpoint(db, tenant, public_id)
    wanted = {}
    if url is not KEEP:
        wanted["url"] = check_webhook_url(url)
    if description is not KEEP:
        wanted["description"] = _description(description)
    if event_types is not KEEP:
        wanted["event_types"] = check_event_types(event_types)
    if enabled is not KEEP:
        wanted["enabled"] = bool(enabled)
    changed = {k: v for k, v in wanted.items() if getattr(endpoint, k) != v}
    if not changed:
        return endpoint
    for name, value in changed.items():
        setattr(endpoint, name, value)
    if changed.get("enabled"):
        endpoint.disabled_reason = None  # an administrator turned it back on
    db.flush()
    audit.record(db, tenant.id, "webhook.updated", actor=actor, endpoint=endpoint.public_id,
                 **changed)
    return endpoint


def rotate_secret(db: Session, box, tenant: Tenant, public_id: str, actor: str) -> NewSecret:
    """A new secret; the one it replaces still signs (beside it) for the overlap."""
    endpoint = find_endpoint(db, tenant, public_id)
    secret = webhooks.new_secret()
    # The secrets it replaces keep signing beside it until the overlap ends; one still in its
    # overlap (a second rotation, a form sent twice) stays with them, so the secret the
    # receiver checks with is never dropped early.
    now = utcnow()
    live = (endpoint.previous_secret.split() if endpoint.previous_secret and
            endpoint.previous_until and endpoint.previous_until > now else [])
    endpoint.previous_secret = " ".join([endpoint.secret, *live][:webhooks.SECRETS_KEPT])
    endpoint.previous_until = now + webhooks.ROTATION_OVERLAP
    endpoint.secret = box.encrypt(secret)
    db.flush()
    audit.record(db, tenant.id, "webhook.secret_rotated", actor=actor,
                 endpoint=endpoint.public_id, previous_until=endpoint.previous_until.isoformat())
    return NewSecret(endpoint, secret)


def delete_endpoint(db: Session, tenant: Tenant, public_id: str, actor: str) -> str:
    """Remove the endpoint and its delivery log (what was still to be sent is not sent)."""
    endpoint = find_endpoint(db, tenant, public_id)
    url = endpoint.url
    db.execute(delete(OutboxMessage).where(
        OutboxMessage.tenant_id == tenant.id, OutboxMessage.channel == webhooks.CHANNEL,
        OutboxMessage.recipient == endpoint.public_id).execution_options(synchronize_session=False))
    db.delete(endpoint)
    db.flush()
    audit.record(db, tenant.id, "webhook.deleted", actor=actor, endpoint=public_id, url=url)
    return url


def send_test(db: Session, tenant: Tenant, public_id: str, actor: str) -> str:
    """Queue a ``webhook.test`` message to this endpoint only; its webhook-id."""
    endpoint = find_endpoint(db, tenant, public_id)
    if not endpoint.enabled:
        raise DirectoryError("This endpoint is turned off: turn it on to send it a test event.")
    body = webhooks.payload(webhooks.TEST, utcnow(), tenant, None,
                            {"endpoint": endpoint.public_id,
                             "message": "A test event sent from the admin console or the CLI."})
    message_id = webhooks.queue(db, tenant.id, [endpoint.public_id], webhooks.TEST, body)
    audit.record(db, tenant.id, "webhook.tested", actor=actor, endpoint=endpoint.public_id,
                 message_id=message_id)
    return message_id


def deliveries(db: Session, tenant: Tenant, public_id: str, limit: int = 50) -> list[Delivery]:
    """The endpoint's most recent messages, newest first."""
    endpoint = find_endpoint(db, tenant, public_id)
    rows = db.scalars(select(OutboxMessage).where(
        OutboxMessage.tenant_id == tenant.id, OutboxMessage.channel == webhooks.CHANNEL,
        OutboxMessage.recipient == endpoint.public_id)
        .order_by(OutboxMessage.id.desc()).limit(limit))
    return [Delivery(r.message_id, r.kind, r.state, r.attempts, r.last_status, r.last_error,
                     r.created_at, r.last_attempt_at, r.next_attempt_at, r.sent_at)
            for r in rows]
