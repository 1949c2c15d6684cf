"""The console's users page: who may open it, the shield, and the actions behind it."""

from __future__ import annotations

import re

import pytest

from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field
from tests.support.world import make_world


def shield_of(page_text: str, email: str) -> str:
    row = re.search(rf'<tr data-user="{re.escape(email)}">(.*?)</tr>', page_text, re.S).group(1)
    return re.search(r'data-shield="([a-z]+)"', row).group(1)


def act(browser, world, page_text, email, action):
    user_id = re.search(rf'/admin/users/(\d+)"[^>]*>{re.escape(email)}<', page_text).group(1)
    return browser.post(f"/t/{world.slug}/admin/users/{user_id}/{action}",
                        {"csrf_token": field(CSRF, page_text), "back": f"/t/{world.slug}/admin/users"})


def test_a_member_gets_403(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.alice)
    assert browser.get(f"/t/{world.slug}/admin/users").status == 403


def test_no_session_is_sent_to_sign_in(app, world):
    page = Browser(app.test_client()).get(f"/t/{world.slug}/admin/users")
    assert page.status == 302 and "/login" in page.location


def test_another_tenants_admin_gets_404_on_every_console_url(app, settings, world):
    other = make_world(app, settings)
    theirs = admin_browser(app, other)
    sid = theirs.http.get_cookie("idp_sso", path=f"/t/{other.slug}/").value
    stranger = app.test_client()
    stranger.set_cookie("idp_sso", sid, path=f"/t/{world.slug}/")  # their cookie, sent here
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and "GET" in rule.methods:
            url = rule.rule.replace("<tenant>", world.slug).replace("<int:user_id>", "1")
            assert stranger.get(url).status_code == 404, url
    # A well-formed action (with a CSRF token of this browser) is refused the same way.
    token = field(CSRF, stranger.get(f"/t/{world.slug}/login").get_data(as_text=True))
    r = stranger.post(f"/t/{world.slug}/admin/users/1/enforce", data={"csrf_token": token})
    assert r.status_code == 404


def test_the_admin_is_stepped_up_before_the_console(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.admin)  # password only, MFA is on for the tenant
    page = browser.get(f"/t/{world.slug}/admin/users")
    assert page.status == 302 and "/login/" in page.location  # setup or challenge first


def test_shield_enforce_then_off(app, world):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/users").text
    assert shield_of(page, world.alice) == "optional"  # the test tenant's MFA is optional
    done = act(browser, world, page, world.alice, "enforce")
    assert done.status == 302
    page = browser.get(f"/t/{world.slug}/admin/users").text
    assert shield_of(page, world.alice) == "required"
    act(browser, world, page, world.alice, "exempt")
    assert shield_of(browser.get(f"/t/{world.slug}/admin/users").text, world.alice) == "exempt"


def test_admins_cannot_change_their_own_enforcement(app, world):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/users").text
    act(browser, world, page, world.admin, "exempt")
    after = browser.get(f"/t/{world.slug}/admin/users").text
    assert shield_of(after, world.admin) == "on" and "cannot change your own" in after


def test_search_and_pages(app, world):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/users?q=ALI").text
    assert world.alice in page and world.bob not in page


def test_actions_are_audited_with_actor_and_target(app, world):
    from sqlalchemy import select

    from idp import db
    from idp.models import AuditEvent

    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/users").text
    act(browser, world, page, world.alice, "enforce")
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "mfa.enforce")
                                    .order_by(AuditEvent.id.desc()))
        assert event.actor == world.admin and event.user_id is not None


@pytest.mark.parametrize("action", ["signout", "login-token", "unlock", "reset"])
def test_other_actions_answer(app, world, action):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/users").text
    r = act(browser, world, page, world.bob, action)
    assert r.status in (200, 302)
    if action == "login-token":
        assert "/login/token/" in r.text
