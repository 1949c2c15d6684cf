"""Journeys done with the keyboard alone (issue 21, point 3): after the first page is opened,
the tests only press keys (Tab, Shift+Tab, Enter, Space, Escape) and type, as someone who
cannot use a mouse would. They read the page to know where the focus is, never click or fill.

- Sign-in through a real portal (the demo relying party) with a password and an authenticator
  app code, ending at the portal with its tokens; the focus is visible on the sign-in form.
- After a wrong password the focus is back on the password and the error is announced.
- The console's two-step verification toggle on a user's page with its confirmation dialog:
  Escape cancels, Enter confirms, and the change is made.

Runs ``idp serve`` on the test backend (TOTP enrollment and security questions by keyboard
are in the account page's tests).
"""

from __future__ import annotations

import re

import pyotp
import pytest
from playwright.sync_api import Page, expect

from idp import db, directory
from tests.support.live_portal import serve_portal
from tests.support.totp import with_totp

MOST_TABS = 60  # more stops than any of these pages has


@pytest.fixture
def portal(app, live_world):
    served = serve_portal(app, live_world)
    yield served
    served.stop()


def focused(page: Page, selector: str) -> bool:
    return page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)",
                         selector)


def tab_to(page: Page, selector: str, backwards: bool = False) -> None:
    """Tab (or Shift+Tab) until the element ``selector`` has the focus."""
    key = "Shift+Tab" if backwards else "Tab"
    for _ in range(MOST_TABS):
        if focused(page, selector):
            return
        page.keyboard.press(key)
    raise AssertionError(f"{MOST_TABS} presses of {key} never reached {selector} on {page.url}")


def focus_ring(page: Page) -> str:
    """How the focused element shows it has the focus ('' when it does not show it)."""
    return page.evaluate("""() => {
      const style = getComputedStyle(document.activeElement);
      const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
        && style.outlineColor !== 'rgba(0, 0, 0, 0)';
      if (outline) return `outline ${style.outlineWidth} ${style.outlineStyle} ${style.outlineColor}`;
      return style.boxShadow !== 'none' ? `box-shadow ${style.boxShadow}` : '';
    }""")


def assert_focus_shows(page: Page, selector: str) -> None:
    expect(page.locator(selector)).to_be_focused()
    assert focus_ring(page), f"{selector} has the focus on {page.url} but nothing shows it"


def test_sign_in_through_a_portal_with_a_password_and_an_app_code_by_keyboard(
        page: Page, app, live_world, portal):
    world = live_world
    seed = with_totp(app, world)
    page.goto(portal.url + "/")

    tab_to(page, "a[href='/login']")  # the portal's "Sign in with idp"
    page.keyboard.press("Enter")

    # The sign-in form: the email has the focus, each stop shows where the keyboard is.
    expect(page.locator("#email")).to_be_focused()
    assert_focus_shows(page, "#email")
    page.keyboard.type(world.alice)
    page.keyboard.press("Tab")
    assert_focus_shows(page, "#password")
    page.keyboard.type(world.password)
    tab_to(page, "form[method=post] button[type=submit]")
    assert_focus_shows(page, "form[method=post] button[type=submit]")
    page.keyboard.press("Shift+Tab")
    assert_focus_shows(page, "#password")
    page.keyboard.press("Enter")

    # The second step: the code field has the focus; Enter sends it.
    expect(page.locator("#code")).to_be_focused()
    assert_focus_shows(page, "#code")
    page.keyboard.type(pyotp.TOTP(seed).now())
    page.keyboard.press("Enter")

    # Back at the portal, which verified the ID token: signed in with a password and an app.
    expect(page.get_by_role("heading", name=f"Signed in as {world.alice.lower()}")).to_be_visible()
    amr = page.locator("dt:has-text('Methods (amr)') + dd").inner_text()
    assert "pwd" in amr and "otp" in amr, amr


def test_after_a_wrong_password_the_focus_is_on_the_password_and_the_error_is_announced(
        page: Page, app, live_world, portal):
    world = live_world
    page.goto(portal.url + "/")
    tab_to(page, "a[href='/login']")
    page.keyboard.press("Enter")
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(world.alice)
    page.keyboard.press("Tab")
    page.keyboard.type("not her password")
    page.keyboard.press("Enter")

    # The page comes back with the email kept and the focus on the password, to retry; the
    # error is said by a screen reader (an alert, and the field's description).
    error = page.locator("#login-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("role", "alert")
    expect(page.locator("#email")).to_have_value(world.alice)
    assert_focus_shows(page, "#password")
    described = (page.locator("#password").get_attribute("aria-describedby") or "").split()
    assert "login-error" in described, described

    # Typing the right one and Enter is all it takes.
    page.keyboard.type(world.password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Signed in as {world.alice.lower()}")).to_be_visible()


def mfa_state(app, world, email: str) -> str:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug),
                                   email).mfa_admin_state


def test_the_console_two_step_toggle_and_its_confirmation_by_keyboard(
        page: Page, app, live_world):
    world = live_world
    seed = with_totp(app, world, world.admin)
    alice = f"/admin/users/{_user_id(app, world, world.alice)}"
    page.goto(world.issuer + "/admin/users")

    # The administrator signs in: password, then the code of their app.
    expect(page.locator("#email")).to_be_focused()
    page.keyboard.type(world.admin)
    page.keyboard.press("Tab")
    page.keyboard.type(world.password)
    page.keyboard.press("Enter")
    expect(page.locator("#code")).to_be_focused()
    page.keyboard.type(pyotp.TOTP(seed).now())
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(world.issuer) + r"/admin/users\b"))

    # From the users list to Alice's page.
    tab_to(page, f"a[href$='{alice}']")
    assert focus_ring(page), "the link to Alice's page has the focus but nothing shows it"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(alice) + "$"))
    expect(page.locator("html")).to_have_attribute("data-console", "ready")
    shield = page.locator("[data-shield]")
    before = shield.get_attribute("data-shield")
    turn_on = "form[action$='/enforce'] button"

    # "Turn on", then Escape: the dialog closes, nothing changes, the focus is back on the button.
    tab_to(page, turn_on)
    assert_focus_shows(page, turn_on)
    page.keyboard.press("Enter")
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text(world.alice)
    assert_focus_shows(page, "#confirm-yes")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator(turn_on)).to_be_focused()
    expect(shield).to_have_attribute("data-shield", before)
    assert mfa_state(app, world, world.alice) == "default"

    # Space on "Turn on" opens it again; Tab walks inside the dialog; Enter on Confirm does it.
    page.keyboard.press("Space")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-yes")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.locator("#confirm-dialog button.secondary")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.locator("#confirm-yes")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(world.alice)
    expect(shield).not_to_have_attribute("data-shield", before)
    expect(page.locator("form[action$='/exempt'] button")).to_be_visible()
    expect(page.locator(turn_on)).to_have_count(0)
    assert mfa_state(app, world, world.alice) == "enforced"


def _user_id(app, world, email: str) -> int:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).id
