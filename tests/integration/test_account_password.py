"""The account page's password change and its verification link: with the current password
(counted by the guard), through the password policy, and every other browser signed out."""

from __future__ import annotations

from sqlalchemy import select

from idp import db, directory
from idp.models import OutboxMessage
from tests.support.browsers import account_page, is_signed_in, signed_in_browser
from tests.support.journey import CSRF, TX, Browser, field

NEW = "seven quiet lanterns drift"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"


def change(browser: Browser, world, current: str, new: str, again: str | None = None):
    page = browser.get(f"/t/{world.slug}/account/password")
    assert page.status == 200, page.status
    return browser.post(f"/t/{world.slug}/account/password", {
        "csrf_token": field(CSRF, page.text), "current": current, "password": new,
        "confirm": new if again is None else again})


def signs_in(app, world, email, password) -> bool:
    browser = Browser(app.test_client())
    page = browser.get(f"/t/{world.slug}/login")
    return browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "email": email,
        "password": password}).status == 302


def outbox_kinds(app, world, to):
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        return list(db.session().scalars(select(OutboxMessage.kind).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.recipient == to)
            .order_by(OutboxMessage.id)))


def test_a_change_keeps_this_browser_and_signs_out_the_others(app, world):
    laptop = signed_in_browser(app, world, world.bob, FIREFOX)
    phone = signed_in_browser(app, world, world.bob, PHONE, "198.51.100.7")
    assert 'id="change-password"' in account_page(laptop, world).text
    done = change(laptop, world, world.password, NEW)
    assert done.status == 302
    assert "Your password is changed" in laptop.get(done.location).text
    assert is_signed_in(laptop, world) and not is_signed_in(phone, world)
    assert signs_in(app, world, world.bob, NEW) and not signs_in(app, world, world.bob, world.password)
    assert outbox_kinds(app, world, world.bob)[-1] == "password_changed"


def test_a_wrong_current_password_changes_nothing_and_is_counted(app, world):
    laptop = signed_in_browser(app, world, world.bob, FIREFOX)
    statuses = [change(laptop, world, "not it at all", NEW).status for _ in range(5)]
    assert statuses == [400] * 5
    locked = change(laptop, world, world.password, NEW)  # the tenant locks after 5
    assert locked.status == 429 and "Too many wrong passwords" in locked.text
    assert signs_in(app, world, world.bob, world.password) is False  # locked, not changed
    assert "password_changed" not in outbox_kinds(app, world, world.bob)


def test_the_new_password_goes_through_the_policy(app, world):
    laptop = signed_in_browser(app, world, world.bob, FIREFOX)
    for new, again, said in (("short", "short", "at least 8"), (NEW, NEW + "x", "not the same"),
                             ("password123", "password123", "too common")):
        page = change(laptop, world, world.password, new, again)
        assert page.status == 400 and said in page.text, said
    assert signs_in(app, world, world.bob, world.password)


def test_an_unverified_user_can_ask_for_a_verification_link(app, world):
    laptop = signed_in_browser(app, world, world.bob, FIREFOX)
    page = account_page(laptop, world)
    assert "Not verified yet" in page.text and 'id="send-verification"' in page.text
    sent = laptop.post(f"/t/{world.slug}/account/verify-email", {"csrf_token": field(CSRF, page.text)})
    assert "We mailed a link" in laptop.get(sent.location).text
    again = laptop.post(f"/t/{world.slug}/account/verify-email", {"csrf_token": field(CSRF, page.text)})
    assert "a few minutes ago" in laptop.get(again.location).text
    assert outbox_kinds(app, world, world.bob).count("verify") == 1
