"""Remember this device, as a portal's user and the tenant's admins meet it: a live server, a
portal on Authlib's client (ID tokens verified against JWKS), a browser keeping its cookies.

A ticked "Don't ask again on this browser" lets that browser skip the tenant's second step for
the tenant's days, and the ID token says what happened in that sign-in: ``amr`` ["pwd"], ``acr``
"pwd". Never for what the portal asks itself (a level, a new authentication), never for a
person the tenant's settings leave out, never with a cookie that is not this user's, and never
after the user's password, factors or account changed.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from idp import admin, db, directory
from idp.models import AuditEvent
from tests.support.console import admin_browser, console_action
from tests.support.journey import CSRF, Browser, field
from tests.support.relying_party import discovery
from tests.support.remembered import (COOKIE, Person, age_devices, devices, person,
                                      remember_cookie, remembering, sign_in, signed_out)
from tests.support.signin import put_in_group, set_policy, user_mfa
from tests.support.world import ClientCreds, make_world

DAY = timedelta(days=1)


@pytest.fixture
def provider(live_world, monkeypatch) -> dict:
    """The issuer's discovery, for Authlib's client (told that the live server's plain http
    is fine)."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    return discovery(live_world.issuer)


@pytest.fixture
def alice(app, live_server, live_world):
    someone = person(app, live_server, live_world)  # codes first: then they are required
    remembering(app, live_world)
    return someone


def remembered_once(world, provider, who):
    """A sign-in that ticks the box, then the browser signs out (its cookies stay)."""
    first = sign_in(world, provider, who)
    assert first.asked and first.offered
    signed_out(who)
    return first


def actions(app, world) -> list[str]:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id)))


# -- the box, ticked and not ----------------------------------------------------------------

def test_a_ticked_box_skips_the_second_step_next_time_and_the_token_says_so(app, live_world,
                                                                           provider, alice):
    first = remembered_once(live_world, provider, alice)
    assert (first.claims["amr"], first.claims["acr"]) == (["pwd", "otp", "mfa"], "mfa")
    assert "Don't ask again on this browser for 30 days" in first.page.text
    cookie = remember_cookie(alice)
    assert cookie is not None and cookie.path == f"/t/{live_world.slug}/"
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Lax"
    assert not cookie.secure  # the live server's issuer is http
    assert 29 * 86400 < cookie.expires - first.claims["iat"] <= 30 * 86400
    [device] = devices(app, live_world, live_world.alice)
    assert device.token_hash != cookie.value and cookie.value not in device.token_hash
    assert device.last_used_at is None and device.description  # "python-requests …" in words

    second = sign_in(live_world, provider, alice)
    assert not second.asked
    # What happened in this sign-in: the password only. No second factor was presented.
    assert (second.claims["amr"], second.claims["acr"]) == (["pwd"], "pwd")
    assert devices(app, live_world, live_world.alice)[0].last_used_at is not None
    # The session it started keeps going without asking (another portal request, no prompt).
    third = sign_in(live_world, provider, alice)
    assert not third.asked and third.claims["sid"] == second.claims["sid"]
    done = actions(app, live_world)
    assert done.count("user.browser_remembered") == 1
    assert done.count("user.remembered_browser_used") == 1


def test_an_unticked_box_asks_again(app, live_world, provider, alice):
    first = sign_in(live_world, provider, alice, tick=False)
    assert first.asked and first.offered and remember_cookie(alice) is None
    signed_out(alice)
    assert sign_in(live_world, provider, alice).asked
    assert devices(app, live_world, live_world.alice)  # the second one ticked it


# -- what the portal asks itself --------------------------------------------------------------

@pytest.mark.parametrize("params", [
    {"acr_values": "mfa"},
    {"prompt": "login"},
    {"claims": '{"id_token": {"acr": {"essential": true, "values": ["mfa"]}}}'},
], ids=["acr_values", "prompt-login", "essential-acr"])
def test_what_the_portal_asks_is_still_asked(app, live_world, provider, alice, params):
    remembered_once(live_world, provider, alice)
    again = sign_in(live_world, provider, alice, **params)
    assert again.asked, params
    assert again.claims["acr"] == "mfa" and "otp" in again.claims["amr"]


def test_max_age_exceeded_asks_again(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    second = sign_in(live_world, provider, alice)  # a session, from the remembered browser
    assert not second.asked
    # The session is older than the portal allows: a new authentication, second step included.
    again = sign_in(live_world, provider, alice, max_age=0)
    assert again.asked and not again.offered
    assert again.claims["acr"] == "mfa" and again.claims["auth_time"] >= second.claims["auth_time"]


def test_max_age_without_a_session_is_no_reauthentication(app, live_world, provider, alice):
    """A browser with no session signs in anyway: its max_age asks nothing more of it."""
    remembered_once(live_world, provider, alice)
    assert not sign_in(live_world, provider, alice, max_age=0).asked


def test_a_clients_minimum_is_still_asked(app, live_server, live_world, provider, alice):
    with app.app_context():
        session = db.session()
        bank = directory.create_client(session, directory.get_tenant(session, live_world.slug),
                                       "Bank", ["https://bank.test/cb"], min_acr="mfa")
        session.commit()
    creds = ClientCreds(bank.client.client_id, bank.secret, "https://bank.test/cb", "")
    remembered_once(live_world, provider, alice)
    again = sign_in(live_world, provider, alice, creds=creds)
    assert again.asked and again.claims["acr"] == "mfa"


# -- whom the tenant remembers, and for how long ------------------------------------------------

def test_off_means_no_box_and_the_cookie_is_ignored(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    remembering(app, live_world, days=0)
    again = sign_in(live_world, provider, alice)
    assert again.asked and not again.offered


def test_only_the_roles_named(app, live_world, provider, alice):
    remembering(app, live_world, remember_roles=["admin"])
    first = sign_in(live_world, provider, alice)
    assert first.asked and not first.offered
    signed_out(alice)
    # A browser remembered before the tenant narrowed it: no longer for alice's role.
    remembering(app, live_world, remember_roles=["member"])
    remembered_once(live_world, provider, alice)
    remembering(app, live_world, remember_roles=["admin"])
    assert sign_in(live_world, provider, alice).asked


def test_only_the_groups_named(app, live_world, provider, alice):
    put_in_group(app, live_world, "Sales", live_world.bob)
    remembering(app, live_world, remember_groups=["Sales"])
    first = sign_in(live_world, provider, alice)
    assert first.asked and not first.offered
    signed_out(alice)
    put_in_group(app, live_world, "Sales", live_world.alice)
    remembered_once(live_world, provider, alice)
    assert not sign_in(live_world, provider, alice).asked


def test_an_expired_browser_is_asked_again(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    age_devices(app, live_world, live_world.alice, expires_at=31 * DAY, created_at=31 * DAY)
    again = sign_in(live_world, provider, alice)
    assert again.asked and again.offered


def test_a_shorter_period_applies_to_browsers_remembered_before(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    age_devices(app, live_world, live_world.alice, created_at=8 * DAY)  # still 22 days to go
    remembering(app, live_world, days=7)
    assert sign_in(live_world, provider, alice).asked


# -- forgetting ----------------------------------------------------------------------------------

def test_forgotten_on_the_account_page_asks_again(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    sign_in(live_world, provider, alice)  # signed in again, remembered: the account page opens
    page = alice.browser.get(f"/t/{live_world.slug}/account")
    assert "Remembered browsers" in page.text and 'data-this="yes"' in page.text
    [device] = devices(app, live_world, live_world.alice)
    # Another user's device id, or no CSRF token: nothing is forgotten.
    assert alice.browser.post(f"/t/{live_world.slug}/account/remembered/{device.id}/forget",
                              {}).status == 400
    gone = alice.browser.post(f"/t/{live_world.slug}/account/remembered/{device.id}/forget",
                              {"csrf_token": field(CSRF, page.text)})
    assert gone.status == 302 and devices(app, live_world, live_world.alice) == []
    assert alice.browser.post(f"/t/{live_world.slug}/account/remembered/{device.id}/forget",
                              {"csrf_token": field(CSRF, page.text)}).status == 404
    signed_out(alice)
    assert sign_in(live_world, provider, alice).asked
    assert "user.remembered_browser_forgotten" in actions(app, live_world)


def test_forget_all_on_the_account_page(app, live_server, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    sign_in(live_world, provider, alice)
    # The same person in another browser (drawing from the same backup codes).
    elsewhere = Person(alice.email, alice.codes, Browser(requests.Session(), origin=live_server.url))
    remembered_once(live_world, provider, elsewhere)
    page = alice.browser.get(f"/t/{live_world.slug}/account")
    assert page.text.count("data-remembered=") == 2
    alice.browser.post(f"/t/{live_world.slug}/account/remembered/forget-all",
                       {"csrf_token": field(CSRF, page.text)})
    assert devices(app, live_world, live_world.alice) == []
    assert sign_in(live_world, provider, elsewhere).asked


def test_revoked_from_the_console_asks_again(app, live_world, provider, alice):
    set_policy(app, live_world, mode="optional")  # the admin sets codes up, then they are required
    console = admin_browser(app, live_world)
    remembering(app, live_world)
    remembered_once(live_world, provider, alice)
    users = console.get(f"/t/{live_world.slug}/admin/users").text
    assert 'data-remembered="1"' in users
    [device] = devices(app, live_world, live_world.alice)
    done = console_action(console, live_world, live_world.alice, "forget-browser",
                          device=str(device.id))
    assert done.status == 302 and devices(app, live_world, live_world.alice) == []
    again = sign_in(live_world, provider, alice)  # asked, and the box ticked again
    assert again.asked and len(devices(app, live_world, live_world.alice)) == 1
    signed_out(alice)
    console_action(console, live_world, live_world.alice, "forget-browsers")
    assert sign_in(live_world, provider, alice).asked
    done = actions(app, live_world)
    assert "user.remembered_browser_forgotten" in done and "user.remembered_browsers_forgotten" in done


def test_a_password_change_forgets_every_browser(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    sign_in(live_world, provider, alice)
    page = alice.browser.get(f"/t/{live_world.slug}/account/password")
    new = "a different horse battery staple"
    changed = alice.browser.post(f"/t/{live_world.slug}/account/password", {
        "csrf_token": field(CSRF, page.text), "current": live_world.password, "password": new,
        "confirm": new})
    assert changed.status == 302, changed.text[:500]
    assert devices(app, live_world, live_world.alice) == []


def test_an_admins_factor_reset_forgets_every_browser(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    user_mfa(app, live_world, live_world.alice, "reset")
    assert devices(app, live_world, live_world.alice) == []


def test_deactivation_forgets_every_browser(app, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    with app.app_context():
        session = db.session()
        admin.deactivate(session, None, directory.get_tenant(session, live_world.slug),
                         live_world.alice, live_world.admin)
        session.commit()
    assert devices(app, live_world, live_world.alice) == []


# -- cookies that are not this user's ------------------------------------------------------------

def _plant(who, world, value: str) -> None:
    domain = next(c.domain for c in who.browser.http.cookies if c.name == "idp_browser")
    who.browser.http.cookies.set(COOKIE, value, domain=domain, path=f"/t/{world.slug}")


def test_another_users_cookie_does_nothing(app, live_server, live_world, provider, alice):
    remembered_once(live_world, provider, alice)
    set_policy(app, live_world, mode="optional")  # bob sets his codes up, then they are required
    bob = person(app, live_server, live_world, live_world.bob)
    remembering(app, live_world)
    sign_in(live_world, provider, bob, tick=False)  # the browser's first visit
    signed_out(bob)
    _plant(bob, live_world, remember_cookie(alice).value)
    assert sign_in(live_world, provider, bob).asked


def test_another_tenants_cookie_does_nothing(app, settings, live_server, live_world, provider,
                                             alice):
    remembered_once(live_world, provider, alice)
    other = make_world(app, settings, live_server.url)
    there = person(app, live_server, other)
    remembering(app, other)
    there.browser = alice.browser  # the same browser, at the other tenant
    other_provider = discovery(other.issuer)
    sign_in(other, other_provider, there, tick=False)
    signed_out(there)
    _plant(there, other, remember_cookie(alice).value)
    assert sign_in(other, other_provider, there).asked


def test_a_forged_cookie_does_nothing(app, live_server, live_world, provider, alice):
    first = sign_in(live_world, provider, alice, tick=False)
    assert first.asked
    signed_out(alice)
    _plant(alice, live_world, secrets.token_urlsafe(32))
    assert sign_in(live_world, provider, alice).asked


def test_purge_deletes_expired_browsers_only(app, live_world, provider, alice, idp):
    remembered_once(live_world, provider, alice)
    other = Person(alice.email, alice.codes, Browser(requests.Session(), origin=alice.browser.origin))
    remembered_once(live_world, provider, other)
    first, second = devices(app, live_world, live_world.alice)
    with app.app_context():
        row = db.session().get(type(first), first.id)
        row.expires_at -= 40 * DAY
        db.session().commit()
    code, out, err = idp("tokens", "purge")
    assert code == 0, err
    assert json.loads(out)["deleted"]["remembered_devices"] >= 1
    assert [d.id for d in devices(app, live_world, live_world.alice)] == [second.id]


def test_a_forgotten_browser_stops_standing_in_for_the_session_it_signed_in(app, live_world,
                                                                           provider, alice):
    """The session a remembered browser signed in (not signed out) asks the second step of
    the next portal once the browser is forgotten: by its owner, or an administrator."""
    remembered_once(live_world, provider, alice)
    assert not sign_in(live_world, provider, alice).asked  # remembered: a session without it
    [device] = devices(app, live_world, live_world.alice)
    with app.app_context():
        from idp.journey import remembered
        session = db.session()
        tenant = directory.get_tenant(session, live_world.slug)
        remembered.forget_all(session, tenant.id, device.user_id, "test", "test")
        session.commit()
    # The same session, the next portal request: asked now.
    assert sign_in(live_world, provider, alice).asked

