"""Signed webhooks (Standard Webhooks, https://www.standardwebhooks.com): a tenant's own
systems hear what happens — accounts created, changed, locked, factors set up or removed,
sign-ins, policy changes — at the HTTPS endpoints its administrators register.

- ``emit(...)``: called by ``idp.audit.record`` for every audit event, so whatever records an
  event (the console, the CLI, the sign-in, the admin API, SCIM) is heard the same way. An
  audit action that maps to no event type (``FROM_AUDIT``) costs a dict lookup; a tenant with
  no endpoint costs nothing more either — its endpoints are a per-worker snapshot
  (``idp.cache``), re-read only when someone changes them. Otherwise one outbox row per
  listening endpoint is added to the caller's transaction (``channel="webhook"``, the
  endpoint's public id as ``recipient``): a rolled-back change tells nobody, a committed one
  is never lost.
- The row keeps the message as it will be POSTed: ``{"type", "timestamp", "data"}`` with
  fields picked one by one for each type (``_data``) — never a password, code, secret, token
  or hash, whatever the audit event holds — and its ``webhook-id`` (``message_id``), the same
  on every retry so a receiver can drop a repeat.
- ``post(db, message, box, now)``: what the outbox's sender calls. The signature is made
  *now* (``webhook-timestamp`` is the time of this attempt: receivers refuse old ones), with
  the endpoint's secret — and, for ``ROTATION_OVERLAP`` after a rotation, with the previous
  secret too: two signatures separated by a space, as the specification allows, so a
  receiver still holding the old secret keeps verifying while it is updated. It goes to the
  endpoint's URL as registered at that moment, redirects not followed. A 2xx is delivered;
  a 410 Gone turns the endpoint off (the receiver said it is gone for good: the
  specification's advice) and the message is given up; any other answer, a timeout or a
  refused connection is retried with the outbox's back-off until its attempts or its day
  (``MAX_AGE``) are spent. A message for an endpoint deleted or turned off meanwhile is
  dropped.
"""

from __future__ import annotations

import json
import secrets
from base64 import b64encode
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import requests
from flask import g, has_app_context
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from idp import outbound
from idp.cache import Snapshots
from idp.models import OutboxMessage, Tenant, User, WebhookEndpoint
from idp.notify import SendError

CHANNEL = "webhook"
TEST = "webhook.test"  # the console's "Send a test event", to one endpoint only
MAX_AGE = timedelta(days=1)  # the outbox's default: 10 attempts over ~3 hours fit in it
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret still signs this long
SECRETS_KEPT = 4  # the current secret and at most three it replaced, while their overlap runs
SECRET_BYTES = 32  # the specification asks for 24 to 64 random bytes

# The event types an endpoint can hear, in the words the console shows.
EVENTS = {
    "user.created": _l("An account was created: by an administrator, an invitation, a sign-up or "
                       "a first sign-in with an identity provider"),
    "user.updated": _l("An account changed: role, groups, verified address, password, or whether "
                       "two-step verification is required of it"),
    "user.deactivated": _l("An account was deactivated"),
    "user.reactivated": _l("A deactivated account was reactivated"),
    "user.deleted": _l("An account was deleted"),
    "mfa.enrolled": _l("Someone set up a two-step verification method"),
    "mfa.removed": _l("Someone removed one of their two-step verification methods"),
    "mfa.reset": _l("An administrator reset someone's two-step verification"),
    "user.locked": _l("An account was locked after too many wrong attempts"),
    "user.unlocked": _l("An administrator unlocked an account"),
    "signin.succeeded": _l("Someone signed in"),
    "signin.failed": _l("A sign-in failed: a wrong password or second step, or a refusal"),
    "policy.changed": _l("The organisation's sign-in policy changed"),
}


@dataclass(frozen=True)
class Occurred:
    """An audit event as webhooks read it (``idp.audit.record``'s arguments)."""

    tenant_id: int
    action: str
    actor: str
    user_id: int | None
    client_id: str | None
    ip: str | None
    data: dict
    at: datetime


def _actor(actor: str, user: User | None) -> dict:
    """Who did it, as a kind (and an administrator's address): never the raw audit actor,
    which for some events is whatever was typed in the address field."""
    if not actor:
        return {"kind": "system"}
    if actor == "cli":
        return {"kind": "command_line"}
    if user is not None and actor == user.email:
        return {"kind": "self"}
    if actor.startswith("upstream:"):
        return {"kind": "identity_provider", "name": actor.partition(":")[2]}
    if "@" in actor and " " not in actor:
        return {"kind": "administrator", "email": actor}
    return {"kind": "service"}


def _changed(change: str, **picked):
    return lambda o, user: {"change": change, "actor": _actor(o.actor, user),
                            **{k: o.data.get(v) for k, v in picked.items()}}


def _by(**picked):
    return lambda o, user: {"actor": _actor(o.actor, user),
                            **{k: o.data.get(v) for k, v in picked.items()}}


def _created(via: str):
    return lambda o, user: {"via": via, "actor": _actor(o.actor, user),
                            "role": user.role if user else None}


def _signed_in(o: Occurred, user):
    return {"client_id": o.client_id, "amr": list(o.data.get("amr") or []),
            "acr": o.data.get("acr"), "ip": o.ip}


def _failed(reason: str):
    # No actor: for a wrong password it is what was typed as the address.
    def build(o: Occurred, user):
        found = {"reason": reason, "client_id": o.client_id, "ip": o.ip}
        if "factor" in o.data:
            found["factor"] = o.data["factor"]
        if reason == "refused":
            found["detail"] = str(o.data.get("reason") or "")[:300]
        return found
    return build


def _locked(o: Occurred, user):
    until = o.data.get("until")
    return {"until": _iso(datetime.fromtimestamp(until, timezone.utc)) if until else None,
            "cause": o.data.get("cause")}


def _policy(o: Occurred, user):
    return {"actor": _actor(o.actor, user), "changes": dict(o.data.get("changes") or {})}


# Audit action -> (event type, the fields of its ``data``). Only these actions are heard.
FROM_AUDIT = {
    "user.created": ("user.created", _created("created")),
    "user.invited": ("user.created", _created("invited")),
    "user.signed_up": ("user.created", _created("signed_up")),
    "user.provisioned": ("user.created", _created("identity_provider")),
    "user.role_changed": ("user.updated", _changed("role", role="role", previous_role="was")),
    "group.member_added": ("user.updated", _changed("group_added", group="group")),
    "group.member_removed": ("user.updated", _changed("group_removed", group="group")),
    "user.email_verified": ("user.updated", _changed("email_verified")),
    "user.password_set": ("user.updated", _changed("password")),
    "user.password_removed": ("user.updated", _changed("password_removed")),
    "mfa.enforce": ("user.updated", _changed("mfa_required")),
    "mfa.exempt": ("user.updated", _changed("mfa_exempt")),
    "mfa.default": ("user.updated", _changed("mfa_as_policy")),
    "user.deactivated": ("user.deactivated", _by()),
    "user.reactivated": ("user.reactivated", _by()),
    "user.deleted": ("user.deleted", _by()),
    "mfa.enrolled": ("mfa.enrolled", _by(factor="factor")),
    "mfa.removed": ("mfa.removed", _by(factor="factor")),
    "mfa.reset": ("mfa.reset", _by(factors_removed="removed")),
    "account.locked": ("user.locked", _locked),
    "account.unlocked": ("user.unlocked", _by()),
    "user.signed_in": ("signin.succeeded", _signed_in),
    "user.sign_in_failed": ("signin.failed", _failed("wrong_password")),
    "mfa.challenge_failed": ("signin.failed", _failed("wrong_second_factor")),
    "user.sign_in_refused": ("signin.failed", _failed("refused")),
    "policy.changed": ("policy.changed", _policy),
}


# -- who listens ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Listener:
    """An enabled endpoint as the emitter reads it, cached per worker and tenant."""

    public_id: str
    event_types: frozenset[str]  # empty: all

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


LISTENERS: Snapshots[int, tuple[Listener, ...]] = Snapshots("webhooks")


def _load(db: Session, tenant_id: int) -> tuple[Listener, ...]:
    with db.no_autoflush:  # an event recorded halfway through a change must not write it early
        rows = db.execute(select(WebhookEndpoint.public_id, WebhookEndpoint.event_types)
                          .where(WebhookEndpoint.tenant_id == tenant_id,
                                 WebhookEndpoint.enabled)
                          .order_by(WebhookEndpoint.id)).all()
    return tuple(Listener(p, frozenset(types or ())) for p, types in rows)


def listeners(db: Session, tenant_id: int) -> tuple[Listener, ...]:
    """The tenant's enabled endpoints: the worker's snapshot in an app (an empty tuple is kept
    too: a tenant without webhooks costs no query per sign-in), read afresh in the CLI."""
    if not has_app_context():
        return _load(db, tenant_id)
    return LISTENERS.get(tenant_id, lambda: _load(db, tenant_id))


# -- what is said ---------------------------------------------------------------------------

def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_message_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def new_secret() -> str:
    """A signing secret as the specification writes it: ``whsec_`` and base64."""
    return "whsec_" + b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def payload(event_type: str, at: datetime, tenant_slug: str, user: dict | None, data: dict) -> str:
    """The body POSTed: the Standard Webhooks shape, compact JSON."""
    return json.dumps({"type": event_type, "timestamp": _iso(at),
                       "data": {"tenant": tenant_slug, "user": user, **data}},
                      separators=(",", ":"), default=str)


def _user_of(db: Session, o: Occurred) -> tuple[User | None, dict | None]:
    if o.user_id is not None:
        user = db.get(User, o.user_id)  # the request has it already, mostly: no query
        if user is not None:
            return user, {"id": user.subject, "email": user.email}
    if o.action == "user.deleted":  # its row is about to go: the event names it
        return None, {"id": o.data.get("subject"), "email": o.data.get("email")}
    return None, None


def _slug(db: Session, tenant_id: int) -> str:
    """The tenant's slug: the request's snapshot of it when the event is the request's tenant's
    (no query on a sign-in), else its row."""
    here = g.get("tenant") if has_app_context() else None
    if here is not None and here.id == tenant_id:
        return here.slug
    return db.get(Tenant, tenant_id).slug


def emit(db: Session, o: Occurred) -> int:
    """Queue the event for every endpoint of the tenant that hears its type; how many."""
    found = FROM_AUDIT.get(o.action)
    if found is None:
        return 0
    event_type, build = found
    if event_type == "user.created" and o.data.get("again"):
        return 0  # an invitation sent again, a second sign-up: the account was created once
    wanted = [e for e in listeners(db, o.tenant_id) if e.wants(event_type)]
    if not wanted:
        return 0
    with db.no_autoflush:
        user, user_data = _user_of(db, o)
        if event_type == "user.locked" and user is None:
            return 0  # an address with no account behind it: nobody's account was locked
        body = payload(event_type, o.at, _slug(db, o.tenant_id), user_data, build(o, user))
    queue(db, o.tenant_id, [e.public_id for e in wanted], event_type, body)
    return len(wanted)


def queue(db: Session, tenant_id: int, endpoints: list[str], event_type: str, body: str) -> str:
    """One outbox row per endpoint, all with one ``webhook-id``; the id."""
    message_id = new_message_id()
    for public_id in endpoints:
        db.add(OutboxMessage(tenant_id=tenant_id, channel=CHANNEL, kind=event_type,
                             recipient=public_id, subject=None, body=body, state="pending",
                             message_id=message_id))
    # No flush here, for the same reason: the rows go with the caller's next flush or commit.
    db.info["idp.mail_queued"] = True  # wakes this process's sender once committed
    return message_id


# -- delivery -------------------------------------------------------------------------------

def signing_secrets(endpoint: WebhookEndpoint, box, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and those it replaced during their overlap
    (``previous_secret`` holds each, encrypted, newest first, separated by spaces: a second
    rotation inside the overlap must not drop the secret the receiver still checks with)."""
    found = [box.decrypt(endpoint.secret)]
    if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > now:
        found += [box.decrypt(sealed) for sealed in endpoint.previous_secret.split()]
    return found


def headers(message_id: str, body: str, keys: list[str], now: datetime) -> dict[str, str]:
    """The three headers of the specification; one ``v1,`` signature per secret."""
    signature = " ".join(Webhook(key).sign(message_id, now, body) for key in keys)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature, "Content-Type": "application/json",
            "User-Agent": "idp-webhooks/1"}


def post(db: Session, message: OutboxMessage, box, now: datetime | None = None, *,
         private_allowed: bool = False) -> int | None:
    """Deliver one message: the receiver's 2xx status; None when there is nobody to tell any
    more (the endpoint was deleted or turned off); raises SendError for the outbox to retry
    (``final`` for a 410 Gone, which also turns the endpoint off)."""
    endpoint = db.scalar(select(WebhookEndpoint).where(
        WebhookEndpoint.public_id == message.recipient,
        WebhookEndpoint.tenant_id == message.tenant_id))
    if endpoint is None or not endpoint.enabled:
        return None
    now = now or datetime.now(timezone.utc)
    sent = headers(message.message_id, message.body, signing_secrets(endpoint, box, now), now)
    try:
        status = outbound.post(endpoint.url, data=message.body.encode(), headers=sent,
                               private_allowed=private_allowed)
    except requests.RequestException as e:
        raise SendError(f"the endpoint {outbound.unreachable(e)}") from None
    if status == 410:
        reason = f"The endpoint answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC."
        # Only the address that said so: an administrator may have changed it meanwhile.
        db.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id,
                                                 WebhookEndpoint.url == endpoint.url)
                   .values(enabled=False, disabled_reason=reason)
                   .execution_options(synchronize_session=False))
        raise SendError("the endpoint answered 410 Gone: it is turned off", status=410,
                        final=True)
    if not 200 <= status < 300:
        raise SendError(f"the endpoint answered {status}", status=status)
    return status
