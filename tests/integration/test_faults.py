"""Faults in the middle of things: Redis restarted during a sign-in, a server killed while it
rotates refresh tokens. The user starts again at worst; nothing is left half-written."""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import replace

import requests
import sqlalchemy as sa

from idp import create_app
from idp import db as idp_db
from idp import directory
from idp.models import Client, Token
from idp import hashing
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.live_server import serve
from tests.support.redis_server import PrivateRedis
from tests.support.rp import params_for


def test_redis_restarted_during_a_sign_in_means_starting_again(settings, world):
    redis = PrivateRedis()
    redis.start()
    app = create_app(replace(settings, redis_url=redis.url), TESTING=True)
    try:
        browser = Browser(app.test_client())
        # Before the password nothing is stored (the pending sign-in is sealed in the
        # browser): a restart then loses nothing, and the sign-in goes on.
        login = browser.authorize(f"/t/{world.slug}", params_for(world.portal, prompt="consent"))
        assert login.status == 200
        redis.stop()
        redis.start()
        consent = browser.sign_in(login, world.alice, world.password, world.slug,
                                  world.portal.redirect_uri)
        assert consent.status == 200 and "Allow" in consent.text
        redis.stop()
        redis.start()  # a restart: Redis keeps nothing on disk, the login transaction is gone
        form = {"csrf_token": field(CSRF, consent.text), "tx": field(TX, consent.text),
                "allow": "1"}
        gone = browser.post(f"/t/{world.slug}/consent", form)
        # A clear page, no code: the sign-in is simply to be done again.
        assert gone.status == 400 and "expired" in gone.text
        assert gone.location is None
        again = browser.post(f"/t/{world.slug}/consent", form)  # and again: no loop, no 500
        assert again.status == 400
        login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
        done = browser.sign_in(login, world.alice, world.password, world.slug,
                               world.portal.redirect_uri)
        assert done.status == 302 and "code=" in done.location
    finally:
        if redis.process.poll() is None:
            redis.stop()
        app.extensions["idp.engine"].dispose()


def mint_refresh_tokens(app, world, n: int) -> list[str]:
    """``n`` refresh tokens of the portal for Alice, each its own family (what a code exchange
    with offline_access leaves)."""
    now = dt.datetime.now(dt.timezone.utc)
    tokens = [secrets.token_urlsafe(32) for _ in range(n)]
    with app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, world.slug)
        client = session.scalar(sa.select(Client).where(Client.client_id == world.portal.client_id))
        alice = directory.find_user(session, tenant, world.alice)
        for token in tokens:
            session.add(Token(
                tenant_id=tenant.id, client_pk=client.id, user_id=alice.id,
                family=secrets.token_urlsafe(16), jti=secrets.token_urlsafe(24),
                refresh_token_hash=hashing.digest("refresh-token", token),
                scope="openid offline_access", auth_time=int(now.timestamp()) - 60, acr="pwd",
                amr=["pwd"], issued_at=now, access_expires_at=now + dt.timedelta(hours=1),
                refresh_expires_at=now + dt.timedelta(days=1)))
        session.commit()
    return tokens


def test_a_server_killed_while_rotating_refresh_tokens_leaves_no_half_rotation(
        app, settings, world, tmp_path):
    tokens = mint_refresh_tokens(app, world, 1500)
    server = serve(settings, tmp_path / "server.log")
    url = f"{server.url}/t/{world.slug}/token"
    auth = (world.portal.client_id, world.portal.client_secret)
    pending = list(tokens)
    lock = threading.Lock()
    answered = threading.Semaphore(0)

    def refresh_until_killed():
        http = requests.Session()
        while True:
            with lock:
                if not pending:
                    return
                token = pending.pop()
            try:
                http.post(url, data={"grant_type": "refresh_token", "refresh_token": token},
                          auth=auth, timeout=10)
            except requests.RequestException:
                return  # the server is gone
            answered.release()

    threads = [threading.Thread(target=refresh_until_killed) for _ in range(8)]
    for t in threads:
        t.start()
    # Killed in full flow: once rotations are being answered (however slow the machine is),
    # while eight more are in flight.
    for _ in range(20):
        assert answered.acquire(timeout=30), "the server answered no refresh"
    server.process.kill()  # SIGKILL: no cleanup, requests cut wherever they were
    server.process.wait(10)
    for t in threads:
        t.join(15)
    server.log.close()

    with app.app_context():
        session = idp_db.session()
        mine = sa.select(Token.family).where(Token.refresh_token_hash.in_(
            [hashing.digest("refresh-token", t) for t in tokens]))
        rows = session.execute(sa.select(
            Token.family, Token.refresh_token_hash, Token.rotated_at, Token.revoked_at,
        ).where(Token.family.in_(mine))).all()
    families: dict[str, list] = {}
    for row in rows:
        families.setdefault(row.family, []).append(row)
    rotated = [f for f in families.values() if any(r.rotated_at for r in f)]
    assert rotated, "the kill came before any rotation: nothing was tested"
    assert len(rotated) < len(tokens), "the kill came after every rotation: nothing was tested"
    for family in families.values():
        # Each family is whole: either untouched (one live token), or rotated with the
        # successor written in the same commit. Never a claimed token without its successor.
        claimed = [r for r in family if r.rotated_at]
        live = [r for r in family if not r.rotated_at and not r.revoked_at]
        assert len(family) == len(claimed) + 1 and len(live) == 1, [
            (r.rotated_at, r.revoked_at) for r in family]

    # A new server: every family still has exactly one refresh token that works.
    server = serve(settings, tmp_path / "again.log")
    try:
        untouched = [t for t in tokens
                     if not any(r.rotated_at for r in families[_family_of(rows, t)])]
        sample = untouched[:5]
        for token in sample:
            r = requests.post(f"{server.url}/t/{world.slug}/token", timeout=10, auth=auth,
                              data={"grant_type": "refresh_token", "refresh_token": token})
            assert r.status_code == 200, r.text
    finally:
        server.stop()


def _family_of(rows, token: str) -> str:
    digest = hashing.digest("refresh-token", token)
    return next(r.family for r in rows if r.refresh_token_hash == digest)
