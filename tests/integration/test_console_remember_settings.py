"""The console's and the command line's controls for passkeys as the first step, passwordless
accounts and remembered browsers: shown, saved, audited, refused with a clear message."""

from __future__ import annotations

import html
import json

import pytest
from sqlalchemy import select

from idp import admin, db, directory
from idp.models import AuditEvent
from tests.support.console import admin_browser
from tests.support.policy_form import checked, form_of, value
from tests.support.signin import put_in_group


def url(world):
    return f"/t/{world.slug}/admin/policy"


def saved(app, world) -> dict:
    with app.app_context():
        session = db.session()
        return admin.policy_dict(session, directory.get_tenant(session, world.slug))


def test_a_new_tenant_shows_passkeys_first_on_and_remembering_off(app, world):
    page = admin_browser(app, world).get(url(world)).text
    assert checked(page, "passkey_first") and not checked(page, "passwordless")
    assert value(page, "remember_days") == "0" and checked(page, "remember-everyone")
    assert all(checked(page, f"remember-role-{r}") for r in ("admin", "mfa-admin", "member"))
    assert "applies where passkeys are an allowed method" in page
    assert "may remove their password" in page


def test_saving_the_three_settings_is_audited_with_the_admin(app, world):
    put_in_group(app, world, "Sales", world.bob)
    browser = admin_browser(app, world)
    page = browser.get(url(world)).text
    done = browser.post(url(world), form_of(page, passkey_first=None, passwordless="on",
                                            remember_days="30", remember_scope="selected",
                                            remember_groups=["Sales"], remember_roles=["member"]))
    assert done.status == 302, html.unescape(done.text)[:2000]
    after = saved(app, world)
    assert (after["passkey_first"], after["passwordless"], after["remember_days"]) == (False, True, 30)
    assert (after["remember_scope"], after["remember_groups"], after["remember_roles"]) == \
        ("selected", ["Sales"], ["member"])
    shown = browser.get(url(world)).text
    assert "days a browser is remembered: 0 → 30" in html.unescape(shown)
    assert value(shown, "remember_days") == "30" and checked(shown, "remember-selected")
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "policy.changed")
                                    .order_by(AuditEvent.id.desc()))
        assert event.actor == world.admin and event.data["changes"]["remember_days"] == 30
    # Back to everyone: the groups are let go.
    page = browser.get(url(world)).text
    browser.post(url(world), form_of(page, remember_scope="everyone"))
    assert saved(app, world)["remember_scope"] == "everyone"


@pytest.mark.parametrize("typed, message", [
    ({"remember_days": "366"}, "“Days a browser is remembered” must be from 0 to 365"),
    ({"remember_days": "-1"}, "“Days a browser is remembered” must be from 0 to 365"),
    ({"remember_days": "a month"}, "must be a whole number"),
    ({"remember_days": "30", "remember_scope": "selected", "remember_groups": []},
     "Choose at least one group whose browsers may be remembered"),
    ({"remember_days": "30", "remember_scope": "selected", "remember_groups": ["Nope"]},
     "no group 'Nope'"),
    ({"remember_days": "30", "remember_roles": []}, "Choose at least one role whose browsers"),
])
def test_bad_input_is_refused_with_a_message_and_nothing_changes(app, world, typed, message):
    browser = admin_browser(app, world)
    before = saved(app, world)
    page = browser.get(url(world)).text
    answer = browser.post(url(world), form_of(page, passwordless="on", **typed))
    assert answer.status == 400 and message in html.unescape(answer.text)
    assert checked(answer.text, "passwordless")  # what was typed comes back
    assert saved(app, world) == before


def test_a_page_from_before_these_settings_keeps_them(app, world):
    """A policy page open in a tab across the upgrade has none of these fields: they stay."""
    with app.app_context():
        session = db.session()
        admin.set_policy(session, directory.get_tenant(session, world.slug), "test",
                         remember_days=14, passwordless=True)
        session.commit()
    browser = admin_browser(app, world)
    page = browser.get(url(world)).text
    old = {k: v for k, v in form_of(page).items()
           if k not in ("passkeys", "remembering", "passkey_first", "passwordless")
           and not k.startswith("remember_")}
    assert browser.post(url(world), old).status == 302
    after = saved(app, world)
    assert after["remember_days"] == 14 and after["passwordless"] and after["passkey_first"]


def test_the_command_line_sets_them(idp, world):
    code, out, err = idp("group", "create", world.slug, "Sales")
    assert code == 0, err
    code, out, err = idp("policy", "set", world.slug, "--remember-days", "30", "--remember-groups",
                         "Sales", "--remember-roles", "admin,member", "--passkey-first", "off",
                         "--passwordless", "on")
    assert code == 0, err
    policy = json.loads(out)
    assert (policy["remember_days"], policy["remember_scope"], policy["remember_groups"],
            policy["remember_roles"]) == (30, "selected", ["Sales"], ["admin", "member"])
    assert policy["passkey_first"] is False and policy["passwordless"] is True
    code, out, _ = idp("policy", "set", world.slug, "--remember-groups", "")
    assert json.loads(out)["remember_scope"] == "everyone"
    code, out, err = idp("policy", "set", world.slug, "--remember-days", "400")
    assert code != 0 and "remember-days must be from 0 to 365" in err and len(err.splitlines()) == 1
    code, _, err = idp("policy", "set", world.slug, "--remember-roles", "root")
    assert code != 0 and "remember-roles must be among" in err
