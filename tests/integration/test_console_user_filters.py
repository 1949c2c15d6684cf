"""The users list's filters — two-step verification on or off, locked, status, group — alone,
together, with the search and across pages; each row says the user's status."""

from __future__ import annotations

import re

from idp import admin, db, directory
from tests.support.console import admin_browser
from tests.support.journey import Browser
from tests.support.lifecycle import add_user
from tests.support.signin import fail_until_locked, put_in_group, set_policy, user_mfa
from tests.support.totp import enroll_totp


def listed(browser: Browser, world, query: str = "") -> dict[str, str]:
    """{email: shield state} of the rows the list shows for ``query``."""
    page = browser.get(f"/t/{world.slug}/admin/users?{query}")
    assert page.status == 200, page.status
    rows = re.findall(r'<tr data-user="([^"]+)">(.*?)</tr>', page.text, re.S)
    return {email: re.search(r'data-shield="([a-z]+)"', row).group(1) for email, row in rows}


def _deactivate(app, world, email: str) -> None:
    with app.app_context():
        session = db.session()
        admin.deactivate(session, None, directory.get_tenant(session, world.slug), email, "test")
        session.commit()


def test_each_row_says_the_users_status_and_the_status_filter_narrows(app, world):
    _deactivate(app, world, world.bob)
    ada = admin_browser(app, world)
    page = ada.get(f"/t/{world.slug}/admin/users").text
    bob = re.search(rf'<tr data-user="{re.escape(world.bob)}">(.*?)</tr>', page, re.S).group(1)
    assert 'data-status="deactivated">Deactivated<' in bob
    assert set(listed(ada, world, "status=deactivated")) == {world.bob}
    assert set(listed(ada, world, "status=active")) == {world.alice, world.admin}
    assert listed(ada, world, "status=invited") == {}


def test_two_step_verification_on_or_off_is_what_each_shield_says(app, world):
    enroll_totp(Browser(app.test_client()), world)  # alice: on
    carol = "carol@example.com"
    add_user(app, world, carol)
    enroll_totp(Browser(app.test_client()), world, email=carol)
    user_mfa(app, world, carol, "exempt")  # holds an app, but an admin turned it off
    ada = admin_browser(app, world)  # ada: on (her backup codes)

    on, off = listed(ada, world, "mfa=on"), listed(ada, world, "mfa=off")

    assert set(on) == {world.alice, world.admin} and set(on.values()) == {"on"}
    assert set(off) == {world.bob, carol} and off[carol] == "exempt"
    everyone = listed(ada, world)
    assert set(on) | set(off) == set(everyone) and not set(on) & set(off)
    # Under a policy that covers one group only, the same: on is on.
    put_in_group(app, world, "Finance", world.admin)
    set_policy(app, world, groups=["Finance"])
    assert listed(ada, world, "mfa=on") == {world.admin: "on"}
    assert set(listed(ada, world, "mfa=off")) == {world.alice, world.bob, carol}


def test_with_two_step_verification_off_in_the_organisation_nobody_has_it_on(app, world):
    enroll_totp(Browser(app.test_client()), world)
    ada = admin_browser(app, world)
    set_policy(app, world, mode="disabled")
    assert listed(ada, world, "mfa=on") == {}
    assert set(listed(ada, world, "mfa=off")) == {world.alice, world.bob, world.admin}


def test_locked_shows_the_locked_accounts_until_they_are_unlocked(app, client, world):
    fail_until_locked(client, world, world.bob)
    ada = admin_browser(app, world)
    assert set(listed(ada, world, "locked=yes")) == {world.bob}
    with app.app_context():
        session = db.session()
        admin.unlock(session, app.extensions["idp.guard"], directory.get_tenant(session, world.slug),
                     world.bob, "test")
        session.commit()
    page = ada.get(f"/t/{world.slug}/admin/users?locked=yes").text
    assert "No users match." in page


def test_a_group_and_the_filters_combine_with_the_search(app, world):
    put_in_group(app, world, "Finance", world.alice, world.bob)
    _deactivate(app, world, world.bob)
    ada = admin_browser(app, world)
    assert set(listed(ada, world, "group=Finance")) == {world.alice, world.bob}
    assert set(listed(ada, world, "group=Finance&status=active")) == {world.alice}
    assert set(listed(ada, world, "group=Finance&q=bob")) == {world.bob}
    assert listed(ada, world, "group=Finance&q=ada") == {}
    page = ada.get(f"/t/{world.slug}/admin/users?group=Finance").text
    assert '<option value="Finance" selected>Finance</option>' in page and "Show everyone" in page


def test_the_next_page_keeps_the_filters(app, world):
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        passwords = app.extensions["idp.passwords"]
        many = [directory.create_user(session, passwords, tenant, f"p{i:03}@example.com",
                                      world.password).email for i in range(120)]
        session.commit()
    put_in_group(app, world, "Many", *many[::2])
    ada = admin_browser(app, world)
    first = ada.get(f"/t/{world.slug}/admin/users?group=Many&q=example").text
    next_link = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "group=Many" in next_link and "q=example" in next_link
    second = listed(ada, world, next_link.split("?", 1)[1])
    shown = set(listed(ada, world, "group=Many&q=example")) | set(second)
    assert shown == set(many[::2]) and len(second) == 10
    assert 'rel="next"' not in ada.get(next_link).text


def test_a_filter_no_form_can_send_is_ignored_not_an_error(app, world):
    ada = admin_browser(app, world)
    everyone = listed(ada, world)
    assert listed(ada, world, "mfa=maybe&status=gone&locked=1") == everyone
    assert listed(ada, world, "group=%25%27%22%3C") == {}
