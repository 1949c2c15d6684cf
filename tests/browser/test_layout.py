"""Every console page, the account page and the sign-in setup pages in Chromium at 1280 and
360 px: each tick box and radio button sits beside its words, nothing is wider than its card or
the window, and icons are drawn (inline SVG, never an emoji that shows as an empty box where no
emoji font is installed). Issue 16, defect 6.

Runs ``idp serve`` on the test backend (SQLite + embedded store, or PostgreSQL + Redis); the
screenshots of each page at each width are with every browser test's (tests/README.md).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pyotp
from playwright.sync_api import Page, expect
from sqlalchemy import select

from idp.admin import invitations, webhooks
from idp import admin, db, directory
from idp.models import Group
from tests.support.browsers import SAFARI_ON_IPHONE
from tests.support.screens import look_at

LONG_GROUP = "Finance, accounting and payroll (Lisbon office)"
LONG_EMAIL = "maria-fernanda.de-albuquerque-figueiredo@accounts.example.com"
FORMER = "leonor.former@example.com"  # deactivated
HELPDESK = "helpdesk@example.com"  # a two-factor administrator
INVITED = "ines.invited@example.com"  # invited, not in yet


def _furnish(app, world) -> None:
    """A tenant that looks lived in: groups, a long group name and email, a rollout by group."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        passwords = app.extensions["idp.passwords"]
        for group in (LONG_GROUP, "Support"):
            admin.create_group(session, tenant, group, "test")
        directory.create_user(session, passwords, tenant, LONG_EMAIL, world.password,
                              name="Maria Fernanda de Albuquerque Figueiredo", groups=[LONG_GROUP])
        admin.add_to_group(session, tenant, LONG_GROUP, world.alice, "test")
        admin.add_to_group(session, tenant, "Support", world.bob, "test")
        admin.set_user_mfa(session, tenant, world.bob, "enforce", "test")
        directory.create_user(session, passwords, tenant, FORMER, world.password,
                              name="Leonor Former", groups=[LONG_GROUP])
        admin.deactivate(session, None, tenant, FORMER, "test")
        directory.create_user(session, passwords, tenant, HELPDESK, world.password,
                              name="Helpdesk", role="mfa-admin")
        invitations.invite(session, app.config["IDP"], tenant, INVITED, world.admin,
                           name="Inês Invited", groups=["Support"])
        admin.set_policy(session, tenant, "test", mode="optional", groups=[LONG_GROUP],
                         password_min_length=12, self_registration=True,
                         registration_domains=["accounts.example.com", "lisbon-and-porto.example.com"])
        admin.add_upstream(session, app.extensions["idp.secretbox"], tenant, slug="corp",
                           name="Corporate sign-in (Lisbon and Porto offices)",
                           issuer="https://sso.lisbon-and-porto.example.com", client_id="idp",
                           client_secret="not used here", email_domains=["accounts.example.com"],
                           trust_mfa="never", actor="test")
        webhooks.create_endpoint(session, app.extensions["idp.secretbox"], tenant, "test",
                                 "https://crm.lisbon-and-porto.example.com/api/v2/identity/webhooks",
                                 description="Customer records (Lisbon office)",
                                 event_types=["user.created", "signin.failed"])
        session.commit()


def _ids(app, world) -> dict[str, int]:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return {
            "alice": directory.find_user(session, tenant, world.alice).id,
            "long": directory.find_user(session, tenant, LONG_EMAIL).id,
            "former": directory.find_user(session, tenant, FORMER).id,
            "invited": directory.find_user(session, tenant, INVITED).id,
            "admin": directory.find_user(session, tenant, world.admin).id,
            "group": session.scalar(select(Group.id).where(Group.tenant_id == tenant.id,
                                                           Group.name == LONG_GROUP)),
            "webhook": webhooks.endpoints(session, tenant)[0].public_id,
        }


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill the sign-in form (the caller presses the button)."""
    expect(page.locator("#email")).to_be_visible()
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)


def test_every_console_and_setup_page_lays_out_at_desktop_and_phone_widths(page: Page, chromium, app, live_world):
    world = live_world
    _furnish(app, world)
    ids = _ids(app, world)
    base = world.issuer
    found: dict[str, dict[str, list[str]]] = {}

    def look(on: Page, name: str) -> None:
        found[name] = look_at(on, name)

    # The pages of someone without a session: sign-up and a forgotten password.
    visitor = chromium.new_context().new_page()
    try:
        for name, path in (("signup", "/signup"), ("forgot", "/login/forgot")):
            response = visitor.goto(base + path)
            assert response and response.status == 200, (name, response and response.status)
            look(visitor, name)
    finally:
        visitor.context.close()

    # Bob, whom an administrator made set up a second step, signs in to his account page.
    bob = chromium.new_context().new_page()
    try:
        bob.goto(base + "/account")
        sign_in(bob, world.bob, world.password)
        look(bob, "login")
        bob.get_by_role("button", name="Sign in", exact=True).click()
        expect(bob).to_have_url(re.compile(re.escape(base) + r"/login/setup\b"))
        look(bob, "login-setup")
        bob.get_by_role("link", name="Security questions").click()
        expect(bob.locator("#question-1")).to_be_visible()
        look(bob, "login-setup-questions")
    finally:
        bob.context.close()

    def to_console(on: Page, email: str, shots: bool) -> None:
        """The console asks its admin, who has no second step yet, to set one up first."""
        on.goto(base + "/admin/users")
        sign_in(on, email, world.password)
        on.get_by_role("button", name="Sign in", exact=True).click()
        on.get_by_role("link", name="Authenticator app").click()
        key = on.locator("#totp-setup-key").inner_text().replace(" ", "")
        if shots:
            look(on, "login-setup-totp")
        on.get_by_label(re.compile("digit code the app shows")).fill(pyotp.TOTP(key).now())
        on.get_by_role("button", name="Confirm").click()
        if shots:
            look(on, "login-backup-offer")
        on.locator("#continue").click()  # "Not now" on the backup-codes offer
        expect(on).to_have_url(re.compile(re.escape(base) + r"/admin/users\b"))

    to_console(page, world.admin, shots=True)

    pages = {
        "console-users": "/admin/users",
        "console-user": f"/admin/users/{ids['long']}",
        "console-user-alice": f"/admin/users/{ids['alice']}",
        "console-user-deactivated": f"/admin/users/{ids['former']}",
        "console-user-invited": f"/admin/users/{ids['invited']}",
        "console-user-delete": f"/admin/users/{ids['long']}/delete",
        "console-users-filtered": f"/admin/users?mfa=off&status=deactivated&group={quote(LONG_GROUP)}",
        "console-users-group": f"/admin/users?group={quote(LONG_GROUP)}",
        "console-policy": "/admin/policy",
        "console-policy-what-if": f"/admin/policy?email={world.alice}&portal={world.portal.client_id}&acr=mfa#what-if",
        "console-groups": "/admin/groups",
        "console-group": f"/admin/groups/{ids['group']}",
        "console-portals": "/admin/portals",
        "console-portal": f"/admin/portals/{world.portal.client_id}",
        "console-service": f"/admin/portals/{world.service.client_id}",
        "console-report": "/admin/report",
        "console-audit": "/admin/audit",
        "console-upstreams": "/admin/upstreams",
        "console-upstream": "/admin/upstreams/corp",
        "console-webhooks": "/admin/webhooks",
        "console-webhook": f"/admin/webhooks/{ids['webhook']}",
        "console-branding": "/admin/branding",
        "account": "/account",
        "account-password": "/account/password",
    }
    for name, path in pages.items():
        response = page.goto(base + path)
        assert response and response.status == 200, (name, response and response.status)
        look(page, name)

    # Alice's account page, where she adds methods of her own; she is signed in on her phone
    # too, so the page lists two browsers.
    alice = chromium.new_context().new_page()
    phone = chromium.new_context(user_agent=SAFARI_ON_IPHONE).new_page()
    try:
        for browser in (phone, alice):
            browser.goto(base + "/account")
            sign_in(browser, world.alice, world.password)
            browser.get_by_role("button", name="Sign in", exact=True).click()
            expect(browser.locator("#signed-in-as")).to_have_text(world.alice.lower())
        expect(alice.locator("table.sessions tbody tr")).to_have_count(2)
        look(alice, "account-alice")
        for name, factor in (("questions", "kba"), ("totp", "totp"), ("passkey", "webauthn"),
                             ("email", "email"), ("sms", "sms"), ("backup", "backup")):
            response = alice.goto(f"{base}/account/add/{factor}")
            assert response and response.status == 200, (factor, response and response.status)
            look(alice, f"account-add-{name}")
    finally:
        alice.context.close()
        phone.context.close()

    # A two-factor administrator's console: the users and the report, and no button on an
    # administrator's page.
    helpdesk = chromium.new_context().new_page()
    try:
        to_console(helpdesk, HELPDESK, shots=False)
        look(helpdesk, "console-users-mfa-admin")
        helpdesk.goto(base + f"/admin/users/{ids['admin']}")
        look(helpdesk, "console-user-mfa-admin")
    finally:
        helpdesk.context.close()

    # The pages a POST answers with: a new portal's secret, and a sign-in link.
    page.goto(base + "/admin/portals")
    page.locator("#portal-name").fill("Expense claims for the Lisbon office (staging)")
    page.locator("#portal-redirect-uris").fill(
        "https://expenses-staging.lisbon.example.com/oauth2/callback/with/a/rather/long/path")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#client-secret")).to_be_visible()
    look(page, "console-portal-new-secret")
    page.goto(base + f"/admin/users/{ids['long']}")
    expect(page.locator("html")).to_have_attribute("data-console", "ready")
    page.get_by_role("button", name="Deactivate").click()  # the confirmation, in plain words
    expect(page.locator("#confirm-text")).to_contain_text("They are signed out everywhere now")
    look(page, "console-confirm-deactivate")
    page.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Create a sign-in link").click()
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#login-token-url")).to_be_visible()
    look(page, "console-login-link")

    wrong = [f"{name} at {device}: {problem}" for name, devices in found.items()
             for device, problems in devices.items() for problem in problems]
    assert not wrong, "\n".join(wrong)

    # The shields on the users list are drawn icons with words for screen readers.
    page.goto(base + "/admin/users")
    shield = page.get_by_role("button", name=f"Turn on two-step verification for {world.alice}")
    icon = shield.locator("svg")
    expect(icon).to_have_count(1)
    box = icon.bounding_box()
    assert box and box["width"] >= 10 and box["height"] >= 10, box
    assert icon.get_attribute("aria-hidden") == "true"
