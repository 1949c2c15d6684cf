"""The two-factor administrator (role ``mfa-admin``) in the console: they see the users and
turn on, turn off, reset and unlock other people's two-step verification — members' and other
two-factor administrators', never an administrator's — and nothing else, on every page and
every action, whatever the navigation shows."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp import admin, db, directory
from idp.models import AuditEvent
from tests.support.console import admin_browser, console_action, user_id_of
from tests.support.journey import CSRF, Browser, field
from tests.support.lifecycle import add_user, user_row
from tests.support.signin import fail_until_locked

HELPDESK = "helpdesk@example.com"
NOT_YOURS = "Your role lets you manage people&#39;s two-step verification"
# The console's pages a two-factor administrator opens; every other one is refused.
THEIRS = {"console.home", "console.users", "console.user", "console.act", "console.report",
          "console.report_csv"}


@pytest.fixture
def helpdesk(app, world) -> Browser:
    """A two-factor administrator of the tenant, signed in to the console (second factor
    included: the console asks them for it as it asks administrators)."""
    add_user(app, world, HELPDESK, role="mfa-admin")
    return admin_browser(app, world, HELPDESK)


def _url(rule, world, ids: dict) -> str:
    url = rule.rule.replace("<tenant>", world.slug)
    for name, value in ids.items():
        url = re.sub(rf"<(?:int:)?{name}>", str(value), url)
    return url


def test_a_two_factor_admin_opens_the_users_and_the_report_and_no_other_page(app, world, helpdesk):
    ids = {"user_id": user_id_of(helpdesk, world, world.bob), "group_id": 1,
           "client_id": world.portal.client_id, "slug": "partner", "action": "unlock"}
    token = field(CSRF, helpdesk.get(f"/t/{world.slug}/admin/users").text)
    checked = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console."):
            continue
        url = _url(rule, world, ids)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            page = helpdesk.get(url) if method == "GET" else helpdesk.post(url, {"csrf_token": token})
            if rule.endpoint in THEIRS:
                assert page.status in (200, 302), (method, url, page.status)
            else:
                assert page.status == 403 and NOT_YOURS in page.text, (method, url, page.status)
            checked.add(rule.endpoint)
    assert {"console.policy", "console.portals", "console.audit", "console.groups",
            "console.upstreams", "console.confirm_delete"} <= checked - THEIRS


def test_the_navigation_offers_only_what_they_may_open(world, helpdesk):
    page = helpdesk.get(f"/t/{world.slug}/admin/users").text
    nav = re.search(r'<nav aria-label="Console">(.*?)</nav>', page, re.S).group(1)
    assert re.findall(r">([^<]+)</a>", nav) == ["Users", "MFA report"]
    assert "Two-factor administrator" in page  # who they are, beside their address


def test_they_turn_on_turn_off_reset_and_unlock_a_members_two_step_verification(app, client, world,
                                                                               helpdesk):
    for action in ("enforce", "exempt", "reset"):
        done = console_action(helpdesk, world, world.bob, action)
        assert done.status == 302, action
    assert user_row(app, world, world.bob).mfa_must_reenroll  # the reset is done
    fail_until_locked(client, world, world.bob)
    listed = helpdesk.get(f"/t/{world.slug}/admin/users?locked=yes").text
    assert f'data-user="{world.bob}"' in listed and ">Unlock</button>" in listed
    assert console_action(helpdesk, world, world.bob, "unlock").status == 302
    assert f'data-user="{world.bob}"' not in helpdesk.get(f"/t/{world.slug}/admin/users?locked=yes").text
    with app.app_context():
        actors = {e.action: e.actor for e in db.session().scalars(select(AuditEvent).where(
            AuditEvent.action.in_(("mfa.enforce", "mfa.exempt", "mfa.reset", "account.unlocked")),
            AuditEvent.user_id == user_row(app, world, world.bob).id))}
    assert actors == dict.fromkeys(("mfa.enforce", "mfa.exempt", "mfa.reset", "account.unlocked"),
                                   HELPDESK)


def test_they_cannot_touch_an_administrators_two_step_verification(app, world, helpdesk):
    before = user_row(app, world, world.admin)
    for action in ("enforce", "exempt", "reset", "unlock"):
        refused = console_action(helpdesk, world, world.admin, action)
        assert refused.status == 403 and "cannot change an administrator" in refused.text, action
    after = user_row(app, world, world.admin)
    assert (after.mfa_admin_state, after.mfa_must_reenroll) == (before.mfa_admin_state,
                                                                 before.mfa_must_reenroll)
    # Nor are they offered to: no button on the administrator's row or page.
    listed = helpdesk.get(f"/t/{world.slug}/admin/users").text
    row = re.search(rf'<tr data-user="{re.escape(world.admin)}">(.*?)</tr>', listed, re.S).group(1)
    assert "<button" not in row
    page = helpdesk.get(f"/t/{world.slug}/admin/users/{before.id}").text
    assert "<button type=\"submit\"" not in page.split('<dialog')[0]


@pytest.mark.parametrize("action,form", [("deactivate", {}), ("reactivate", {}),
                                         ("delete", {"confirm": "yes"}), ("role", {"role": "admin"}),
                                         ("signout", {}), ("login-token", {})])
def test_and_nothing_else(app, world, helpdesk, action, form):
    refused = console_action(helpdesk, world, world.bob, action, **form)
    assert refused.status == 403 and NOT_YOURS in refused.text
    bob = user_row(app, world, world.bob)
    assert (bob.status, bob.role) == ("active", "member")
    page = helpdesk.get(f"/t/{world.slug}/admin/users/{bob.id}").text
    for label in ("Deactivate", "Delete…", "Change role", "Sign out everywhere",
                  "Create a sign-in link"):
        assert label not in page


def test_they_do_not_give_themselves_another_role(app, world, helpdesk):
    me = user_row(app, world, HELPDESK)
    refused = console_action(helpdesk, world, HELPDESK, "role", role="admin")
    assert refused.status == 302 and "cannot change your own role" in helpdesk.get(refused.location).text
    assert user_row(app, world, HELPDESK).role == "mfa-admin" == me.role


def test_a_member_made_two_factor_admin_opens_the_console_and_back(app, world):
    ada = admin_browser(app, world)
    console_action(ada, world, world.bob, "role", role="mfa-admin")
    bob = admin_browser(app, world, world.bob)
    assert bob.get(f"/t/{world.slug}/admin/users").status == 200
    console_action(ada, world, world.bob, "role", role="member")
    # The next page of their open session already knows.
    assert bob.get(f"/t/{world.slug}/admin/users").status == 403


def test_a_sign_in_link_for_a_two_factor_admin_is_an_administrators_link(app, world, helpdesk):
    with app.app_context():
        session = db.session()
        with pytest.raises(admin.PrivilegedLinkRefused):
            admin.create_login_token(session, directory.get_tenant(session, world.slug), HELPDESK,
                                     "http://idp.test", "test", settings=app.config["IDP"])
