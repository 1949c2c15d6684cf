"""Codes by email in Chromium, end to end: Alice sets them up on her account page with a code
read from a real SMTP server (aiosmtpd; ``idp serve``'s own background sender mails it), then
a portal sends her to sign in, she types a wrong code, then the right one from a new mail,
and the portal's verified ID token says what happened."""

from __future__ import annotations


from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.browser_portal import Portal
from tests.support.email_code import nth_code
from tests.support.live_server import serve
from tests.support.mailbox import smtp_mailbox
from tests.support.world import make_world

MASKED = "a•••@example.com"


def sign_in_with_password(page: Page, world) -> None:
    page.locator("#email").fill(world.alice)
    page.locator("#password").fill(world.password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_set_up_on_the_account_page_then_a_portal_sign_in_with_a_mailed_code(page: Page, chromium,
                                                                            app, settings, tmp_path):
    with smtp_mailbox() as box:
        server = serve(settings, tmp_path / "server.log", smtp_url=box.url)
        try:
            world = make_world(app, settings, base_url=server.url)

            page.goto(f"{world.issuer}/account")
            sign_in_with_password(page, world)
            expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()
            page.get_by_role("link", name="Add code by email").click()
            expect(page.get_by_role("heading", name="Add code by email")).to_be_visible()
            expect(page.locator("#email-intro")).to_contain_text(f"We will send a code to {world.alice}")
            screens.keep(page, "enroll-send")
            page.get_by_role("button", name="Send code").click()
            expect(page.locator("#email-sent")).to_contain_text(f"We sent a 6-digit code to {world.alice}")
            code = page.get_by_label("Code from the email")
            expect(code).to_be_focused()
            code.fill(nth_code(box, world, 1))
            screens.keep(page, "enroll-code")
            page.get_by_role("button", name="Confirm").click()
            expect(page.get_by_text("Code by email added.")).to_be_visible()
            expect(page.get_by_text(MASKED)).to_be_visible()
            screens.keep(page, "account")

            # The portal, in a browser of its own (no session there yet).
            other = chromium.new_context()
            try:
                tab = other.new_page()
                tab.set_default_timeout(15_000)
                portal = Portal(tab, world)
                tab.goto(portal.url)
                sign_in_with_password(tab, world)
                expect(tab.get_by_role("heading", name="Verify it's you")).to_be_visible()
                expect(tab.locator("#email-sent")).to_have_text(f"We sent a code to {world.alice}.")
                screens.keep(tab, "challenge")
                sent = nth_code(box, world, 2)
                tab.get_by_label("Code from the email").fill(f"{(int(sent) + 1) % 10**6:06d}")
                tab.get_by_role("button", name="Verify").click()
                expect(tab.get_by_role("alert")).to_contain_text("That code is not right")
                screens.keep(tab, "challenge-wrong")
                assert portal.received == []

                tab.get_by_role("button", name="Send a new code").click()
                expect(tab.get_by_role("alert")).to_contain_text("You can ask for a new one in")
                tab.get_by_label("Code from the email").fill(sent)
                tab.get_by_role("button", name="Verify").click()
                expect(tab.get_by_role("heading", name="Welcome back")).to_be_visible()
                claims = portal.id_token()
                assert (claims["amr"], claims["acr"]) == (["pwd", "otp", "mfa"], "mfa")
            finally:
                other.close()
        finally:
            server.stop()
