"""`idp tokens purge`: what expired a while ago is deleted (a refresh rotation writes a row per
grant, so the tokens table would otherwise grow for ever); nothing still usable is touched."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import sqlalchemy as sa

from idp import db as idp_db
from idp import directory
from idp.models import AuthorizationCode, Client, Token
from idp import hashing
from tests.support.rp import basic

NOW = dt.datetime.now(dt.timezone.utc)
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


def add_token(session, tenant, client, user, *, access_ends, refresh_ends, code=None):
    refresh = secrets.token_urlsafe(32)
    session.add(Token(
        tenant_id=tenant.id, client_pk=client.id, user_id=user.id, code_id=code,
        family=secrets.token_urlsafe(16), jti=secrets.token_urlsafe(24),
        refresh_token_hash=hashing.digest("refresh-token", refresh) if refresh_ends else None,
        scope="openid offline_access", auth_time=int(NOW.timestamp()) - 60, acr="pwd",
        amr=["pwd"], issued_at=NOW - 40 * DAY, access_expires_at=access_ends,
        refresh_expires_at=refresh_ends))
    return refresh


def test_purge_deletes_what_expired_long_ago_and_keeps_what_still_works(app, idp, world):
    with app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, world.slug)
        client = session.scalar(sa.select(Client).where(Client.client_id == world.portal.client_id))
        alice = directory.find_user(session, tenant, world.alice)
        old_code = AuthorizationCode(
            tenant_id=tenant.id, client_pk=client.id, user_id=alice.id,
            code_hash=secrets.token_hex(32), redirect_uri=world.portal.redirect_uri,
            scope="openid", auth_time=0, acr="pwd", amr=["pwd"], expires_at=NOW - 2 * DAY)
        session.add(old_code)
        session.flush()
        gone = [add_token(session, tenant, client, alice, access_ends=NOW - 3 * DAY,
                          refresh_ends=NOW - 2 * DAY),
                add_token(session, tenant, client, alice, access_ends=NOW - 2 * DAY,
                          refresh_ends=None)]
        # Its access token expired long ago, its refresh token still works: it stays, and the
        # purged code it came from is unlinked, not taken with it.
        live = add_token(session, tenant, client, alice, access_ends=NOW - 30 * DAY,
                         refresh_ends=NOW + 30 * DAY, code=old_code.id)
        recent = add_token(session, tenant, client, alice, access_ends=NOW - 2 * HOUR,
                           refresh_ends=NOW - HOUR)  # expired an hour ago: kept a day
        session.commit()

    def count():
        with app.app_context():
            return idp_db.session().scalar(sa.select(sa.func.count()).select_from(Token).where(
                Token.client_pk == client.id))

    assert count() == 4
    code, out, err = idp("tokens", "purge")
    assert code == 0, err
    deleted = json.loads(out)["deleted"]
    assert deleted["tokens"] >= 2 and deleted["authorization_codes"] >= 1
    assert count() == 2
    http = app.test_client()
    answer = http.post(f"/t/{world.slug}/token", data={
        "grant_type": "refresh_token", "refresh_token": live},
        headers=basic(world.portal.client_id, world.portal.client_secret))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    for token in gone + [recent]:
        refused = http.post(f"/t/{world.slug}/token", data={
            "grant_type": "refresh_token", "refresh_token": token},
            headers=basic(world.portal.client_id, world.portal.client_secret))
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"

    code, out, _ = idp("tokens", "purge", "--grace-hours", "0")
    assert code == 0 and count() == 2  # the rotated live token and its successor: both live
    code, _, err = idp("tokens", "purge", "--grace-hours", "-1")
    assert code != 0 and err.startswith("idp: ") and "grace" in err


def test_purge_deletes_expired_mailed_links_and_old_mail_but_never_mail_still_to_send(app, idp, world):
    from idp.models import AccountLink, OutboxMessage

    with app.app_context():
        session = idp_db.session()
        tenant = directory.get_tenant(session, world.slug)
        bob = directory.find_user(session, tenant, world.bob)
        links = [AccountLink(tenant_id=tenant.id, user_id=bob.id, purpose="reset",
                             token_hash=secrets.token_hex(32), expires_at=ends)
                 for ends in (NOW - 2 * DAY, NOW + HOUR)]
        mails = [OutboxMessage(tenant_id=tenant.id, channel="mail", kind="reset",
                               recipient=f"old-{state}@example.com", subject="s", body="b",
                               state=state, created_at=NOW - 40 * DAY)
                 for state in ("sent", "dropped", "pending")]
        recent = OutboxMessage(tenant_id=tenant.id, channel="mail", kind="reset",
                               recipient="recent@example.com", subject="s", body="b",
                               state="sent", created_at=NOW - 2 * DAY)
        session.add_all([*links, *mails, recent])
        session.commit()
        ids = [r.id for r in links], [m.id for m in mails] + [recent.id]

    code, out, err = idp("tokens", "purge")
    assert code == 0, err
    with app.app_context():
        session = idp_db.session()
        kept_links = session.scalars(sa.select(AccountLink.id).where(AccountLink.id.in_(ids[0]))).all()
        kept_mail = session.scalars(sa.select(OutboxMessage.recipient).where(
            OutboxMessage.id.in_(ids[1])).order_by(OutboxMessage.id)).all()
    assert kept_links == [ids[0][1]]  # the expired link is gone, the live one stays
    # Mail that left a month ago goes; mail still to be sent never does; recent mail stays.
    assert kept_mail == ["old-pending@example.com", "recent@example.com"]
