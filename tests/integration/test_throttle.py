"""Throttling per client address across accounts, and addresses only from trusted proxies."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from idp import create_app
from tests.support.journey import CSRF, TX, field


@pytest.fixture
def throttled(settings):
    """An app with the production default of 30, and a client at an address of its own."""
    app = create_app(replace(settings, ip_failures_per_10_minutes=30), TESTING=True)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    yield app, client
    app.extensions["idp.engine"].dispose()


def wrong_password(client, world, email, headers=None):
    page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    return client.post(f"/t/{world.slug}/login", headers=headers or {}, data={
        "csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email, "password": "wrong password"})


def test_spraying_many_accounts_from_one_address_is_throttled(throttled, world):
    _, client = throttled
    # One wrong password for each of 30 addresses: no account reaches its own limit...
    statuses = [wrong_password(client, world, f"user{i}@example.com").status_code for i in range(30)]
    assert set(statuses) == {200}
    # ...but the address has: the next attempt, for any account, is a 429 page.
    r = wrong_password(client, world, world.alice)
    assert r.status_code == 429 and "too many failed sign-ins from your network" in r.get_data(as_text=True)


def test_a_forged_forwarded_for_changes_no_count(throttled, world):
    _, client = throttled
    for i in range(30):
        wrong_password(client, world, f"user{i}@example.com", {"X-Forwarded-For": f"198.51.100.{i}"})
    r = wrong_password(client, world, world.alice, {"X-Forwarded-For": "203.0.113.77"})
    assert r.status_code == 429


def test_behind_a_trusted_proxy_the_forwarded_address_counts(settings, world):
    app = create_app(replace(settings, trusted_proxies=1, ip_failures_per_10_minutes=30), TESTING=True)
    client = app.test_client()
    sprayer = f"2001:db8::{secrets.token_hex(2)}:1"
    for i in range(30):
        wrong_password(client, world, f"user{i}@example.com", {"X-Forwarded-For": sprayer})
    assert wrong_password(client, world, world.alice, {"X-Forwarded-For": sprayer}).status_code == 429
    # Another client behind the same proxy is someone else.
    r = wrong_password(client, world, world.alice, {"X-Forwarded-For": f"2001:db8::{secrets.token_hex(2)}:2"})
    assert r.status_code == 200
    app.extensions["idp.engine"].dispose()
