"""The account page by keyboard alone (issue 21): signing in, adding an authenticator app and
setting up security questions with nothing but Tab, Shift+Tab, Enter, Space, the arrow keys and
typing after the first ``page.goto``. The test reads the page (which element has the focus,
the setup key it shows) but never clicks or fills. A refused form gives the focus to the field
to fix. Then the German account page and app setup, photographed at 1280 and 360 px in
test-output/screens/.
"""

from __future__ import annotations

import re

import pyotp
from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.signin import set_policy

MOST_TABS = 80  # more stops than any account page has


def shoot(page: Page, name: str) -> None:
    """Screenshots at 1280 and 360 px beside the test's others, and its layout checked at both
    widths (``tests.support.screens.look_at``)."""
    wrong = [f"{width}: {problem}" for width, problems in screens.look_at(page, name).items()
             for problem in problems]
    assert not wrong, "\n".join(wrong)


def focused(page: Page) -> dict:
    """What has the keyboard focus: its tag, id, text and href."""
    return page.evaluate("""() => { const e = document.activeElement;
        return {tag: e.tagName.toLowerCase(), id: e.id, text: (e.innerText || e.value || '').trim(),
                href: e.getAttribute('href') || '', invalid: e.getAttribute('aria-invalid')}; }""")


def tab_to(page: Page, wanted, backwards: bool = False) -> dict:
    """Press Tab (Shift+Tab) until the focused element is ``wanted`` (a predicate on
    ``focused``); fails when the keyboard never gets there."""
    seen = []
    for _ in range(MOST_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        now = focused(page)
        if wanted(now):
            return now
        seen.append(now["id"] or now["text"][:30] or now["tag"])
    raise AssertionError(f"the keyboard never reaches it; the focus went {seen}")


def keyboard_sign_in(page: Page, world) -> None:
    """The account page sends to the sign-in form; its address field has the focus."""
    page.goto(world.issuer + "/account")
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(world.alice)
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(world.password)
    page.keyboard.press("Enter")
    expect(page.locator("#signed-in-as")).to_have_text(world.alice)


def test_an_authenticator_app_is_added_by_keyboard_alone(page: Page, app, live_world):
    set_policy(app, live_world, mode="optional", factors=["totp", "kba", "backup"])
    keyboard_sign_in(page, live_world)

    tab_to(page, lambda f: f["text"] == "Add authenticator app")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Add authenticator app")).to_be_visible()
    secret = page.locator("#totp-setup-key").inner_text().replace(" ", "")

    # The app's name is offered; the code field is reached by Tab, and Enter confirms.
    tab_to(page, lambda f: f["id"] == "code")
    page.keyboard.type("000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.keyboard.press("Enter")
    # Refused: the message says why and the code field has the focus again, marked invalid.
    expect(page.locator("#enroll-error")).to_be_visible()
    expect(page.locator("#code")).to_be_focused()
    assert focused(page)["invalid"] == "true"
    assert page.locator("#code").get_attribute("aria-describedby") == "enroll-error"
    assert page.locator("#code").get_attribute("autocomplete") == "one-time-code"
    assert page.locator("#code").get_attribute("inputmode") == "numeric"

    page.keyboard.type(pyotp.TOTP(secret).now())
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Authenticator app added.")
    expect(page.locator("tr[data-factor=totp]")).to_have_count(1)

    # Changing methods again asks for a fresh sign-in (the session predates the app); its
    # link is reached by Tab, and Shift+Tab goes back the way it came.
    tab_to(page, lambda f: f["text"] == "Sign in again to change your sign-in methods")
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#change-password")).to_be_focused()


def test_security_questions_are_set_up_by_keyboard_alone(page: Page, app, live_world):
    set_policy(app, live_world, mode="optional", factors=["totp", "kba", "backup"])
    keyboard_sign_in(page, live_world)

    tab_to(page, lambda f: f["text"] == "Add security questions")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Add security questions")).to_be_visible()

    # Enter before choosing anything: refused, and the focus is on the first question.
    tab_to(page, lambda f: f["id"] == "answer-1")
    page.keyboard.press("Enter")
    expect(page.locator("#enroll-error")).to_contain_text("Choose 5 different questions")
    expect(page.locator("#question-1")).to_be_focused()

    # Each question picked with the arrow keys (a different one each time), its answer typed.
    for i in range(1, 6):
        if i > 1:
            tab_to(page, lambda f, i=i: f["id"] == f"question-{i}")
        for _ in range(i):
            page.keyboard.press("ArrowDown")
        assert page.locator(f"#question-{i}").input_value() != ""
        page.keyboard.press("Tab")
        expect(page.locator(f"#answer-{i}")).to_be_focused()
        page.keyboard.press("Control+A")
        page.keyboard.type(f"answer number {i}")
    page.keyboard.press("Enter")

    # Five answers hashed with argon2 before the page comes back: give it time.
    expect(page.get_by_role("status")).to_have_text("Security questions added.", timeout=30_000)
    expect(page.locator("tr[data-factor=kba]")).to_contain_text("5 questions")


def test_the_german_account_page_and_app_setup_look_right(page: Page, app, live_world):
    set_policy(app, live_world, mode="optional", factors=["totp", "kba", "backup"])
    page.goto(live_world.issuer + "/account?lang=de")
    page.locator("#email").fill(live_world.alice)
    page.locator("#password").fill(live_world.password)
    page.locator("#password").press("Enter")
    expect(page.get_by_role("heading", name="Anmeldung und Sicherheit")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    shoot(page, "account")

    page.get_by_role("link", name="Authentifizierungs-App hinzufügen").click()
    expect(page.get_by_role("heading", name="Authentifizierungs-App hinzufügen")).to_be_visible()
    expect(page.locator("label[for=code]")).to_have_text("Geben Sie den 6-stelligen Code aus der App ein")
    shoot(page, "totp-enroll")
    secret = page.locator("#totp-setup-key").inner_text().replace(" ", "")
    page.locator("#code").fill("12")
    page.locator("#code").press("Enter")
    expect(page.locator("#enroll-error")).to_have_text(
        "Geben Sie den 6-stelligen Code ein, den Ihre Authentifizierungs-App anzeigt.")
    shoot(page, "totp-enroll-refused")
    page.locator("#code").fill(pyotp.TOTP(secret).now())
    page.locator("#code").press("Enter")
    expect(page.get_by_role("status")).to_have_text("Authentifizierungs-App hinzugefügt.")
    row = page.locator("tr[data-factor=totp]")
    expect(row).to_contain_text("Authentifizierungs-App")
    # The date it was added, the German way ("3. Dez. 2026" or "03.12.2026").
    expect(row.locator("td").nth(2)).to_have_text(re.compile(r"^\d{1,2}\.\s?\S+\s?\d{4}$"))
    shoot(page, "account-with-app")
