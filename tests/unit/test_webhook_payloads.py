"""What a webhook says is picked field by field for each event type: whatever an audit event
holds — a password, a code, a seed, a token, a hash, or what someone typed as their address —
never reaches a payload. And the event types the console offers are exactly those sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from idp.notify import webhooks

SECRET = "s3cr3t-value-that-must-never-leave"
EVERYTHING = {
    # What secrets would be called, were a caller ever to put one in an audit event.
    "password": SECRET, "code": SECRET, "secret": SECRET, "token": SECRET, "hash": SECRET,
    "seed": SECRET, "otp": SECRET, "answer": SECRET, "link": SECRET, "url": SECRET,
    # What the builders do read.
    "factor": "totp", "role": "admin", "was": "member", "group": "Support", "removed": 2,
    "until": 1_800_000_000, "cause": "password", "amr": ["pwd", "otp"], "acr": "mfa",
    "reason": "account deactivated", "changes": {"mode": "required"},
    "subject": "sub-1", "email": "gone@example.com",
}


@dataclass
class FakeUser:
    subject: str = "sub-1"
    email: str = "alice@example.com"
    role: str = "member"


@dataclass
class FakeTenant:
    slug: str = "acme"


def said(action: str, actor: str, user=FakeUser()) -> dict:
    event_type, build = webhooks.FROM_AUDIT[action]
    o = webhooks.Occurred(1, action, actor, 7, "portal", "192.0.2.1", dict(EVERYTHING),
                          datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc))
    body = webhooks.payload(event_type, o.at, FakeTenant().slug, {"id": user.subject, "email": user.email},
                            build(o, user))
    return json.loads(body)


@pytest.mark.parametrize("action", sorted(webhooks.FROM_AUDIT))
def test_no_payload_repeats_a_secret_an_audit_event_might_hold(action):
    message = said(action, "admin@example.com")
    assert SECRET not in json.dumps(message)
    assert set(message) == {"type", "timestamp", "data"}
    assert message["timestamp"] == "2026-12-03T09:00:00.000Z"
    assert message["data"]["tenant"] == "acme"


@pytest.mark.parametrize("action", ["user.sign_in_failed", "mfa.challenge_failed",
                                    "user.sign_in_refused", "account.locked"])
def test_what_was_typed_as_the_address_is_never_repeated(action):
    typed = "my-password-typed-in-the-wrong-box"
    assert typed not in json.dumps(said(action, typed))


def test_the_actor_is_a_kind_and_only_an_administrator_is_named():
    assert said("user.deactivated", "admin@example.com")["data"]["actor"] == {
        "kind": "administrator", "email": "admin@example.com"}
    assert said("user.deactivated", "cli")["data"]["actor"] == {"kind": "command_line"}
    assert said("mfa.enrolled", "alice@example.com")["data"]["actor"] == {"kind": "self"}
    assert said("user.deactivated", "")["data"]["actor"] == {"kind": "system"}
    assert said("user.provisioned", "upstream:corp")["data"]["actor"] == {
        "kind": "identity_provider", "name": "corp"}


def test_the_catalogue_the_console_offers_is_exactly_what_is_sent():
    sent = {event_type for event_type, _ in webhooks.FROM_AUDIT.values()}
    assert sent == set(webhooks.EVENTS)


def test_a_signature_per_secret_and_each_verifies_alone():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    assert old.startswith("whsec_") and old != new
    now = datetime.now(timezone.utc)
    body = '{"type":"webhook.test","timestamp":"x","data":{}}'
    headers = webhooks.headers("msg_1", body, [new, old], now)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == json.loads(body)
