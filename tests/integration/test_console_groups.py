"""The console's groups: create one, add and remove members, and who may do it."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from idp import admin, db, directory
from idp.models import AuditEvent, Group
from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field
from tests.support.world import make_world


def groups_url(world):
    return f"/t/{world.slug}/admin/groups"


def members_of(page: str) -> list[str]:
    return [html.unescape(e) for e in re.findall(r'<tr data-member="([^"]+)">', page)]


def count_of(page: str, name: str) -> int:
    row = re.search(rf'<tr data-group="{re.escape(name)}">(.*?)</tr>', page, re.S)
    assert row, f"no group {name} listed"
    return int(re.search(r'data-members="(\d+)"', row.group(1)).group(1))


def events(app, world, action) -> list[tuple[str, int | None, dict]]:
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        return [tuple(r) for r in db.session().execute(
            select(AuditEvent.actor, AuditEvent.user_id, AuditEvent.data)
            .where(AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.id))]


def user_id(app, world, email) -> int:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).id


def test_create_add_and_remove_a_member(app, world):
    browser = admin_browser(app, world)
    listing = browser.get(groups_url(world))
    assert listing.status == 200 and "No groups yet" in listing.text

    created = browser.post(groups_url(world), {"csrf_token": field(CSRF, listing.text), "name": "Pilot"})
    assert created.status == 302
    group_url = created.location
    page = browser.get(group_url)
    assert page.status == 200 and "Group Pilot" in page.text and members_of(page.text) == []
    assert "Group Pilot created." in page.text
    assert count_of(browser.get(groups_url(world)).text, "Pilot") == 0

    added = browser.post(f"{group_url}/members", {"csrf_token": field(CSRF, page.text),
                                                  "email": "ALICE@example.com"})
    assert added.status == 302
    page = browser.get(group_url)
    assert members_of(page.text) == [world.alice]
    assert f"{world.alice} is now in Pilot." in page.text
    assert count_of(browser.get(groups_url(world)).text, "Pilot") == 1
    # Her own page says so too.
    alice_id = user_id(app, world, world.alice)
    assert "groups: Pilot" in browser.get(f"/t/{world.slug}/admin/users/{alice_id}").text

    # Removing asks first, then she is gone.
    form = re.search(rf'<form[^>]*action="([^"]*/members/{alice_id}/remove)"[^>]*data-confirm="([^"]+)"',
                     page.text, re.S)
    assert form and world.alice in html.unescape(form.group(2))
    removed = browser.post(form.group(1), {"csrf_token": field(CSRF, page.text)})
    assert removed.status == 302
    page = browser.get(group_url)
    assert members_of(page.text) == [] and f"{world.alice} is no longer in Pilot." in page.text
    assert count_of(browser.get(groups_url(world)).text, "Pilot") == 0

    assert [(a, d["group"]) for a, _, d in events(app, world, "group.created")] == [(world.admin, "Pilot")]
    assert [(a, u, d["group"]) for a, u, d in events(app, world, "group.member_added")] == \
        [(world.admin, alice_id, "Pilot")]
    assert [(a, u, d["group"]) for a, u, d in events(app, world, "group.member_removed")] == \
        [(world.admin, alice_id, "Pilot")]


def test_a_group_the_policy_covers_is_marked(app, world):
    browser = admin_browser(app, world)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.create_group(session, tenant, "Finance", "test")
        admin.create_group(session, tenant, "Sales", "test")
        admin.add_to_group(session, tenant, "Finance", world.bob, "test")
        admin.set_policy(session, tenant, "test", groups=["Finance"])
        session.commit()
    page = browser.get(groups_url(world)).text
    finance = re.search(r'<tr data-group="Finance">(.*?)</tr>', page, re.S).group(1)
    sales = re.search(r'<tr data-group="Sales">(.*?)</tr>', page, re.S).group(1)
    assert "Yes" in finance and "No" in sales and count_of(page, "Finance") == 1


def test_bad_input_is_a_clear_400_that_keeps_what_was_typed(app, world):
    browser = admin_browser(app, world)
    listing = browser.get(groups_url(world)).text
    token = field(CSRF, listing)
    assert browser.post(groups_url(world), {"csrf_token": token, "name": "Pilot"}).status == 302
    again = browser.post(groups_url(world), {"csrf_token": token, "name": "Pilot"})
    assert again.status == 400 and "already exists" in html.unescape(again.text)
    assert re.search(r'id="group-name"[^>]*value="Pilot"', again.text)
    empty = browser.post(groups_url(world), {"csrf_token": token, "name": "   "})
    assert empty.status == 400 and "cannot be empty" in empty.text

    group_url = browser.get(groups_url(world)).text
    group_url = re.search(r'href="([^"]*/admin/groups/\d+)"', group_url).group(1)
    unknown = browser.post(f"{group_url}/members", {"csrf_token": token, "email": "nobody@example.com"})
    assert unknown.status == 400 and "no user nobody@example.com" in unknown.text
    assert re.search(r'id="member-email"[^>]*value="nobody@example.com"', unknown.text)
    assert events(app, world, "group.member_added") == []
    # Removing someone who is not a member, or a group that does not exist, is a 404.
    bob_id = user_id(app, world, world.bob)
    assert browser.post(f"{group_url}/members/{bob_id}/remove", {"csrf_token": token}).status == 404
    assert browser.get(f"{groups_url(world)}/999999").status == 404


def test_another_tenants_group_is_not_found(app, settings, world):
    other = make_world(app, settings)
    with app.app_context():
        session = db.session()
        theirs = admin.create_group(session, directory.get_tenant(session, other.slug), "Theirs", "test")
        admin.add_to_group(session, directory.get_tenant(session, other.slug), "Theirs", other.alice, "test")
        session.commit()
        group_id = theirs.id
    browser = admin_browser(app, world)
    page = browser.get(groups_url(world)).text
    assert "Theirs" not in page
    assert browser.get(f"{groups_url(world)}/{group_id}").status == 404
    token = field(CSRF, page)
    r = browser.post(f"{groups_url(world)}/{group_id}/members", {"csrf_token": token, "email": world.alice})
    assert r.status == 404
    with app.app_context():
        assert db.session().get(Group, group_id).name == "Theirs"
        assert events(app, world, "group.member_added") == []


def test_a_member_gets_403(app, world):
    with app.app_context():
        session = db.session()
        group = admin.create_group(session, directory.get_tenant(session, world.slug), "Pilot", "test")
        session.commit()
        group_id = group.id
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.alice)
    assert browser.get(groups_url(world)).status == 403
    assert browser.get(f"{groups_url(world)}/{group_id}").status == 403
    token = field(CSRF, browser.get(f"/t/{world.slug}/account/add/totp").text)
    assert browser.post(groups_url(world), {"csrf_token": token, "name": "Mine"}).status == 403
    r = browser.post(f"{groups_url(world)}/{group_id}/members", {"csrf_token": token, "email": world.alice})
    assert r.status == 403
    assert events(app, world, "group.member_added") == []
    assert [a for a, _, _ in events(app, world, "group.created")] == ["test"]
