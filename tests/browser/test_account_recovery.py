"""A forgotten password in Chromium, end to end: the portal sends Alice to sign in, she asks for
a link, reads it from a real SMTP server (aiosmtpd; ``idp serve``'s own background sender
mails it), chooses a new password, is still asked for her authenticator app's code, and the
portal gets its code."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.browser_portal import Portal
from tests.support.live_server import serve
from tests.support.mailbox import smtp_mailbox, tenant_mail
from tests.support.totp import totp_code, with_totp
from tests.support.world import make_world

NEW = "four unrelated words, say"


def test_forgot_password_then_the_second_factor_then_the_portal(page: Page, app, settings,
                                                                 tmp_path):
    with smtp_mailbox() as box:
        server = serve(settings, tmp_path / "server.log", smtp_url=box.url)
        try:
            world = make_world(app, settings, base_url=server.url)
            seed = with_totp(app, world)
            portal = Portal(page, world)

            page.goto(portal.url)
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            screens.keep(page, "login")
            page.get_by_role("link", name="Forgot your password?").click()
            expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
            page.get_by_label("Email").fill(world.alice)
            screens.keep(page, "forgot")
            page.get_by_role("button", name="Send the link").click()
            expect(page.get_by_role("heading", name="Check your mail")).to_be_visible()
            screens.keep(page, "forgot-sent")

            [mail] = box.wait_for(world.alice, world)
            assert "Reset your" in mail.subject and "Choose a new password" in mail.html
            link = re.search(r"https?://\S+/login/reset/\S+", mail.text).group(0)
            page.goto(link)
            expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
            page.get_by_label("New password").fill("short")
            page.get_by_label("The same password again").fill("short")
            page.get_by_role("button", name="Set the password").click()
            expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
            screens.keep(page, "reset-error")
            page.get_by_label("New password").fill(NEW)
            page.get_by_label("The same password again").fill(NEW)
            screens.keep(page, "reset")
            page.get_by_role("button", name="Set the password").click()

            # A reset proves the mailbox, nothing more: the app's code is still asked for.
            code = page.get_by_label("Code from your authenticator app")
            expect(code).to_be_visible()
            screens.keep(page, "after-reset-second-factor")
            assert portal.received == []
            code.fill(totp_code(seed))
            page.get_by_role("button", name="Verify").click()
            expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
            claims = portal.id_token()
            assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"

            [changed] = [m for m in box.wait_for(world.alice, world, count=2)
                         if "was changed" in m.subject]
            assert "reset through a link mailed to this address" in changed.text
            assert tenant_mail(box, world, world.alice)[0].message_id != changed.message_id
        finally:
            server.stop()


def test_an_invitation_then_a_forced_setup_then_the_portal(page: Page, app, settings, tmp_path):
    from dataclasses import replace

    from idp import db, directory
    from idp.admin import invitations
    from tests.support.signin import set_policy

    with smtp_mailbox() as box:
        server = serve(settings, tmp_path / "server.log", smtp_url=box.url)
        try:
            world = make_world(app, settings, base_url=server.url)
            set_policy(app, world, mode="required", groups=[], users=[], factors=["totp", "backup"])
            portal = Portal(page, world)
            with app.app_context():  # the admin's invitation, as the console makes it
                session = db.session()
                invitations.invite(session, replace(settings, base_url=server.url, smtp_url=box.url),
                                   directory.get_tenant(session, world.slug), "dora@example.com",
                                   world.admin, name="Dora", groups=["Finance"])
                session.commit()
            [mail] = box.wait_for("dora@example.com", world)  # the server's sender mailed it
            assert "You are invited" in mail.subject and "Set up my account" in mail.html
            page.goto(re.search(r"https?://\S+/login/invitation/\S+", mail.text).group(0))
            expect(page.get_by_role("heading", name="Welcome, Dora")).to_be_visible()
            page.get_by_label("Password", exact=True).fill(NEW)
            page.get_by_label("The same password again").fill(NEW)
            screens.keep(page, "invitation")
            page.get_by_role("button", name="Set up my account").click()

            # The policy requires a second factor: its setup comes at once.
            expect(page.locator("#totp-setup-key")).to_be_visible()
            screens.keep(page, "invitation-forced-setup")
            secret = page.locator("#totp-setup-key").inner_text().replace(" ", "")
            page.fill("#code", totp_code_for(secret))
            page.locator("#enroll-form button[type=submit]").first.click()
            expect(page.get_by_role("heading", name="Save backup codes in case you lose your phone")).to_be_visible()
            page.locator("#continue").click()
            expect(page.get_by_role("heading", name="Sign-in and security")).to_be_visible()
            screens.keep(page, "invitation-account")

            # Then the portal: signed in already, it gets its code, and the token says how
            # (followed from a page, as a portal's "Sign in" link would be).
            page.evaluate("url => { window.location.href = url; }", portal.url)
            expect(page.get_by_role("heading", name="Welcome back")).to_be_visible()
            claims = portal.id_token()
            assert claims["acr"] == "mfa" and "otp" in claims["amr"]
        finally:
            server.stop()


def totp_code_for(secret: str) -> str:
    import pyotp

    return pyotp.TOTP(secret).now()
