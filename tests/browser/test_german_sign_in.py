"""A German sign-in end to end in Chromium (issue 21, point 4): a portal sends the person to
/authorize with ``ui_locales=de``; the sign-in page, the second step and the consent page
speak German (``<html lang="de">``), and the portal gets its tokens. And the language
switcher: a choice made on the sign-in page is remembered on the next page.

Screenshots of the German pages go to test-output/screens/ at desktop and phone widths.
"""

from __future__ import annotations


import pytest
from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.browser_portal import Portal
from tests.support.signin import set_policy
from tests.support.totp import totp_code, with_totp



def shoot(page: Page, name: str) -> None:
    """Screenshots at 1280 and 360 px beside the test's others (``tests.support.screens``),
    and nothing out of place at either width: long German words wrap, nothing overflows."""
    wrong = [f"{width}: {problem}" for width, problems in screens.look_at(page, name).items()
             for problem in problems]
    assert not wrong, "\n".join(wrong)


def no_overflow(page: Page) -> None:
    """Nothing wider than the page at a phone's width or a desktop's."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.fixture
def portal(page: Page, live_world) -> Portal:
    return Portal(page, live_world)


def test_a_german_sign_in_from_the_portal_to_its_tokens(page: Page, app, live_world, portal):
    set_policy(app, live_world, mode="required", factors=["totp", "backup"])
    seed = with_totp(app, live_world)

    page.goto(portal.url + "&ui_locales=de&prompt=consent")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    expect(page.get_by_text("um zu")).to_contain_text("Portal")
    expect(page.get_by_label("Passwort")).to_have_attribute("autocomplete", "current-password")
    no_overflow(page)
    shoot(page, "login-de")

    # A wrong password first: the German message, announced, and the password to retry.
    page.get_by_label("E-Mail").fill(live_world.alice)
    page.get_by_label("Passwort").fill("nicht das Passwort")
    page.get_by_role("button", name="Anmelden", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("E-Mail-Adresse oder Passwort ist falsch.")
    expect(page.get_by_label("Passwort")).to_be_focused()
    shoot(page, "login-de-error")

    page.get_by_label("Passwort").fill(live_world.password)
    page.get_by_role("button", name="Anmelden", exact=True).click()

    # The second step: still German, with the code the app shows.
    expect(page.get_by_role("heading", name="Bestätigen Sie, dass Sie es sind")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_text("Anmeldung als")).to_contain_text(live_world.alice)
    no_overflow(page)
    shoot(page, "second-factor-de")
    code = page.locator("#code")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    code.fill(totp_code(seed))
    page.locator("#factor-form button[type=submit]").first.click()

    # Consent, asked for by the portal (prompt=consent): German too.
    expect(page.get_by_role("heading", name="Portal zulassen?")).to_be_visible()
    expect(page.get_by_text("zu wissen, wer Sie sind")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    no_overflow(page)
    shoot(page, "consent-de")
    page.get_by_role("button", name="Zulassen").click()

    expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
    claims = portal.id_token()
    assert claims["email"] == live_world.alice
    assert "otp" in claims["amr"] and claims["acr"] == "mfa"


def test_the_switcher_changes_the_language_and_it_is_remembered(page: Page, live_world, portal):
    page.goto(portal.url)
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    switcher = page.get_by_role("navigation", name="Language")
    switcher.get_by_role("link", name="Français").click()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    expect(page.get_by_role("navigation", name="Langue").get_by_role("link", name="Français")) \
        .to_have_attribute("aria-current", "true")
    # The sign-in still goes on (the switcher kept its request) ...
    page.get_by_label("E-mail").fill(live_world.alice)
    page.get_by_label("Mot de passe").fill("pas le mot de passe")
    page.get_by_role("button", name="Se connecter", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Adresse e-mail ou mot de passe incorrect.")
    # ... and a page opened afterwards, even one asking for German, speaks the chosen language.
    page.goto(portal.url + "&ui_locales=de")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.goto(f"{live_world.issuer}/login/forgot")
    expect(page.get_by_role("heading", name="Réinitialiser votre mot de passe")).to_be_visible()


def test_the_edge_pages_in_german_read_well_on_a_phone(chromium, live_world):
    """An application the organisation does not know (the portal asked for German), and a
    sign-in that expired (the browser prefers German): what happened, what to do, the detail
    small and last; nothing wider than a phone."""
    context = chromium.new_context(locale="de-DE")
    try:
        page = context.new_page()
        portal = Portal(page, live_world)
        page.goto(portal.url.replace(live_world.portal.client_id, "unbekannte-anwendung")
                  + "&ui_locales=de")
        expect(page.get_by_role("heading", name="Unbekannte Anwendung")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("nicht registriert")
        expect(page.locator("#error-hint")).to_contain_text("Gehen Sie zurück zur Anwendung")
        no_overflow(page)
        shoot(page, "unknown-application-de")

        page.goto(f"{live_world.issuer}/authorize/resume?tx=abgelaufen")
        expect(page.get_by_role("heading", name="Diese Anmeldung ist abgelaufen")).to_be_visible()
        no_overflow(page)
        shoot(page, "expired-de")
        page.get_by_role("link", name="Stattdessen hier anmelden").click()
        expect(page.get_by_role("heading", name="Anmelden")).to_be_visible()
    finally:
        context.close()
