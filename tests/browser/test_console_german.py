"""The console in German in Chromium (issue 21): an admin chooses Deutsch on the language
switcher, and the users list, a user page, the policy page and the report lay out at 1280 and
360 px with their longer German words (labels beside their boxes, nothing wider than its card
or the window); the confirmation dialog and the flash message after an action are German.

Screenshots of each page at each width go to test-output/screens/ (tests/README.md) for a person
to look at.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect

from idp import admin, db, directory
from tests.support.browser_console import to_console
from tests.support.screens import look_at

LONG_GROUP = "Finanzbuchhaltung und Lohnabrechnung (Niederlassung München)"


def _furnish(app, world) -> None:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.create_group(session, tenant, LONG_GROUP, "test")
        admin.add_to_group(session, tenant, LONG_GROUP, world.alice, "test")
        admin.set_user_mfa(session, tenant, world.bob, "enforce", "test")
        admin.set_policy(session, tenant, "test", mode="optional", groups=[LONG_GROUP])
        session.commit()


def test_the_german_console_reads_and_lays_out_right(page: Page, app, live_world):
    world = live_world
    _furnish(app, world)
    base = world.issuer
    to_console(page, base, "/admin/users", world.admin, world.password)

    # The switcher under the page: Deutsch, remembered for the next pages.
    page.get_by_role("link", name="Deutsch").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", level=1)).to_have_text("Benutzer")
    nav = page.get_by_role("navigation", name="Konsole")
    expect(nav.get_by_role("link", name="Richtlinie")).to_be_visible()
    expect(nav.get_by_role("link", name="Benutzer")).to_have_attribute("aria-current", "page")

    found = {}
    for name, path in (("users", "/admin/users"), ("policy", "/admin/policy"),
                       ("report", "/admin/report"), ("groups", "/admin/groups")):
        response = page.goto(base + path)
        assert response and response.status == 200, (name, response and response.status)
        expect(page.locator("html")).to_have_attribute("lang", "de")
        found[name] = look_at(page, name)
    expect(page.get_by_role("heading", level=1)).to_have_text("Gruppen")

    # Alice's page: the confirmation asks in German, and so does the answer.
    page.goto(base + "/admin/users")
    page.get_by_role("link", name=world.alice).click()
    expect(page.get_by_role("heading", name="Anmeldemethoden")).to_be_visible()
    found["user"] = look_at(page, "user")
    expect(page.locator("html")).to_have_attribute("data-console", "ready")
    page.get_by_role("button", name="Einschalten").click()
    expect(page.locator("#confirm-text")).to_have_text(
        f"Bestätigung in zwei Schritten für {world.alice} einschalten? Die Person richtet sie bei "
        "der nächsten Anmeldung ein und kann sie nicht ausschalten.")
    found["confirm"] = look_at(page, "user-confirm")
    page.get_by_role("button", name="Bestätigen").click()
    expect(page.get_by_role("status").filter(has_text="Die Bestätigung in zwei Schritten ist für")
           ).to_have_text(f"Die Bestätigung in zwei Schritten ist für {world.alice} eingeschaltet.")
    found["user-flash"] = look_at(page, "user-flash")

    wrong = [f"{name} at {device}: {problem}" for name, devices in found.items()
             for device, problems in devices.items() for problem in problems]
    assert not wrong, "\n".join(wrong)
