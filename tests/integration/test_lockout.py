"""Locks: they end by themselves, admins end them early, and parallel guesses cannot beat
them — against a live gunicorn with two workers when Redis is real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select

from idp import admin, db, directory
from idp.guard import account_key
from idp.models import AuditEvent, OutboxMessage
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.mailbox import mailing_app, smtp_mailbox
from tests.support.ports import free_port
from tests.support.rp import get_code, params_for, redeem, refresh
from tests.support.signin import fail_until_locked, set_policy


def sign_in(client, world):
    page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    return client.post(f"/t/{world.slug}/login", data={"csrf_token": field(CSRF, page), "tx": field(TX, page),
                                                      "email": world.alice, "password": world.password})


def guard_key(app, world):
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        user = directory.find_user(session, tenant, world.alice)
        return account_key(tenant.id, user.id, user.email)


def test_the_lock_page_says_until_when_whatever_was_typed(app, client, world):
    locked = fail_until_locked(client, world, world.alice).get_data(as_text=True)
    assert "locked until" in locked and "UTC" in locked
    right = sign_in(client, world)
    assert right.status_code == 429 and right.get_data(as_text=True).count("locked until") == 1


def test_a_lock_ends_by_itself(app, client, world):
    set_policy(app, world, lock_minutes=1)
    fail_until_locked(client, world, world.alice)
    key = guard_key(app, world)
    assert 0 < app.extensions["idp.store"].ttl(key) <= 60  # the tenant's configured duration
    app.extensions["idp.store"].expire(key, 1)  # let the minute pass
    time.sleep(1.2)
    assert sign_in(client, world).status_code == 302


def test_an_admin_unlocks_and_it_is_audited(app, client, world):
    fail_until_locked(client, world, world.alice)
    with app.app_context():
        session = db.session()
        admin.unlock(session, app.extensions["idp.guard"], directory.get_tenant(session, world.slug),
                     world.alice, "admin@example.com")
        session.commit()
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("account.%"))).all()
    assert sign_in(client, world).status_code == 302
    assert "account.locked" in actions and "account.unlocked" in actions


def test_a_lock_keeps_live_sessions_and_refresh_tokens(app, client, world):
    """A lock stops guessing; it does not sign out the real user (README: Lockout)."""
    code, verifier = get_code(client, world, world.portal)
    tokens = redeem(client, world, world.portal, code, verifier).get_json()
    attacker = app.test_client()
    fail_until_locked(attacker, world, world.alice)
    assert refresh(client, world, world.portal, tokens["refresh_token"]).status_code == 200

    silent = Browser(client).get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    assert "code" in query(silent.location)


def test_parallel_wrong_guesses_never_test_more_than_the_limit(app, settings, world):
    """20 parallel wrong passwords at a live gunicorn: at most 5 are checked, none gets in."""
    set_policy(app, world, captcha_after=100, lock_after=5)
    port = free_port()
    workers = "2" if settings.redis_url else "1"  # the embedded store lives in one process
    env = {**os.environ, "IDP_BASE_URL": f"http://127.0.0.1:{port}", "IDP_DATABASE_URL": settings.database_url,
           "IDP_KEYS_DIR": str(settings.keys_dir), "IDP_SECRET_KEY": settings.secret_key,
           "IDP_IP_FAILURES_PER_10_MINUTES": str(settings.ip_failures_per_10_minutes)}
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", workers, "--threads", "10",
                               "-b", f"127.0.0.1:{port}", "wsgi:app"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                requests.get(base + "/", timeout=1)
                break
            except requests.RequestException:
                time.sleep(0.1)
        browsers = []
        for _ in range(20):  # each with its own login page, ready to post
            http = requests.Session()
            page = http.get(f"{base}/t/{world.slug}/login").text
            browsers.append((http, {"csrf_token": field(CSRF, page), "tx": field(TX, page),
                                    "email": world.alice, "password": "a wrong guess"}))

        def guess(browser):
            http, form = browser
            return http.post(f"{base}/t/{world.slug}/login", data=form, allow_redirects=False).status_code

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(guess, browsers))
        # Locked now, whatever is typed: the right password too.
        http = requests.Session()
        page = http.get(f"{base}/t/{world.slug}/login").text
        right = http.post(f"{base}/t/{world.slug}/login", allow_redirects=False, data={
            "csrf_token": field(CSRF, page), "tx": field(TX, page), "email": world.alice,
            "password": world.password})
    finally:
        server.terminate()
        server.wait(10)
    assert 302 not in statuses
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        checked = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == "user.sign_in_failed"))
    assert 1 <= checked <= 5, statuses
    # The rest were refused: locked (429), or asked to retry before anything was checked (503,
    # a worker's queue of password checks was full: idp.password).
    assert set(statuses) <= {200, 429, 503}, statuses
    assert statuses.count(429) + statuses.count(503) >= 15
    assert right.status_code == 429 and "locked" in right.text


def test_the_lockout_mail_reaches_a_real_smtp_server_once(app, settings, world):
    with smtp_mailbox() as box:
        set_policy(app, world, lock_email_admins=True)
        with app.app_context():
            session = db.session()
            tenant = directory.get_tenant(session, world.slug)
            for email, role in (("boss@example.com", "admin"), ("helpdesk@example.com", "mfa-admin"),
                                ("former@example.com", "admin")):
                directory.create_user(session, app.extensions["idp.passwords"], tenant, email,
                                      "a long admin password", role=role)
            # Whoever can unlock the account is told: not an administrator who left.
            admin.deactivate(session, None, tenant, "former@example.com", "test")
            session.commit()
        with mailing_app(settings, box.url) as mailing:
            client = mailing.test_client()
            fail_until_locked(client, world, world.alice)
            # Sent after the request, by this process's sender: the user, then every admin.
            [mail] = box.wait_for(world.alice, world)
            box.wait_for(world.admin, world)
            box.wait_for("boss@example.com", world)
            box.wait_for("helpdesk@example.com", world)
            sign_in(client, world)  # a further attempt while locked sends nothing more
            fail_until_locked(client, world, "nobody@example.com")  # no mailbox behind it: no mail
            with mailing.app_context():  # what was written, and how it went
                tenant = directory.get_tenant(db.session(), world.slug)
                written = db.session().execute(
                    select(OutboxMessage.recipient, OutboxMessage.state)
                    .where(OutboxMessage.kind == "lockout", OutboxMessage.tenant_id == tenant.id)).all()
    # Whoever can unlock the account is told: not an administrator who left.
    assert sorted(written) == sorted((to, "sent") for to in (world.alice, world.admin, "boss@example.com",
                                                            "helpdesk@example.com"))
    body = mail.text
    assert "locked until" in body and "wrong!!!!" not in body and world.password not in body
    assert "ask your administrator to unlock" in body
    assert "locked until" in mail.html and world.password not in mail.html
