"""An upgrade: a database populated at the first migration, then `idp init` with today's code.

What a tenant had before must still work after: its users sign in with their passwords and
the second factors they enrolled, its portals redeem their refresh tokens with their secrets,
its groups and audit trail are there.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from dataclasses import replace

import pyotp
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from idp import create_app, db as idp_db
from idp.password import Passwords
from idp.mfa.secrets import SecretBox
from idp import hashing
from tests.support.account import answer_challenge
from tests.support.databases import scratch_database
from tests.support.journey import Browser
from tests.support.rp import params_for
from tests.support.world import PASSWORD

FIRST, FACTORS = "0001", "0002"  # the first schema; the one that added second factors
REDIRECT_URI = "https://old-portal.test/cb"
SPENT_NONCE = "n-" + "spent-before-the-upgrade" * 100  # long, as a nonce may be


@pytest.fixture
def old_database(backend, tmp_path):
    """A database at the first migration, on the session's backend."""
    pg = os.environ.get("IDP_TEST_DATABASE_URL")
    if pg:
        url, drop = scratch_database(pg, "idp_upgrade")
    else:
        url, drop = f"sqlite:///{tmp_path / 'old.sqlite3'}", lambda: None
    idp_db.upgrade(url, FIRST)
    yield url
    drop()


def populate_at_first_migration(url: str, settings) -> dict:
    """Rows as the code of 0001 wrote them, through the tables of that schema (reflected)."""
    engine = idp_db.make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    now = dt.datetime.now(dt.timezone.utc)
    secret, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    password_hash = Passwords(settings.argon2_memory_kib, settings.argon2_time_cost,
                              settings.argon2_parallelism).hash(PASSWORD)
    with engine.begin() as c:
        tenant = c.execute(t["tenants"].insert().values(
            slug="legacy", name="Legacy Org", created_at=now)).inserted_primary_key[0]
        user = c.execute(t["users"].insert().values(
            tenant_id=tenant, subject=secrets.token_hex(16), email="old@legacy.test",
            name="Old Timer", role="admin", phone=None, password_hash=password_hash,
            created_at=now)).inserted_primary_key[0]
        group = c.execute(t["groups"].insert().values(
            tenant_id=tenant, name="finance")).inserted_primary_key[0]
        c.execute(t["user_groups"].insert().values(user_id=user, group_id=group))
        client_id = secrets.token_urlsafe(18)
        client = c.execute(t["clients"].insert().values(
            tenant_id=tenant, client_id=client_id, name="Old portal",
            secret_hash=hashing.digest("client-secret", secret), redirect_uris=[REDIRECT_URI],
            post_logout_redirect_uris=[], grant_types=["authorization_code", "refresh_token"],
            scope="openid profile email offline_access", id_token_signed_response_alg="RS256",
            created_at=now)).inserted_primary_key[0]
        c.execute(t["tokens"].insert().values(
            tenant_id=tenant, client_pk=client, user_id=user, code_id=None,
            family=secrets.token_urlsafe(16), jti=secrets.token_urlsafe(24),
            refresh_token_hash=hashing.digest("refresh-token", refresh),
            scope="openid offline_access", auth_time=int(now.timestamp()) - 60, acr="pwd",
            amr=["pwd"], sid=None, issued_at=now,
            access_expires_at=now + dt.timedelta(hours=1),
            refresh_expires_at=now + dt.timedelta(days=30)))
        # A code a portal redeemed before the upgrade: its nonce stays spent.
        c.execute(t["authorization_codes"].insert().values(
            tenant_id=tenant, client_pk=client, user_id=user,
            code_hash=hashing.digest("code", secrets.token_urlsafe(32)),
            redirect_uri=REDIRECT_URI, scope="openid", nonce=SPENT_NONCE,
            code_challenge=None, code_challenge_method=None,
            auth_time=int(now.timestamp()) - 60, acr="pwd", amr=["pwd"], sid=None,
            created_at=now - dt.timedelta(minutes=1), expires_at=now + dt.timedelta(minutes=9),
            used_at=now))
        c.execute(t["audit_events"].insert().values(
            tenant_id=tenant, action="user.created", actor="setup", user_id=user,
            client_id=None, ip=None, data={"note": "before the upgrade"}, created_at=now))
    engine.dispose()
    return {"client_id": client_id, "secret": secret, "refresh": refresh, "user_id": user,
            "tenant_id": tenant}


def enroll_totp_at_second_migration(url: str, settings, old: dict) -> str:
    """The TOTP app the user set up once second factors existed (what Totp.enroll_finish
    stores: the seed encrypted with the SecretBox, a handle for its last-step key)."""
    idp_db.upgrade(url, FACTORS)
    engine = idp_db.make_engine(url)
    meta = sa.MetaData()
    meta.reflect(engine, only=["authenticators"])
    seed = pyotp.random_base32(32)
    with engine.begin() as c:
        c.execute(meta.tables["authenticators"].insert().values(
            tenant_id=old["tenant_id"], user_id=old["user_id"], type="totp",
            name="Authenticator app", lookup=None, counter=0, last_used_at=None,
            data={"secret": SecretBox(settings.secret_key).encrypt(seed),
                  "handle": secrets.token_urlsafe(12)},
            created_at=dt.datetime.now(dt.timezone.utc)))
    engine.dispose()
    return seed


def test_idp_init_upgrades_a_first_migration_database_without_losing_anything(
        old_database, settings):
    old = populate_at_first_migration(old_database, settings)
    seed = enroll_totp_at_second_migration(old_database, settings, old)
    env = {**os.environ, "IDP_DATABASE_URL": old_database, "IDP_KEYS_DIR": str(settings.keys_dir),
           "IDP_BASE_URL": settings.base_url, "IDP_SECRET_KEY": settings.secret_key}
    for _ in range(2):  # and a second time: nothing left to do, nothing changes
        done = subprocess.run([sys.executable, "-m", "idp", "init"], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    engine = idp_db.make_engine(old_database)
    with engine.connect() as c:
        head = ScriptDirectory.from_config(idp_db.alembic_config(old_database)).get_current_head()
        assert c.scalar(sa.text("SELECT version_num FROM alembic_version")) == head
        # SQLite rebuilds a changed table; nothing that pointed at it may go with the old one.
        for table in ("users", "user_groups", "clients", "tokens", "authenticators"):
            assert c.scalar(sa.text(f"SELECT count(*) FROM {table}")) == 1, table
        audit = c.execute(sa.text("SELECT action, user_id, data FROM audit_events")).one()
        data = audit.data if isinstance(audit.data, dict) else json.loads(audit.data)
        assert audit.action == "user.created" and data == {"note": "before the upgrade"}
        assert audit.user_id is not None
        if c.dialect.name == "postgresql":
            # The planner has statistics at once: a table it never analyzed looks empty to it
            # and token lookups can be planned as scans of the tenant's rows.
            assert c.scalar(sa.text(
                "SELECT reltuples FROM pg_class WHERE relname = 'tokens'")) == 1
    engine.dispose()

    app = create_app(replace(settings, database_url=old_database), TESTING=True)
    try:
        http = app.test_client()
        # The portal's refresh token, issued before the upgrade, still redeems with its secret.
        answer = http.post("/t/legacy/token", data={
            "grant_type": "refresh_token", "refresh_token": old["refresh"]},
            auth=(old["client_id"], old["secret"]))
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json()["refresh_token"] != old["refresh"]
        # The user signs in with the password set before the upgrade and is asked for the
        # TOTP app enrolled before it (the tenant, which had no MFA policy row then, gets the
        # default one: whoever enrolled a factor is asked for it).
        browser = Browser(app.test_client())
        creds = type("Creds", (), {"client_id": old["client_id"], "redirect_uri": REDIRECT_URI})
        login = browser.authorize("/t/legacy", params_for(creds))
        challenge = browser.sign_in(login, "old@legacy.test", PASSWORD, "legacy", REDIRECT_URI)
        assert challenge.status == 200 and 'name="code"' in challenge.text
        world = type("World", (), {"slug": "legacy"})
        done = answer_challenge(browser, world, challenge, "totp", code=pyotp.TOTP(seed).now())
        assert done.status == 302 and done.location.startswith(REDIRECT_URI)
        assert "code=" in done.location
        # A nonce bound to a code before the upgrade is still a replay after it.
        again = browser.get("/t/legacy/authorize", params_for(creds, nonce=SPENT_NONCE))
        assert again.status == 302 and "error=invalid_request" in again.location
        fresh = browser.get("/t/legacy/authorize", params_for(creds))
        assert fresh.status == 302 and "code=" in fresh.location
    finally:
        app.extensions["idp.engine"].dispose()
