"""Invitations from the console: an administrator invites, sends a new link, withdraws; a
two-factor administrator cannot."""

from __future__ import annotations

from idp import db, directory
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field
from tests.support.mailed_links import mailed_paths

DORA = "dora.new@example.com"


def users_page(browser: Browser, world):
    page = browser.get(f"/t/{world.slug}/admin/users")
    assert page.status == 200
    return page


def invite(browser: Browser, world, **form):
    page = users_page(browser, world)
    return browser.post(f"/t/{world.slug}/admin/users/invite",
                        {"csrf_token": field(CSRF, page.text), "email": DORA, "name": "Dora",
                         "role": "member", "groups": "Finance\nSales"} | form)


def dora(app, world):
    with app.app_context():
        found = directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug), DORA)
        return (found.id, found.status, sorted(g.name for g in found.groups)) if found else None


def test_an_administrator_invites_resends_and_withdraws(app, world):
    browser = admin_browser(app, world)
    assert 'id="invite"' in users_page(browser, world).text
    done = invite(browser, world)
    assert done.status == 302
    user_id, status, groups = dora(app, world)
    assert status == "invited" and groups == ["Finance", "Sales"]
    shown = browser.get(done.location).text
    assert "An invitation was mailed to dora.new@example.com" in shown
    assert 'id="invitation-waiting"' in shown
    [first] = mailed_paths(app, world, DORA, "invite")

    resent = browser.post(f"/t/{world.slug}/admin/users/{user_id}/invitation/resend",
                          {"csrf_token": field(CSRF, shown)})
    assert "the earlier link no longer works" in browser.get(resent.location).text
    assert Browser(app.test_client()).get(first).status == 400
    assert len(mailed_paths(app, world, DORA, "invite")) == 2

    gone = browser.post(f"/t/{world.slug}/admin/users/{user_id}/invitation/revoke",
                        {"csrf_token": field(CSRF, shown)})
    assert "was withdrawn" in browser.get(gone.location).text
    assert dora(app, world) is None


def test_inviting_an_existing_account_or_a_bad_address_says_why(app, world):
    browser = admin_browser(app, world)
    page = browser.get(invite(browser, world, email=world.bob).location).text
    assert "Nobody was invited" in page and "already has an account" in page
    page = browser.get(invite(browser, world, email="not an address").location).text
    assert "Nobody was invited" in page and "is not an email address" in page
    page = browser.get(invite(browser, world, role="owner").location).text
    assert "Choose a role from the list" in page


def test_a_two_factor_administrator_cannot_invite(app, world):
    with app.app_context():
        session = db.session()
        directory.create_user(session, app.extensions["idp.passwords"],
                              directory.get_tenant(session, world.slug), "help@example.com",
                              world.password, role="mfa-admin")
        session.commit()
    browser = admin_browser(app, world, email="help@example.com")
    page = users_page(browser, world)
    assert 'id="invite"' not in page.text
    refused = browser.post(f"/t/{world.slug}/admin/users/invite",
                           {"csrf_token": field(CSRF, page.text), "email": DORA, "role": "admin"})
    assert refused.status == 403 and dora(app, world) is None
