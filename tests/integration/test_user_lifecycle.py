"""An account's life in an administrator's hands: deactivate, reactivate, delete, change of
role — from the console and the command line, and what each does to the person's sign-in,
their browser and their portal's tokens."""

from __future__ import annotations

import json
import re

import pytest
import requests
from authlib.integrations.requests_client import OAuthError
from sqlalchemy import MetaData, func, select

from idp import admin, db, directory
from idp.models import AuditEvent
from tests.support.account import answer_challenge
from tests.support.burst import all_at_once
from tests.support.console import admin_browser, console_action, sign_in_to_console, user_id_of
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.lifecycle import add_user, portal_sign_in, set_status_behind_the_store, user_row
from tests.support.relying_party import code_flow, discovery
from tests.support.rp import params_for, refresh, userinfo
from tests.support.signin import challenge_page, put_in_group, set_policy
from tests.support.totp import enroll_totp, totp_code

DEACTIVATED = "This account is deactivated. Contact your organisation&#39;s administrator."


def _signed_out(browser: Browser, world) -> bool:
    """Does the browser's next page ask it to sign in (its SSO session is gone)?"""
    page = browser.get(f"/t/{world.slug}/account")
    return page.status == 302 and "/login" in page.location


def _events(app, world, action: str) -> list[AuditEvent]:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        events = list(session.scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.id)))
        session.expunge_all()
        return events


def _login(browser: Browser, world, email: str, password: str):
    page = browser.get(f"/t/{world.slug}/login")
    return browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
        "email": email, "password": password})


# -- deactivate ----------------------------------------------------------------------------


def test_deactivating_ends_the_browser_session_and_the_refresh_token_in_the_same_request(app, world):
    alice = portal_sign_in(app, world)
    assert not _signed_out(alice.browser, world)
    ada = admin_browser(app, world)

    done = console_action(ada, world, world.alice, "deactivate")

    assert done.status == 302
    # The moment the admin's request returned: the browser is signed out, and neither the
    # refresh token nor the access token work any more.
    assert _signed_out(alice.browser, world)
    r = refresh(app.test_client(), world, world.portal, alice.tokens["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    assert userinfo(app.test_client(), world, alice.tokens["access_token"]).status_code == 401
    # The portal asking quietly finds nobody signed in.
    silent = alice.browser.get(f"/t/{world.slug}/authorize",
                               params_for(world.portal, prompt="none"))
    assert "error=login_required" in silent.location
    page = ada.get(f"/t/{world.slug}/admin/users/{user_id_of(ada, world, world.alice)}").text
    assert 'data-status="deactivated"' in page and "Reactivate" in page
    event = _events(app, world, "user.deactivated")[0]
    assert event.actor == world.admin and event.data["sessions"] == 1 and event.data["tokens"] == 1


def test_a_deactivated_user_hears_why_only_after_the_right_password(app, world):
    with app.app_context():
        session = db.session()
        admin.deactivate(session, None, directory.get_tenant(session, world.slug), world.bob, "test")
        session.commit()
    browser = Browser(app.test_client())
    wrong = _login(browser, world, world.bob, "not the password")
    nobody = _login(browser, world, "nobody@example.com", "not the password")
    # A wrong password gets the answer any address gets: nothing says the account exists.
    assert (wrong.status, nobody.status) == (200, 200)
    assert "Incorrect email or password." in wrong.text and "deactivated" not in wrong.text
    right = _login(browser, world, world.bob, world.password)
    assert right.status == 403 and DEACTIVATED in right.text
    assert _signed_out(browser, world)
    assert _events(app, world, "user.sign_in_refused")[0].data["reason"] == "account deactivated"


def test_the_policy_page_says_a_deactivated_account_cannot_sign_in(app, world):
    ada = admin_browser(app, world)
    console_action(ada, world, world.bob, "deactivate")
    page = ada.get(f"/t/{world.slug}/admin/policy?email={world.bob}&portal=&acr=#what-if").text
    assert 'id="what-if-status"' in page and "cannot sign in at all now" in page


def test_a_sign_in_half_done_stops_when_the_account_is_deactivated(app, world):
    secret = enroll_totp(Browser(app.test_client()), world)
    browser, _, page = challenge_page(app, world)
    assert page.status == 200  # the authenticator app is asked for
    with app.app_context():
        session = db.session()
        admin.deactivate(session, None, directory.get_tenant(session, world.slug), world.alice, "test")
        session.commit()
    answer = browser.follow(answer_challenge(browser, world, page, "totp",
                                             code=totp_code(secret, steps_ahead=1)),
                            world.portal.redirect_uri)
    assert answer.status == 403 and DEACTIVATED in answer.text
    assert _signed_out(browser, world)


def test_reactivating_restores_sign_in_with_the_factors_and_groups_kept(app, world):
    put_in_group(app, world, "Finance", world.alice)
    secret = enroll_totp(Browser(app.test_client()), world)
    ada = admin_browser(app, world)
    console_action(ada, world, world.alice, "deactivate")
    assert _login(Browser(app.test_client()), world, world.alice, world.password).status == 403

    done = console_action(ada, world, world.alice, "reactivate")

    assert done.status == 302 and "active again" in ada.get(done.location).text
    browser, _, page = challenge_page(app, world)
    assert page.status == 200  # the authenticator app is still asked for
    # The next step's code: the setup spent this step's.
    signed_in = browser.follow(answer_challenge(browser, world, page, "totp",
                                                code=totp_code(secret, steps_ahead=1)),
                               world.portal.redirect_uri)
    assert signed_in.status == 302 and "code=" in signed_in.location
    row = ada.get(f"/t/{world.slug}/admin/users/{user_id_of(ada, world, world.alice)}").text
    assert "groups: Finance" in row and 'data-status="active"' in row
    assert [e.actor for e in _events(app, world, "user.reactivated")] == [world.admin]


def test_a_sign_in_link_does_not_outlive_the_deactivation(app, world):
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        url = admin.create_login_token(session, tenant, world.bob, "http://idp.test", "test",
                                       settings=app.config["IDP"]).url
        admin.deactivate(session, None, tenant, world.bob, "test")
        session.commit()
        # Nor can a new one be made for the account.
        with pytest.raises(directory.DirectoryError, match="deactivated"):
            admin.create_login_token(session, tenant, world.bob, "http://idp.test", "test",
                                     settings=app.config["IDP"])
    path = url.removeprefix("http://idp.test")
    assert Browser(app.test_client()).get(path).status == 400  # spent by the deactivation


def test_a_link_made_before_a_deactivation_it_did_not_hear_of_is_refused(app, world):
    with app.app_context():
        session = db.session()
        url = admin.create_login_token(session, directory.get_tenant(session, world.slug),
                                       world.bob, "http://idp.test", "test", settings=app.config["IDP"]).url
        session.commit()
    set_status_behind_the_store(app, world, world.bob, "deactivated")
    browser = Browser(app.test_client())
    path = url.removeprefix("http://idp.test")
    opened = browser.get(path)
    assert opened.status == 403 and DEACTIVATED in opened.text
    # Pressing the link's button anyway (a page kept open from before) is refused the same.
    token = field(CSRF, browser.get(f"/t/{world.slug}/login").text)
    pressed = browser.post(path, {"csrf_token": token})
    assert pressed.status == 403 and DEACTIVATED in pressed.text
    assert _events(app, world, "user.sign_in_refused")[0].actor == world.bob


# -- delete --------------------------------------------------------------------------------


def _owned_rows(app, user_id: int) -> dict[str, int]:
    """Rows referring to the user, in every table with a foreign key to users (found from the
    database itself, so a table added later is counted too)."""
    with app.app_context():
        session = db.session()
        meta = MetaData()
        meta.reflect(bind=session.connection())
        counts = {}
        for table in meta.sorted_tables:
            for fk in table.foreign_keys:
                if fk.column.table.name == "users" and table.name != "audit_events":
                    counts[f"{table.name}.{fk.parent.name}"] = session.scalar(
                        select(func.count()).select_from(table).where(fk.parent == user_id))
        return counts


def test_deleting_removes_the_user_and_everything_they_own_but_not_the_audit_trail(app, world):
    put_in_group(app, world, "Finance", world.alice)
    with app.app_context():
        session = db.session()
        admin.create_login_token(session, directory.get_tenant(session, world.slug), world.alice,
                                 "http://idp.test", "test", settings=app.config["IDP"])
        session.commit()
    alice = portal_sign_in(app, world)
    enroll_totp(Browser(app.test_client()), world)
    user = user_row(app, world, world.alice)
    before = _owned_rows(app, user.id)
    assert all(before[k] for k in ("authenticators.user_id", "tokens.user_id",
                                   "authorization_codes.user_id", "login_tokens.user_id",
                                   "user_groups.user_id"))
    signed_in_events = [e.id for e in _events(app, world, "user.signed_in") if e.actor == world.alice]
    assert signed_in_events
    ada = admin_browser(app, world)

    asked = console_action(ada, world, world.alice, "delete")  # without the confirmation page
    assert asked.status == 302 and asked.location.endswith("/delete")
    confirm = ada.get(asked.location)
    assert confirm.status == 200 and "This cannot be undone" in confirm.text
    done = ada.post(f"/t/{world.slug}/admin/users/{user.id}/delete",
                    {"csrf_token": field(CSRF, confirm.text), "confirm": "yes"})

    assert done.status == 302 and done.location.endswith("/admin/users")
    assert user_row(app, world, world.alice) is None
    assert not any(_owned_rows(app, user.id).values())
    assert _signed_out(alice.browser, world)
    r = refresh(app.test_client(), world, world.portal, alice.tokens["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    # What they did stays, under their address; the deletion says who and which address.
    assert [e.id for e in _events(app, world, "user.signed_in")
            if e.actor == world.alice] == signed_in_events
    deleted = _events(app, world, "user.deleted")[0]
    assert deleted.actor == world.admin and deleted.data["email"] == world.alice
    log = ada.get(f"/t/{world.slug}/admin/audit?user={world.alice}").text
    assert 'data-action="user.deleted"' in log and 'data-action="user.signed_in"' in log


def test_a_session_of_a_deleted_user_is_nobody_elses_session(app, world):
    carol = "carol@example.com"
    add_user(app, world, carol)
    signed_in = portal_sign_in(app, world, carol)
    old = user_row(app, world, carol)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.delete_user(session, None, tenant, carol, "test")  # the store not reached
        session.commit()
        # A new account at the same address (on SQLite, with the deleted one's id).
        new = directory.create_user(session, app.extensions["idp.passwords"], tenant, carol,
                                    "another long password")
        session.commit()
        new_subject = new.subject
    assert new_subject != old.subject
    assert _signed_out(signed_in.browser, world)


# -- who may do it -------------------------------------------------------------------------


@pytest.mark.parametrize("action,form", [("deactivate", {}), ("delete", {"confirm": "yes"}),
                                         ("role", {"role": "member"})])
def test_an_admin_cannot_deactivate_delete_or_demote_themselves(app, world, action, form):
    ada = admin_browser(app, world)
    done = console_action(ada, world, world.admin, action, **form)
    assert done.status == 302
    assert "Ask another administrator" in ada.get(done.location).text
    me = user_row(app, world, world.admin)
    assert (me.status, me.role) == ("active", "admin")
    page = ada.get(f"/t/{world.slug}/admin/users/{me.id}").text
    assert "Deactivate" not in page and "Change role" not in page and "Delete…" not in page


def test_the_last_active_administrator_stays(app, idp, world):
    for args in (("deactivate", world.slug, world.admin), ("delete", world.slug, world.admin),
                 ("set-role", world.slug, world.admin, "member")):
        code, out, err = idp("user", *args)
        assert code == 1 and out == "" and "last active administrator" in err
        assert len(err.strip().splitlines()) == 1
    assert user_row(app, world, world.admin).role == "admin"
    code, _, _ = idp("user", "set-role", world.slug, world.bob, "admin")
    assert code == 0
    code, out, _ = idp("user", "deactivate", world.slug, world.admin)
    assert code == 0 and json.loads(out)["status"] == "deactivated"
    # Bob is the last one now.
    code, _, err = idp("user", "set-role", world.slug, world.bob, "mfa-admin")
    assert code == 1 and "last active administrator" in err


def test_two_administrators_removing_each_other_at_once_leave_one(app, world):
    boss = "boss@example.com"
    add_user(app, world, boss, role="admin")
    ada, other = admin_browser(app, world), admin_browser(app, world, boss)
    all_at_once([lambda: console_action(ada, world, boss, "deactivate"),
                 lambda: console_action(other, world, world.admin, "deactivate")])
    statuses = sorted(user_row(app, world, email).status for email in (world.admin, boss))
    assert statuses == ["active", "deactivated"]


# -- the command line ----------------------------------------------------------------------


def test_the_command_line_deactivates_reactivates_and_deletes(app, idp, settings, world):
    alice = portal_sign_in(app, world)
    environ = {"IDP_REDIS_URL": settings.redis_url} if settings.redis_url else None
    code, out, err = idp("user", "deactivate", world.slug, "Alice@Example.com", environ=environ)
    assert code == 0, err
    done = json.loads(out)
    assert done["email"] == world.alice and done["status"] == "deactivated"
    assert done["tokens_revoked"] == 1
    # With the server's Redis the command ends the sessions itself; with the embedded store
    # (inside the server's process) it cannot, and says so: they end at their next use.
    assert done["sessions_ended"] == (1 if settings.redis_url else None)
    assert _signed_out(alice.browser, world)
    r = refresh(app.test_client(), world, world.portal, alice.tokens["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"

    code, out, _ = idp("user", "reactivate", world.slug, world.alice)
    assert code == 0 and json.loads(out)["status"] == "active"
    assert portal_sign_in(app, world).tokens["access_token"]

    code, out, _ = idp("user", "delete", world.slug, world.alice, environ=environ)
    assert code == 0 and json.loads(out) == {
        "tenant": world.slug, "email": world.alice, "deleted": True,
        "sessions_ended": None if not settings.redis_url else 1, "tokens_revoked": 1}
    assert user_row(app, world, world.alice) is None
    assert [e.actor for e in _events(app, world, "user.deleted")] == ["cli"]


@pytest.mark.parametrize("args,message", [
    (("deactivate", "{slug}", "nobody@example.com"), "no user nobody@example.com"),
    (("reactivate", "{slug}", "bob@example.com"), "is not deactivated"),
    (("delete", "no-such-tenant", "bob@example.com"), "no tenant"),
    (("set-role", "{slug}", "bob@example.com", "owner"), "invalid choice"),
])
def test_command_line_errors_are_one_clear_line(idp, world, args, message):
    code, out, err = idp("user", *[a.format(slug=world.slug) for a in args])
    assert code != 0 and out == "" and message in err


def test_deactivating_twice_is_a_clear_error(idp, world):
    assert idp("user", "deactivate", world.slug, world.bob)[0] == 0
    code, _, err = idp("user", "deactivate", world.slug, world.bob)
    assert code == 1 and "already deactivated" in err


# -- roles ---------------------------------------------------------------------------------


def test_an_admin_changes_a_role_in_the_console_and_it_is_audited(app, world):
    ada = admin_browser(app, world)
    done = console_action(ada, world, world.bob, "role", role="mfa-admin")
    assert done.status == 302 and "Two-factor administrator" in ada.get(done.location).text
    assert user_row(app, world, world.bob).role == "mfa-admin"
    event = _events(app, world, "user.role_changed")[0]
    assert (event.actor, event.data) == (world.admin, {"role": "mfa-admin", "was": "member"})
    listed = ada.get(f"/t/{world.slug}/admin/users?q=bob").text
    assert "<td>Two-factor administrator</td>" in listed
    bad = console_action(ada, world, world.bob, "role", role="owner")
    assert bad.status == 302 and "Choose a role" in ada.get(bad.location).text


def test_a_tenant_whose_policy_predates_the_role_is_asked_to_allow_it_first(app, idp, world):
    set_policy(app, world, roles_allowed=["admin", "member"])  # as tenants made before it
    ada = admin_browser(app, world)
    done = console_action(ada, world, world.bob, "role", role="mfa-admin")
    page = ada.get(done.location).text
    assert "Tick “Two-factor administrators”" in page and "/admin/policy" in page
    assert "idp " not in page  # no command line in the console
    code, _, err = idp("user", "set-role", world.slug, world.bob, "mfa-admin")
    assert code == 1 and "--roles-allowed" in err
    assert user_row(app, world, world.bob).role == "member"


# -- audit ---------------------------------------------------------------------------------


def test_every_change_is_in_the_audit_log_and_its_export(app, world):
    ada = admin_browser(app, world)
    for action, form in (("deactivate", {}), ("reactivate", {}), ("role", {"role": "mfa-admin"}),
                         ("signout", {})):
        console_action(ada, world, world.bob, action, **form)
    console_action(ada, world, world.alice, "delete", confirm="yes")
    actions = ("user.deactivated", "user.reactivated", "user.role_changed",
               "user.signed_out_everywhere", "user.deleted")
    page = ada.get(f"/t/{world.slug}/admin/audit?action=user.").text
    for action in actions:
        row = re.search(rf'<tr data-event="\d+" data-action="{re.escape(action)}">(.*?)</tr>', page, re.S)
        assert row and world.admin in row.group(1) and "127.0.0.1" in row.group(1), action
    exported = ada.get(f"/t/{world.slug}/admin/audit/export.jsonl?action=user.").text
    records = [json.loads(line) for line in exported.splitlines()]
    by_action = {r["action"]: r for r in records}
    for action in actions:
        assert by_action[action]["actor"] == world.admin and by_action[action]["ip"] == "127.0.0.1"
    assert by_action["user.deleted"]["data"]["email"] == world.alice
    assert by_action["user.deactivated"]["user"] == world.bob


# -- through a live server, with Authlib's client ------------------------------------------


def test_a_live_portal_loses_its_refresh_token_when_the_admin_deactivates(live_server, live_world,
                                                                          monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
    provider = discovery(live_world.issuer)
    signed_in = code_flow(live_server, live_world, provider)
    token = signed_in.oauth.refresh_token(provider["token_endpoint"],
                                          refresh_token=signed_in.token["refresh_token"])
    assert token["access_token"]  # it refreshes while the account is active
    ada = sign_in_to_console(Browser(requests.Session(), origin=live_server.url), live_world)

    done = console_action(ada, live_world, live_world.alice, "deactivate")

    assert done.status == 302
    with pytest.raises(OAuthError) as refused:
        signed_in.oauth.refresh_token(provider["token_endpoint"],
                                      refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    account = signed_in.browser.get(f"{live_world.issuer}/account", allow_redirects=False)
    assert account.status_code == 302 and "/login" in account.headers["Location"]
