"""The console's MFA report: the counts an admin reads (overall and per group), the chart and
its text equivalent, and the CSV of every user's status."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select, update

from idp import admin, db, directory
from idp.models import AuditEvent, Authenticator, BackupCode, Group
from idp.models.base import utcnow
from tests.support.account import enroll_backup_codes, password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import Browser
from tests.support.signin import fail_until_locked, set_policy, user_mfa
from tests.support.world import PASSWORD, make_world


def add_users(app, world, *names, group=None):
    """More members of the tenant (``name@example.com``), optionally in ``group``."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        if group and session.scalar(select(Group.id).where(Group.tenant_id == tenant.id,
                                                            Group.name == group)) is None:
            admin.create_group(session, tenant, group, "test")
        for name in names:
            directory.create_user(session, app.extensions["idp.passwords"], tenant,
                                  f"{name}@example.com", PASSWORD, name=name.title())
            if group:
                session.flush()
                admin.add_to_group(session, tenant, group, f"{name}@example.com", "test")
        session.commit()


def spend_all_backup_codes(app, world, email):
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        ids = [a.id for a in session.query(Authenticator).filter_by(user_id=user.id)]
        session.execute(update(BackupCode).where(BackupCode.authenticator_id.in_(ids))
                        .values(used_at=utcnow()))
        session.commit()


@pytest.fixture
def populated(app, world):
    """ada (admin): on; carol: on, in Sales; frank: optional, in Sales; dave: required by an
    admin; erin: turned off by an admin; gina: backup codes all used; alice: locked; bob: optional."""
    add_users(app, world, "carol", "frank", group="Sales")
    add_users(app, world, "dave", "erin", "gina")
    enroll_backup_codes(Browser(app.test_client()), world, email="carol@example.com")
    enroll_backup_codes(Browser(app.test_client()), world, email="gina@example.com")
    spend_all_backup_codes(app, world, "gina@example.com")
    user_mfa(app, world, "dave@example.com", "enforce")
    user_mfa(app, world, "erin@example.com", "exempt")
    fail_until_locked(app.test_client(), world, world.alice)
    return admin_browser(app, world)


def counts(page: str, row: str) -> dict[str, int]:
    """The numbers of one row of the report's table (``row``: a group's name, or None)."""
    marker = "data-overall" if row is None else f'data-group="{row}"'
    html = re.search(rf"<tr {re.escape(marker)}>(.*?)</tr>", page, re.S).group(1)
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)"[^>]*>(\d+)', html)}


def report_csv(browser, world) -> tuple[object, dict[str, dict]]:
    r = browser.http.get(f"/t/{world.slug}/admin/report.csv")
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    return r, {row["email"]: row for row in rows}


def test_the_report_counts_each_state_overall_and_per_group(app, world, populated):
    page = populated.get(f"/t/{world.slug}/admin/report")
    assert page.status == 200
    assert counts(page.text, None) == {"total": 8, "on": 2, "required": 1, "off": 5}
    assert counts(page.text, "Sales") == {"total": 2, "on": 1, "required": 0, "off": 1}
    assert counts(page.text, "No group") == {"total": 6, "on": 1, "required": 1, "off": 4}
    assert 'data-exempt="1"' in page.text  # erin, counted with "off"
    caption = " ".join(re.search(r"<figcaption[^>]*>(.*?)</figcaption>", page.text, re.S).group(1).split())
    assert caption.startswith("Two-step verification adoption: 8 users in all, 2 on (25%), "
                              "1 required but not set up (13%), 5 off (63%).")


def test_the_chart_is_inline_svg_with_a_text_equivalent(app, world, populated):
    page = populated.get(f"/t/{world.slug}/admin/report")
    figure = re.search(r"<figure[^>]*>(.*?)</figure>", page.text, re.S).group(1)
    assert "<figcaption" in figure and "<table" in figure and '<th scope="row">Sales</th>' in figure
    svg = re.search(r"<svg[^>]*>.*?</svg>", figure, re.S).group(0)
    assert 'role="img"' in svg and 'aria-labelledby="chart-title chart-desc"' in svg
    assert re.search(r"<title id=\"chart-title\">[^<]+</title>", svg)
    assert "Sales: 2 users, 1 on, 0 required but not set up, 1 off." in svg
    assert "<title>Sales: 1 on (50%)</title>" in svg  # a segment says what it is
    assert "<script" not in page.text.split("</head>", 1)[1]  # no script in the page body
    assert "Content-Security-Policy" in page.headers
    # The page links the export, and the nav names the report.
    assert f'href="/t/{world.slug}/admin/report.csv"' in page.text and ">MFA report</a>" in page.text


def test_the_required_policy_counts_its_groups_and_users_as_required(app, world, populated):
    set_policy(app, world, mode="required", groups=["Sales"], users=[world.bob])
    page = populated.get(f"/t/{world.slug}/admin/report").text
    # frank (in Sales) and bob (named) must now set up a factor; alice, erin, gina need not;
    # ada is not covered, so her backup codes are not asked for at sign-in: off.
    assert counts(page, None) == {"total": 8, "on": 1, "required": 3, "off": 4}
    assert counts(page, "Sales") == {"total": 2, "on": 1, "required": 1, "off": 0}
    _, rows = report_csv(populated, world)
    assert rows["frank@example.com"]["state"] == "required"
    assert rows[world.bob]["state"] == "required"
    assert rows[world.admin]["state"] == "off"
    assert rows[world.alice]["state"] == "off"
    set_policy(app, world, mode="required", groups=[], users=[])  # now everyone
    page = populated.get(f"/t/{world.slug}/admin/report").text
    assert counts(page, None) == {"total": 8, "on": 2, "required": 5, "off": 1}  # erin


def test_the_csv_holds_every_user_of_the_tenant_and_no_other(app, settings, world, populated):
    other = make_world(app, settings)
    add_users(app, other, "stranger")
    r, rows = report_csv(populated, world)
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert r.headers["Content-Disposition"].startswith("attachment;")
    streamed = populated.http.get(f"/t/{world.slug}/admin/report.csv", buffered=False)
    assert streamed.is_streamed  # a generator: rows leave as they are read
    streamed.close()
    assert sorted(rows) == sorted([world.alice, world.bob, world.admin, "carol@example.com",
                                   "dave@example.com", "erin@example.com", "frank@example.com",
                                   "gina@example.com"])
    assert "stranger@example.com" not in rows
    assert list(next(iter(rows.values()))) == ["email", "name", "role", "groups", "state",
                                               "factor_types", "admin_state", "locked"]
    carol = rows["carol@example.com"]
    assert (carol["state"], carol["factor_types"], carol["groups"], carol["name"]) == \
        ("on", "backup", "Sales", "Carol")
    assert rows[world.admin]["role"] == "admin" and rows[world.admin]["state"] == "on"
    assert (rows["dave@example.com"]["state"], rows["dave@example.com"]["admin_state"]) == \
        ("required", "enforced")
    assert (rows["erin@example.com"]["state"], rows["erin@example.com"]["admin_state"]) == \
        ("exempt", "exempt")
    gina = rows["gina@example.com"]  # every backup code used: nothing left to answer with
    assert (gina["state"], gina["factor_types"]) == ("optional", "")
    assert rows["frank@example.com"]["groups"] == "Sales"
    assert rows[world.alice]["locked"] == "yes" and rows[world.bob]["locked"] == "no"
    assert rows[world.alice]["state"] == "optional"


def test_the_csv_lists_several_groups_and_factor_types_and_defuses_formulas(app, world):
    add_users(app, world, "hal", group="Sales")
    add_users(app, world, "ivy", group="Ops")
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.add_to_group(session, tenant, "Ops", "hal@example.com", "test")
        hal = directory.find_user(session, tenant, "hal@example.com")
        hal.name = "=HYPERLINK(\"http://evil.test\")"
        session.commit()
    browser = admin_browser(app, world)
    enroll_backup_codes(Browser(app.test_client()), world, email="hal@example.com")
    _, rows = report_csv(browser, world)
    hal = rows["hal@example.com"]
    assert hal["groups"] == "Ops;Sales" and hal["factor_types"] == "backup"
    assert hal["name"].startswith("'=")  # a spreadsheet shows it as text, never runs it
    page = browser.get(f"/t/{world.slug}/admin/report").text
    assert counts(page, "Ops") == {"total": 2, "on": 1, "required": 0, "off": 1}
    assert counts(page, "Sales") == {"total": 1, "on": 1, "required": 0, "off": 0}


def test_the_export_is_audited(app, world):
    browser = admin_browser(app, world)
    browser.http.get(f"/t/{world.slug}/admin/report.csv").get_data()
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        actors = session.scalars(select(AuditEvent.actor).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == "report.exported")).all()
    assert actors == [world.admin]


def test_a_member_gets_403_on_the_report_and_the_export(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.alice)
    assert browser.get(f"/t/{world.slug}/admin/report").status == 403
    r = browser.http.get(f"/t/{world.slug}/admin/report.csv")
    assert r.status_code == 403 and world.bob not in r.get_data(as_text=True)
