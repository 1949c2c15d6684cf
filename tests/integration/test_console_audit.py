"""The console's audit log: this tenant's events only, newest first, filtered by user, action
and time, 100 a page; CSV and JSON-lines exports of exactly the filtered set."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from idp import db
from idp.models import AuditEvent, Tenant, User
from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field
from tests.support.world import make_world


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 3, day, hour, 0, tzinfo=timezone.utc)


def add_events(app, world, *events):
    """(action, day, email of the user or None, actor, data) rows in ``world``'s tenant."""
    with app.app_context():
        session = db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
        ids = {u.email: u.id for u in session.scalars(select(User).where(User.tenant_id == tenant.id))}
        rows = [AuditEvent(tenant_id=tenant.id, action=action, created_at=when if isinstance(when, datetime) else at(when),
                           user_id=ids[email] if email else None, actor=actor, ip="192.0.2.7",
                           client_id=world.portal.client_id, data=data)
                for action, when, email, actor, data in events]
        session.add_all(rows)
        session.commit()
        return [r.id for r in rows]


def audit_url(world, path=""):
    return f"/t/{world.slug}/admin/audit{path}"


def shown(page_text: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-event="(\d+)"', page_text)]


@pytest.fixture
def two_tenants(app, settings, world):
    """Events of this tenant and of another, on the same days and with the same actions."""

    other = make_world(app, settings)
    mine = add_events(app, world,
                      ("mfa.enforce", 10, world.alice, world.admin, {}),
                      ("mfa.reset", 15, world.bob, world.admin, {"removed": 2}),
                      ("account.locked", 15, world.alice, "", {"failures": 5}),
                      ("mfa.exempt", 20, world.alice, world.admin, {}),
                      ("client.updated", 25, None, world.alice, {"changes": {"name": "x"}}))
    theirs = add_events(app, other,
                        ("mfa.enforce", 10, other.alice, other.admin, {}),
                        ("mfa.reset", 15, other.alice, other.admin, {}),
                        ("account.locked", 15, other.alice, "", {}))
    return other, mine, theirs


def test_the_page_lists_this_tenants_events_newest_first(app, world, two_tenants):
    _, mine, theirs = two_tenants
    page = admin_browser(app, world).get(audit_url(world))
    assert page.status == 200
    ids = shown(page.text)
    assert ids == sorted(ids, reverse=True)
    assert set(mine) <= set(ids) and not set(theirs) & set(ids)
    assert "mfa.reset" in page.text and '{"removed":2}' in html.unescape(page.text)
    assert "192.0.2.7" in page.text


def test_filter_by_user_shows_what_happened_to_them_and_what_they_did(app, world, two_tenants):
    _, mine, _ = two_tenants
    browser = admin_browser(app, world)
    ids = shown(browser.get(audit_url(world), {"user": "ALICE@example.com", "from": "2024-03-01",
                                               "to": "2024-03-31"}).text)
    assert ids == [mine[4], mine[3], mine[2], mine[0]]  # the target of 3, the actor of 1
    ids = shown(browser.get(audit_url(world), {"user": world.bob, "to": "2024-03-31"}).text)
    assert ids == [mine[1]]
    page = browser.get(audit_url(world), {"user": "nobody@example.com"})
    assert page.status == 200 and shown(page.text) == [] and "no user nobody@example.com" in page.text


def test_filter_by_exact_action_or_prefix(app, world, two_tenants):
    _, mine, _ = two_tenants
    browser = admin_browser(app, world)
    assert shown(browser.get(audit_url(world), {"action": "mfa.reset"}).text) == [mine[1]]
    assert shown(browser.get(audit_url(world), {"action": "mfa.", "to": "2024-03-31"}).text) == [mine[3], mine[1], mine[0]]
    assert shown(browser.get(audit_url(world), {"action": "mfa"}).text) == []  # exact: no such action
    assert shown(browser.get(audit_url(world), {"action": "%"}).text) == []  # no wildcard injection


def test_filter_by_time_range_with_the_to_day_included(app, world, two_tenants):
    _, mine, _ = two_tenants
    add_events(app, world, ("mfa.enforce", datetime(2024, 3, 20, 23, 59, 59, tzinfo=timezone.utc), world.bob, world.admin, {}))
    browser = admin_browser(app, world)
    ids = shown(browser.get(audit_url(world), {"from": "2024-03-15", "to": "2024-03-15"}).text)
    assert ids == [mine[2], mine[1]]
    ids = shown(browser.get(audit_url(world), {"from": "2024-03-16", "to": "2024-03-20", "action": "mfa."}).text)
    assert len(ids) == 2 and mine[3] in ids  # the 20th's noon and its last second
    assert shown(browser.get(audit_url(world), {"from": "2024-03-26", "to": "2024-03-31"}).text) == []


@pytest.mark.parametrize("args, message", [
    ({"from": "yesterday"}, "is not a date"),
    ({"to": "2024-02-30"}, "is not a date"),
    ({"from": "03/15/2024"}, "is not a date"),
    ({"from": "2024-03-20", "to": "2024-03-10"}, "after the"),
])
def test_a_bad_date_is_a_message_not_a_500(app, world, args, message):
    browser = admin_browser(app, world)
    page = browser.get(audit_url(world), args)
    assert page.status == 400 and message in page.text and 'role="alert"' in page.text
    for value in args.values():
        assert f'value="{value}"' in page.text  # as typed
    for export in ("/export.csv", "/export.jsonl"):
        refused = browser.get(audit_url(world, export), args)
        assert refused.status == 400 and "attachment" not in refused.headers.get("Content-Disposition", "")


def test_pages_of_100_by_keyset(app, world):
    ids = add_events(app, world, *[("test.bulk", 1 + i % 28, None, world.admin, {"n": i}) for i in range(150)])
    browser = admin_browser(app, world)
    first = browser.get(audit_url(world), {"action": "test.bulk"}).text
    assert shown(first) == sorted(ids, reverse=True)[:100]
    older = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    assert "before=" in older and "action=test.bulk" in older
    second = browser.get(older).text
    assert shown(second) == sorted(ids, reverse=True)[100:]
    assert 'rel="next"' not in second


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_csv_export_holds_exactly_the_filtered_events_of_this_tenant(app, world, two_tenants):
    other, _, _ = two_tenants
    browser = admin_browser(app, world)
    r = browser.get(audit_url(world, "/export.csv"), {"action": "mfa.", "from": "2024-03-01", "to": "2024-03-31"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].startswith("attachment;") and ".csv" in r.headers["Content-Disposition"]
    assert r.text.splitlines()[0] == "time,action,actor,user,client_id,ip,data"
    rows = csv_rows(r.text)
    assert [(x["action"], x["user"]) for x in rows] == [
        ("mfa.exempt", world.alice), ("mfa.reset", world.bob), ("mfa.enforce", world.alice)]
    client_id = world.portal.client_id  # random: it may start with "-", kept from spreadsheets
    client_id = "'" + client_id if client_id[0] in "=+-@" else client_id
    assert rows[1]["actor"] == world.admin and rows[1]["client_id"] == client_id
    assert rows[1]["ip"] == "192.0.2.7" and json.loads(rows[1]["data"]) == {"removed": 2}
    assert datetime.fromisoformat(rows[1]["time"]) == at(15)
    assert other.portal.client_id not in r.text

    everything = csv_rows(browser.get(audit_url(world, "/export.csv")).text)
    assert other.portal.client_id not in json.dumps(everything)
    assert {x["action"] for x in everything} >= {"mfa.enforce", "account.locked", "client.created", "user.created"}


def test_json_lines_export_holds_exactly_the_filtered_events(app, world, two_tenants):
    _, mine, theirs = two_tenants
    browser = admin_browser(app, world)
    r = browser.get(audit_url(world, "/export.jsonl"), {"user": world.alice, "to": "2024-03-31"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/x-ndjson")
    assert r.headers["Content-Disposition"].startswith("attachment;") and ".jsonl" in r.headers["Content-Disposition"]
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert [x["id"] for x in lines] == [mine[4], mine[3], mine[2], mine[0]]
    locked = lines[2]
    assert locked["action"] == "account.locked" and locked["user"] == world.alice
    assert locked["data"] == {"failures": 5} and locked["time"].startswith("2024-03-15T12:00:00")
    assert set(locked) >= {"time", "action", "actor", "user", "client_id", "ip", "data"}
    assert not {x["id"] for x in lines} & set(theirs)


def test_exports_are_audited_and_do_not_include_themselves(app, world):
    browser = admin_browser(app, world)
    r = browser.get(audit_url(world, "/export.jsonl"), {"action": "audit.exported"})
    assert r.text == ""
    r = browser.get(audit_url(world, "/export.jsonl"), {"action": "audit.exported"})
    [earlier] = [json.loads(line) for line in r.text.splitlines()]
    assert earlier["actor"] == world.admin and earlier["data"]["format"] == "jsonl"
    assert earlier["data"]["filters"] == {"action": "audit.exported"}


def test_a_csv_cell_is_never_a_formula(app, world):
    add_events(app, world, ("test.csv", 3, None, "=HYPERLINK(\"http://evil.test\")", {}))
    rows = csv_rows(admin_browser(app, world).get(audit_url(world, "/export.csv"), {"action": "test.csv"}).text)
    assert rows[0]["actor"] == "'=HYPERLINK(\"http://evil.test\")"


def test_console_actions_show_up_with_their_actor(app, world):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/users").text
    user_id = re.search(rf'/admin/users/(\d+)"[^>]*>{re.escape(world.alice)}<', page).group(1)
    browser.post(f"/t/{world.slug}/admin/users/{user_id}/enforce", {"csrf_token": field(CSRF, page)})
    log = browser.get(audit_url(world), {"user": world.alice, "action": "mfa.enforce"}).text
    row = re.search(r'<tr data-event="\d+" data-action="mfa.enforce">(.*?)</tr>', log, re.S).group(1)
    assert world.admin in row and world.alice in row


def test_a_member_gets_403(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.alice)
    for path in ("", "/export.csv", "/export.jsonl"):
        assert browser.get(audit_url(world, path)).status == 403
