"""The console's registration tokens (Portals page, "Let developers register portals
themselves"): create one (shown once, and it registers a portal), see it listed without the
token, revoke it (it registers nothing more) — each audited with the admin."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from idp import db, directory
from idp.models import AuditEvent
from tests.support.console import admin_browser
from tests.support.journey import CSRF, field
from tests.support.registration import metadata

TOKEN = re.compile(r'id="registration-token" value="([^"]+)"')


def portals(world, *rest):
    return "/".join([f"/t/{world.slug}/admin/portals", *rest])


def create(browser, world, **form):
    page = browser.get(portals(world)).text
    return browser.post(portals(world, "registration-tokens"),
                        {"csrf_token": field(CSRF, page), "name": "Payroll app team",
                         "days": "30", "uses": "2", **form})


def test_an_admin_creates_lists_and_revokes_a_registration_token(app, world):
    browser = admin_browser(app, world)
    page = create(browser, world)
    assert page.status == 200 and page.headers.get("Cache-Control") == "no-store"
    token = html.unescape(TOKEN.search(page.text).group(1))
    assert "Payroll app team" in page.text and "copy it now" in page.text
    assert f"/t/{world.slug}/register" in page.text
    # Shown once: the list shows the token's name and state, never the token.
    listed = browser.get(portals(world)).text
    assert token not in listed and "Payroll app team" in listed and "Active" in listed
    # It registers a portal, which appears in the list above.
    r = app.test_client().post(f"/t/{world.slug}/register", json=metadata(),
                               headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201
    listed = browser.get(portals(world)).text
    assert r.get_json()["client_id"] in listed
    token_id = re.search(r'data-token="([^"]+)"', listed).group(1)
    page = browser.post(portals(world, "registration-tokens", token_id, "revoke"),
                        {"csrf_token": field(CSRF, listed)})
    assert page.status == 302
    listed = browser.get(portals(world)).text
    assert "Revoked" in listed and "is revoked" in listed
    r = app.test_client().post(f"/t/{world.slug}/register", json=metadata(),
                               headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        actions = db.session().scalars(select(AuditEvent.action).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.actor == world.admin,
            AuditEvent.action.like("registration_token.%"))).all()
    assert sorted(actions) == ["registration_token.created", "registration_token.revoked"]


def test_a_refused_token_form_says_why_and_keeps_what_was_typed(app, world):
    browser = admin_browser(app, world)
    page = create(browser, world, name="", days="30")
    assert page.status == 400 and "needs a name" in page.text
    page = create(browser, world, name="Partner", days="soon")
    assert page.status == 400 and "whole number" in page.text and 'value="Partner"' in page.text
    # Said under the field it is about, and read out with it.
    assert re.search(r'id="token-days"[^>]*aria-describedby="token-error token-days-help"'
                     r'[^>]*>\s*<p class="error" role="alert" id="token-error">[^<]*whole number',
                     page.text)
    page = create(browser, world, name="Partner", days="", uses="0")
    assert page.status == 400 and "between 1 and" in page.text
    assert TOKEN.search(page.text) is None
    other = browser.post(portals(world, "registration-tokens", "nope", "revoke"),
                         {"csrf_token": field(CSRF, browser.get(portals(world)).text)})
    assert other.status == 404
