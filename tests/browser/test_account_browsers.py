"""Two browsers signed in as one person, in Chromium against ``idp serve``: a laptop (this
Chromium) and a phone (an iPhone's Safari, by its User-Agent). The laptop's account page lists
both, the phone by name; its "Sign out" on the phone's row signs the phone out, which the
phone sees at its next page.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support.browsers import SAFARI_ON_IPHONE
from tests.support.demo_pages import submit_login
from tests.support.screens import look_at



def _sign_in_to_account(page: Page, world) -> None:
    page.goto(world.issuer + "/account")
    submit_login(page, world.alice, world.password)
    expect(page.locator("#signed-in-as")).to_have_text(world.alice)


def test_a_laptop_signs_the_phone_out_from_its_account_page(page: Page, chromium, live_world):
    world = live_world
    phone = chromium.new_context(user_agent=SAFARI_ON_IPHONE).new_page()
    try:
        _sign_in_to_account(phone, world)
        _sign_in_to_account(page, world)
        rows = page.locator("table.sessions tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("This browser")
        expect(rows.nth(1)).to_contain_text("Mobile Safari 17 on iOS 17")
        expect(page.locator("#email-state")).to_have_text("Not verified yet")
        phone.reload()  # the phone's page, opened before the laptop signed in, shows it now
        expect(phone.locator("table.sessions tbody tr")).to_have_count(2)
        expect(phone.locator("table.sessions tbody tr").first).to_contain_text("Mobile Safari 17 on iOS 17")
        wrong = {f"{width}: {problem}" for width, problems
                 in look_at(page, "account-two-browsers").items() for problem in problems}
        wrong |= {f"phone {width}: {problem}" for width, problems
                  in look_at(phone, "account-seen-from-the-phone").items() for problem in problems}
        assert not wrong, "\n".join(sorted(wrong))

        page.get_by_role("button", name=re.compile(r"^Sign out Mobile Safari 17 on iOS 17")).click()
        expect(page.get_by_role("status")).to_have_text("Mobile Safari 17 on iOS 17 is signed out.")
        expect(rows).to_have_count(1)
        expect(page.get_by_text("You are signed in on this browser only.")).to_be_visible()
        look_at(page, "account-after-signing-the-phone-out")

        phone.reload()  # the phone's next page: the sign-in form, not the account
        expect(phone.locator("#password")).to_be_visible()
        expect(phone.locator("#signed-in-as")).to_have_count(0)
        page.reload()
        expect(page.locator("#signed-in-as")).to_have_text(world.alice)

        page.locator("#sign-out").click()  # and this browser's own sign-out
        expect(page.get_by_role("heading", name="You are signed out")).to_be_visible()
        page.goto(world.issuer + "/account")
        expect(page.locator("#password")).to_be_visible()
    finally:
        phone.context.close()
