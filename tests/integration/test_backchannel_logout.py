"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): whatever ends a session tells
each client of that session that registered a URI, by a signed logout token POSTed through the
durable outbox. A receiver in the test checks every token with the issuer's JWKS (joserfc)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from idp import admin, db, directory
from idp.models import OutboxMessage
from idp.notify import backchannel, outbox
from tests.support.backchannel import Receiver, validated
from tests.support.browsers import sign_out_others, signed_in_browser, CHROME_ON_LINUX
from tests.support.console import admin_browser, console_action
from tests.support.journey import CSRF, Browser, field, pkce_pair, query
from tests.support.lifecycle import portal_sign_in
from tests.support.mailed_links import set_new_password
from tests.support.outbox_rows import outbox_rows
from tests.support.rp import jwt_claims, params_for, redeem
from tests.support.world import make_world


def register(app, world, uri: str | None, creds=None) -> None:
    """The portal (or ``creds``' client) registers ``uri`` as its back-channel logout URI."""
    with app.app_context():
        session = db.session()
        admin.update_client(session, directory.get_tenant(session, world.slug),
                            (creds or world.portal).client_id, "test",
                            backchannel_logout_uri=uri)
        session.commit()


def deliver(app, now: datetime | None = None) -> outbox.Delivered:
    """What the background sender does, once (``now``: the clock it reads)."""
    return outbox.deliver(app.extensions["idp.engine"], app.config["IDP"],
                          keyring=app.extensions["idp.keyrings"], now=now)


def notices(app, world) -> list[OutboxMessage]:
    return outbox_rows(app, world, backchannel.CHANNEL)


def checked(app, world, receiver: Receiver, creds=None) -> list[dict]:
    """The claims of every token the receiver got, each validated for ``creds``' client."""
    jwks = app.test_client().get(f"/t/{world.slug}/jwks").get_json()
    found = []
    for got in receiver.received:
        assert got.content_type.startswith("application/x-www-form-urlencoded")
        header, claims = validated(got.token, jwks, world.issuer, (creds or world.portal).client_id)
        assert header["typ"] == "logout+jwt"
        assert claims["exp"] - claims["iat"] <= backchannel.TOKEN_LIFETIME
        found.append(claims)
    return found


def id_token(signed) -> dict:
    return jwt_claims(signed.tokens["id_token"])


def sign_out(browser: Browser, world):
    page = browser.get(f"/t/{world.slug}/")
    return browser.post(f"/t/{world.slug}/signout", {"csrf_token": field(CSRF, page.text)})


# -- what ends a session --------------------------------------------------------------------


def test_an_applications_logout_tells_the_clients_of_that_session_with_their_sid(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        # The same browser signs in to the SPA too: it has no URI, so it hears nothing.
        verifier, challenge = pkce_pair()
        page = alice.browser.authorize(f"/t/{world.slug}", params_for(world.spa, code_challenge=challenge))
        assert redeem(alice.browser.http, world, world.spa, query(page.location)["code"], verifier,
                      auth="none").status_code == 200
        r = alice.browser.get(f"/t/{world.slug}/logout",
                              {"id_token_hint": alice.tokens["id_token"]})
        assert r.status == 200 and not receiver.received  # never inside the user's request
        assert deliver(app).sent == 1
        (claims,) = checked(app, world, receiver)
        assert claims["sid"] == id_token(alice)["sid"] and claims["sub"] == id_token(alice)["sub"]
        assert [n.state for n in notices(app, world)] == ["sent"]


def test_signing_out_tells_the_portal(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        other = portal_sign_in(app, world)  # another browser of hers, still signed in after
        assert sign_out(alice.browser, world).status == 200
        deliver(app)
        (claims,) = checked(app, world, receiver)
        assert claims["sid"] == id_token(alice)["sid"] != id_token(other)["sid"]


def test_the_account_page_signing_out_other_browsers_tells_the_portal(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        laptop = portal_sign_in(app, world)
        phone = signed_in_browser(app, world, world.alice, CHROME_ON_LINUX)
        assert sign_out_others(phone, world).status == 302
        deliver(app)
        (claims,) = checked(app, world, receiver)
        assert claims["sid"] == id_token(laptop)["sid"]


def _sign_in_again(app, world, alice, email: str) -> dict:
    """In alice's browser, the portal asks for a fresh sign-in (``prompt=login``) and ``email``
    signs in; the ID token's claims the portal gets."""
    verifier, challenge = pkce_pair()
    page = alice.browser.authorize(f"/t/{world.slug}", params_for(
        world.portal, prompt="login", scope="openid email", code_challenge=challenge))
    done = alice.browser.sign_in(page, email, world.password, world.slug, world.portal.redirect_uri)
    r = redeem(alice.browser.http, world, world.portal, query(done.location)["code"], verifier)
    assert r.status_code == 200, r.get_data(as_text=True)
    return jwt_claims(r.get_json()["id_token"])


def test_someone_else_signing_in_in_the_same_browser_ends_the_first_session_for_the_portal(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        bob = _sign_in_again(app, world, alice, world.bob)
        assert bob["sid"] != id_token(alice)["sid"]
        deliver(app)
        (claims,) = checked(app, world, receiver)  # alice's session ended, bob's goes on
        assert claims["sid"] == id_token(alice)["sid"] and claims["sub"] == id_token(alice)["sub"]


def test_the_same_person_signing_in_again_tells_nobody_until_the_session_ends(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        again = _sign_in_again(app, world, alice, world.alice)
        assert not notices(app, world)  # the session goes on, under a new sid
        assert sign_out(alice.browser, world).status == 200
        deliver(app)
        told = sorted(c["sid"] for c in checked(app, world, receiver))
        assert told == sorted([id_token(alice)["sid"], again["sid"]])  # both sids it saw


@pytest.mark.parametrize("action", ["signout", "deactivate"])
def test_an_administrator_signing_out_or_deactivating_tells_every_session(app, world, action):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        first, second = portal_sign_in(app, world), portal_sign_in(app, world)
        bobs = portal_sign_in(app, world, world.bob)
        assert console_action(admin_browser(app, world), world, world.alice, action).status == 302
        deliver(app)
        sids = sorted(c["sid"] for c in checked(app, world, receiver))
        assert sids == sorted([id_token(first)["sid"], id_token(second)["sid"]])
        assert id_token(bobs)["sid"] not in sids
        assert len({c["jti"] for c in checked(app, world, receiver)}) == 2


def test_a_password_reset_tells_the_portal(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        browser = Browser(app.test_client())
        page = browser.get(f"/t/{world.slug}/login/forgot")
        browser.post(f"/t/{world.slug}/login/forgot",
                     {"csrf_token": field(CSRF, page.text), "tx": "", "email": world.alice})
        with app.app_context():
            mail = db.session().scalars(select(OutboxMessage).where(
                OutboxMessage.recipient == world.alice, OutboxMessage.kind == "reset")
                .order_by(OutboxMessage.id.desc())).first()
            path = "/t/" + mail.body.split("/t/", 1)[1].split()[0]
        assert set_new_password(browser, path, "a brand new and long passphrase").status in (200, 302)
        deliver(app)
        (claims,) = checked(app, world, receiver)
        assert claims["sid"] == id_token(alice)["sid"]


def test_a_server_without_smtp_sends_the_notice_from_its_background_sender(settings, world):
    from idp import create_app

    server = create_app(replace(settings, mail_sender=True, smtp_url=None), TESTING=True)
    try:
        with Receiver() as receiver:
            register(server, world, receiver.url)
            alice = portal_sign_in(server, world)
            assert sign_out(alice.browser, world).status == 200  # its commit wakes the sender
            assert receiver.arrived.wait(20), "the background sender never posted"
            (claims,) = checked(server, world, receiver)
            assert claims["sid"] == id_token(alice)["sid"]
    finally:
        outbox.stop(server)
        server.extensions["idp.engine"].dispose()


# -- who is told, and who is not ------------------------------------------------------------


def test_a_client_without_a_uri_and_another_tenants_client_hear_nothing(app, settings, world):
    other = make_world(app, settings)
    with Receiver() as receiver:
        register(app, other, receiver.url)  # the other tenant's portal listens
        theirs = portal_sign_in(app, other)
        alice = portal_sign_in(app, world)  # this tenant's portal has no URI
        assert console_action(admin_browser(app, world), world, world.alice, "signout").status == 302
        deliver(app)
        assert receiver.received == [] and notices(app, world) == []
        assert sign_out(theirs.browser, other).status == 200
        deliver(app)
        (claims,) = checked(app, other, receiver)
        assert claims["sid"] == id_token(theirs)["sid"] != id_token(alice)["sid"]


def test_a_receiver_that_fails_first_gets_a_fresh_token_on_the_retry(app, world):
    with Receiver(500) as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        sign_out(alice.browser, world)
        now = datetime.now(timezone.utc)
        assert deliver(app, now).retrying == 1
        (row,) = notices(app, world)
        assert row.state == "pending" and "answered 500" in row.last_error
        assert row.next_attempt_at.replace(tzinfo=timezone.utc) >= now + timedelta(seconds=30)
        deliver(app, now + timedelta(seconds=10))  # not due yet
        assert len(receiver.received) == 1
        with app.app_context():  # time moves on: the retry is due
            db.session().execute(update(OutboxMessage).where(OutboxMessage.id == row.id)
                                 .values(next_attempt_at=now - timedelta(seconds=1)))
            db.session().commit()
        assert deliver(app).sent == 1
        first, second = checked(app, world, receiver)
        assert first["sid"] == second["sid"] == id_token(alice)["sid"]
        assert first["jti"] != second["jti"]
        assert [n.state for n in notices(app, world)] == ["sent"]


def test_a_notice_is_never_delivered_past_its_max_age(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        alice = portal_sign_in(app, world)
        sign_out(alice.browser, world)
        (row,) = notices(app, world)  # what the row keeps: what the token will say, no token
        assert json.loads(row.body) == {"client": json.loads(row.body)["client"],
                                        "sub": id_token(alice)["sub"], "sid": id_token(alice)["sid"]}
        assert row.recipient == world.portal.client_id
        late = datetime.now(timezone.utc) + backchannel.MAX_AGE + timedelta(seconds=1)
        assert deliver(app, late).expired == 1
        assert receiver.received == []
        assert [n.state for n in notices(app, world)] == ["expired"]


def test_a_notice_for_a_client_that_removed_its_uri_goes_nowhere(app, world):
    with Receiver() as receiver:
        register(app, world, receiver.url)
        sign_out(portal_sign_in(app, world).browser, world)
        register(app, world, None)
        deliver(app)
        assert receiver.received == []
        assert [n.state for n in notices(app, world)] == ["dropped"]


def test_discovery_says_back_channel_logout_is_supported_with_sessions(client, world):
    found = client.get(f"/t/{world.slug}/.well-known/openid-configuration").get_json()
    assert found["backchannel_logout_supported"] is True
    assert found["backchannel_logout_session_supported"] is True


# -- registering a URI ----------------------------------------------------------------------


def test_the_command_line_registers_and_removes_a_uri(idp, world):
    def registered(verb: str, *options: str) -> dict:
        named = ["--name", "Listening portal", "--redirect-uri", "https://listening.test/cb"]
        code, out, err = idp("client", verb, world.slug,
                             *(named if verb == "create" else [world.portal.client_id]), *options)
        assert code == 0, err
        found = json.loads(out)
        return {k: found[k] for k in ("backchannel_logout_uri", "backchannel_logout_session_required")}

    assert registered("create", "--backchannel-logout-uri", "http://127.0.0.1:9/bcl") == {
        "backchannel_logout_uri": "http://127.0.0.1:9/bcl", "backchannel_logout_session_required": False}
    assert registered("update", "--backchannel-logout-uri", "https://portal.test/bcl",
                      "--backchannel-logout-session-required", "yes") == {
        "backchannel_logout_uri": "https://portal.test/bcl", "backchannel_logout_session_required": True}
    code, _, err = idp("client", "update", world.slug, world.portal.client_id,
                       "--backchannel-logout-uri", "http://portal.test/bcl")
    assert code != 0 and "must use https" in err and "Traceback" not in err
    assert registered("update", "--backchannel-logout-uri", "")["backchannel_logout_uri"] is None


def test_the_console_registers_a_uri_and_refuses_a_bad_one(app, world):
    ada = admin_browser(app, world)
    path = f"/t/{world.slug}/admin/portals/{world.portal.client_id}"
    page = ada.get(path)
    assert "Back-channel logout URI" in page.text
    form = {"csrf_token": field(CSRF, page.text), "name": "Portal",
            "redirect_uris": world.portal.redirect_uri,
            "post_logout_redirect_uris": world.portal.post_logout_redirect_uri, "min_acr": ""}
    bad = ada.post(path, {**form, "backchannel_logout_uri": "http://portal.test/bcl#x"})
    assert bad.status == 400 and "back-channel logout URI" in bad.text
    done = ada.post(path, {**form, "backchannel_logout_uri": "https://portal.test/bcl",
                           "backchannel_logout_session_required": "1"})
    assert done.status == 302
    page = ada.get(path).text
    assert 'value="https://portal.test/bcl"' in page
    assert 'name="backchannel_logout_session_required" value="1" checked' in page


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_an_installation_on_a_public_address_never_posts_to_a_private_one(app, settings, world, host):
    """A portal's URI that leads to a private address (typed as one, or a name that resolves
    to one at delivery) gets nothing: the connection closes before a byte is sent."""
    with Receiver() as receiver:
        register(app, world, receiver.url.replace("127.0.0.1", host))
        alice = portal_sign_in(app, world)
        assert sign_out(alice.browser, world).status == 200
        public = replace(settings, private_callbacks=False)
        done = outbox.deliver(app.extensions["idp.engine"], public,
                              keyring=app.extensions["idp.keyrings"])
        assert done.sent == 0 and not receiver.received
        (notice,) = notices(app, world)
        assert notice.state == "pending" and "private address" in notice.last_error
        # The same notice at its retry, from an installation that may call its neighbours.
        deliver(app, now=datetime.now(timezone.utc) + timedelta(minutes=1))
        assert len(checked(app, world, receiver)) == 1

