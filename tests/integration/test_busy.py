"""A worker checks a few passwords at once and lets a few more sign-ins wait; beyond that a
sign-in is told to retry, before any attempt counts against the account, so a burst of
sign-ins cannot take every thread the token endpoint needs."""

from __future__ import annotations

from idp import password
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.rp import params_for


def test_a_sign_in_beyond_the_queue_is_asked_to_retry_and_nothing_counts(client, world, app):
    browser = Browser(client)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "email": world.alice, "password": "wrong password, never checked"}
    taken = 0
    while password.admissions.acquire(blocking=False):
        taken += 1
    try:
        busy = browser.post(f"/t/{world.slug}/login", form)
    finally:
        for _ in range(taken):
            password.admissions.release()
    assert busy.status == 503 and "Try again in a few seconds" in busy.text
    assert client.get(f"/t/{world.slug}/jwks").status_code == 200  # other requests go on
    with app.app_context():
        from sqlalchemy import select

        from idp import db, directory
        from idp.models import AuditEvent

        tenant = directory.get_tenant(db.session(), world.slug)
        failed = db.session().scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == "user.sign_in_failed")).all()
    assert failed == []  # the refused sign-in was not a failed attempt
    # The place is given back: the same form now gets its answer (a wrong password).
    again = browser.post(f"/t/{world.slug}/login", form)
    assert "Incorrect email or password" in again.text
    assert password.admissions.acquire(blocking=False)
    password.admissions.release()


def test_password_hashes_run_at_a_lower_cpu_priority_than_requests():
    """The scheduler serves the token endpoint before a queue of argon2id computations."""
    import os
    import threading

    mine = os.getpriority(os.PRIO_PROCESS, 0)
    theirs = password.hashing.run(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert theirs == min(19, mine + password.HASH_NICE)
