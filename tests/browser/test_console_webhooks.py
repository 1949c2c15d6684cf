"""The console's webhooks pages in Chromium at 1280 and 360 px: an administrator adds an
endpoint, copies its secret, sends a test event and reads the delivery log (a first answer of
500, then delivered)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import Page, expect

from tests.support.browser_console import to_console
from tests.support.screens import look_at
from tests.support.webhooks import WebhookReceiver, add_endpoint, deliver, make_due

LONG_URL = "https://crm-integration.lisbon-and-porto.example.com/api/v2/identity/webhooks/receive"


def test_an_admin_manages_webhooks_in_the_browser_at_desktop_and_phone_widths(page: Page, app, live_world):
    world, base = live_world, live_world.issuer
    add_endpoint(app, world, LONG_URL, "user.created", "user.deactivated", "signin.failed")
    found = {}
    with WebhookReceiver(500) as receiver:
        to_console(page, base, "/admin/webhooks", world.admin, world.password)
        expect(page.get_by_role("link", name="Webhooks", exact=True)).to_have_attribute("aria-current", "page")
        found["list"] = look_at(page, "console-webhooks")

        page.locator("#webhook-url").fill(receiver.url)
        page.locator("#webhook-description").fill("Customer records (CRM) in the Lisbon office")
        page.get_by_role("button", name="Add endpoint").click()
        secret = page.locator("#webhook-secret")
        expect(secret).to_have_value(re.compile(r"^whsec_"))
        found["new"] = look_at(page, "console-webhook-new-secret")

        page.get_by_role("button", name="Send a test event").click()
        expect(page.locator(".notice")).to_contain_text("A test event is on its way")
        now = datetime.now(timezone.utc)
        deliver(app, now)  # the receiver answers 500: retried later
        make_due(app, world, now - timedelta(seconds=1))
        deliver(app)  # delivered
        page.reload()
        row = page.locator("table.deliveries tbody tr").first
        expect(row).to_contain_text("webhook.test")
        expect(row).to_contain_text("Delivered")
        found["log"] = look_at(page, "console-webhook")
        assert len(receiver.received) == 2 and receiver.received[0].id == receiver.received[1].id

    wrong = [f"{name} at {device}: {problem}" for name, devices in found.items()
             for device, problems in devices.items() for problem in problems]
    assert not wrong, "\n".join(wrong)
