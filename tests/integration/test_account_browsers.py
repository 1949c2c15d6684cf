"""The account page's "Where you're signed in": each browser the user is signed in on (its
browser and system from the User-Agent, the address it signed in from, when it signed in and
was last active, this one marked), "Sign out" on each other one, "Sign out everywhere else",
a sign-out button for this one, and the email address with whether it is verified.

Several browsers are several test clients signed in as one person; what one of them does to
another shows at that other's next request. Issue 18, part 4.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from idp import db, directory, store
from idp.journey import session as sso
from tests.support.browsers import (CHROME_ON_LINUX, FIREFOX_ON_WINDOWS, SAFARI_ON_IPHONE,
                                    account_page, browser_at, is_signed_in, listed,
                                    sign_out_browser, sign_out_others, signed_in_browser)
from tests.support.console import admin_browser
from tests.support.journey import CSRF, field
from tests.support.rp import get_code, jwt_claims, redeem, refresh


def _laptop_and_phone(app, world):
    laptop = signed_in_browser(app, world, world.alice, FIREFOX_ON_WINDOWS, "198.51.100.10")
    phone = signed_in_browser(app, world, world.alice, SAFARI_ON_IPHONE, "203.0.113.77")
    return laptop, phone


def _sid(browser, world) -> str:
    return browser.http.get_cookie(sso.COOKIE, path=f"/t/{world.slug}/").value


def _stored(app, sid: str) -> dict:
    with app.app_context():
        return json.loads(store.get().get(f"sso:{sid}"))


def _restore(app, sid: str, data: dict) -> None:
    with app.app_context():
        store.get().set(f"sso:{sid}", json.dumps(data), keepttl=True)


def test_the_page_lists_each_browser_with_this_one_marked(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    rows = listed(laptop, world)
    assert [row.this for row in rows] == [True, False]  # this one first, marked
    here, there = rows
    assert "Firefox 133 on Windows 10" in here.text and "This browser" in here.text
    assert "198.51.100.10" in here.text and "now" in here.text and "Sign out" not in here.text
    assert "Mobile Safari 17 on iOS 17" in there.text and "203.0.113.77" in there.text
    assert "This browser" not in there.text and "Sign out" in there.text
    # The phone sees the same two, itself marked.
    seen_from_phone = listed(phone, world)
    assert [(r.public_id, r.this) for r in seen_from_phone] == [(there.public_id, True),
                                                               (here.public_id, False)]
    # The cookie's value (the browser's credential) is nowhere on the page.
    text = account_page(laptop, world).text
    assert _sid(phone, world) not in text and _sid(laptop, world) not in text


def test_one_browser_signs_another_out_and_the_other_is_signed_out_at_its_next_request(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    other = next(row for row in listed(laptop, world) if not row.this)
    done = sign_out_browser(laptop, world, other.public_id)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account")
    page = account_page(laptop, world)
    assert "Mobile Safari 17 on iOS 17 is signed out." in page.text
    assert [row.this for row in listed(laptop, world)] == [True]
    assert "You are signed in on this browser only." in page.text
    assert not is_signed_in(phone, world)  # sent to sign in again
    assert is_signed_in(laptop, world)


def test_sign_out_everywhere_else_keeps_this_browser(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    desktop = signed_in_browser(app, world, world.alice, CHROME_ON_LINUX, "192.0.2.5")
    bobs = signed_in_browser(app, world, world.bob, CHROME_ON_LINUX)
    assert len(listed(phone, world)) == 3
    done = sign_out_others(phone, world)
    assert done.status == 302
    assert "You are signed out everywhere else." in account_page(phone, world).text
    assert [row.this for row in listed(phone, world)] == [True]
    assert is_signed_in(phone, world)
    assert not is_signed_in(laptop, world) and not is_signed_in(desktop, world)
    assert is_signed_in(bobs, world)  # another person's browsers are not "elsewhere"


def test_a_browser_of_another_user_cannot_be_signed_out(app, world):
    alices = signed_in_browser(app, world, world.alice, FIREFOX_ON_WINDOWS)
    bobs = signed_in_browser(app, world, world.bob, SAFARI_ON_IPHONE)
    bobs_id = listed(bobs, world)[0].public_id
    refused = sign_out_browser(alices, world, bobs_id)
    assert refused.status == 404 and "You are not signed in on that browser" in refused.text
    assert is_signed_in(bobs, world) and is_signed_in(alices, world)


@pytest.mark.parametrize("named", ["0" * 64, "F" * 64, "x", "%00", "a" * 65, "é" * 64])
def test_an_id_that_names_no_browser_of_the_user_is_not_found(app, world, named):
    laptop, phone = _laptop_and_phone(app, world)
    refused = sign_out_browser(laptop, world, named)
    assert refused.status == 404, refused.status
    assert is_signed_in(phone, world) and is_signed_in(laptop, world)


def test_this_browser_is_not_signed_out_through_another_browsers_button(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    mine = listed(laptop, world)[0]
    assert mine.this
    assert sign_out_browser(laptop, world, mine.public_id).status == 404
    assert is_signed_in(laptop, world) and is_signed_in(phone, world)


def test_signing_out_needs_the_pages_form_and_a_post(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    other = next(row for row in listed(laptop, world) if not row.this)
    forged = sign_out_browser(laptop, world, other.public_id, csrf=False)
    assert forged.status == 400
    forged_all = laptop.post(f"/t/{world.slug}/account/browsers/sign-out-others", {})
    assert forged_all.status == 400
    link = laptop.get(f"/t/{world.slug}/account/browsers/{other.public_id}/sign-out")
    assert link.status == 405
    assert is_signed_in(phone, world) and is_signed_in(laptop, world)


def test_a_signed_out_visitor_is_sent_to_sign_in_and_ends_nothing(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    other = next(row for row in listed(laptop, world) if not row.this)
    stranger = browser_at(app, CHROME_ON_LINUX)
    page = stranger.get(f"/t/{world.slug}/login")
    tried = stranger.post(f"/t/{world.slug}/account/browsers/{other.public_id}/sign-out",
                          {"csrf_token": field(CSRF, page.text)})
    assert tried.status == 302 and "/login" in tried.location
    assert is_signed_in(phone, world)


def test_the_sign_out_button_signs_this_browser_out(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    page = account_page(laptop, world)
    assert 'id="sign-out"' in page.text
    done = laptop.post(f"/t/{world.slug}/signout", {"csrf_token": field(CSRF, page.text)})
    assert done.status == 200 and "You are signed out" in done.text
    assert not is_signed_in(laptop, world)
    assert is_signed_in(phone, world)


def test_the_email_address_and_whether_it_is_verified(app, world):
    laptop = signed_in_browser(app, world, world.alice, FIREFOX_ON_WINDOWS)
    page = account_page(laptop, world)
    assert "Your email address" in page.text and "alice@example.com · " in page.text
    assert '<span id="email-state">Not verified yet</span>' in page.text
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), world.alice)
        user.email_verified = True
        session.commit()
    assert '<span id="email-state">Verified</span>' in account_page(laptop, world).text


def test_tokens_issued_to_a_signed_out_browser_end_with_it(app, world):
    """A portal the phone signed in to cannot refresh its way back in once the phone is signed
    out from the laptop; the laptop's own portal tokens go on."""
    laptop = browser_at(app, FIREFOX_ON_WINDOWS, "198.51.100.10")
    phone = browser_at(app, SAFARI_ON_IPHONE, "203.0.113.77")
    mine = redeem(laptop.http, world, world.portal, *get_code(laptop.http, world, world.portal)).get_json()
    theirs = redeem(phone.http, world, world.portal, *get_code(phone.http, world, world.portal)).get_json()
    other = next(row for row in listed(laptop, world) if not row.this)
    # The ID token names the session by its public id, never by the browser's cookie.
    assert jwt_claims(theirs["id_token"])["sid"] == other.public_id != _sid(phone, world)
    assert sign_out_browser(laptop, world, other.public_id).status == 302
    refused = refresh(phone.http, world, world.portal, theirs["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert refresh(laptop.http, world, world.portal, mine["refresh_token"]).status_code == 200


def test_everywhere_else_ends_every_token_but_this_browsers(app, world):
    laptop = browser_at(app, FIREFOX_ON_WINDOWS)
    phone = browser_at(app, SAFARI_ON_IPHONE)
    mine = redeem(laptop.http, world, world.portal, *get_code(laptop.http, world, world.portal)).get_json()
    theirs = redeem(phone.http, world, world.portal, *get_code(phone.http, world, world.portal)).get_json()
    # A session that ended by itself long ago left a refresh token at a portal: it goes too.
    old = browser_at(app, CHROME_ON_LINUX)
    stale = redeem(old.http, world, world.portal, *get_code(old.http, world, world.portal)).get_json()
    with app.app_context():
        store.get().delete(f"sso:{_sid(old, world)}")
    assert sign_out_others(laptop, world).status == 302
    for gone in (theirs, stale):
        assert refresh(phone.http, world, world.portal, gone["refresh_token"]).status_code == 400
    assert refresh(laptop.http, world, world.portal, mine["refresh_token"]).status_code == 200


def test_signing_out_elsewhere_is_in_the_console_audit_log(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    signed_in_browser(app, world, world.alice, CHROME_ON_LINUX, "192.0.2.5")
    other = next(row for row in listed(laptop, world) if "Mobile Safari" in row.text)
    sign_out_browser(laptop, world, other.public_id)
    sign_out_others(laptop, world)
    console = admin_browser(app, world)
    one = console.get(f"/t/{world.slug}/admin/audit", {"action": "user.signed_out_browser"})
    assert one.status == 200
    row = one.text.split('data-action="user.signed_out_browser"', 1)[1].split("</tr>", 1)[0]
    assert "alice@example.com" in row  # who
    assert "198.51.100.10" in row  # from where (the laptop, which pressed the button)
    assert "Mobile Safari 17 on iOS 17" in row and "203.0.113.77" in row  # what was signed out
    rest = console.get(f"/t/{world.slug}/admin/audit", {"action": "user.signed_out_elsewhere"})
    row = rest.text.split('data-action="user.signed_out_elsewhere"', 1)[1].split("</tr>", 1)[0]
    assert "alice@example.com" in row and "198.51.100.10" in row
    assert "&#34;browsers&#34;:1" in row or '"browsers":1' in row


def test_last_active_moves_forward_once_every_few_minutes(app, world):
    laptop, phone = _laptop_and_phone(app, world)
    sid = _sid(phone, world)
    # Seen a minute ago: a request now writes nothing (the phone's next page stays as stored).
    recently = {**_stored(app, sid), "last_seen": int(time.time()) - 60}
    _restore(app, sid, recently)
    account_page(phone, world)
    assert _stored(app, sid)["last_seen"] == recently["last_seen"]
    # Seen ten minutes ago: its next request moves it to now, and the laptop shows it.
    ten_minutes_ago = int(time.time()) - 600
    _restore(app, sid, {**recently, "last_seen": ten_minutes_ago})
    before = [r.text for r in listed(laptop, world) if not r.this][0]
    account_page(phone, world)
    stored = _stored(app, sid)
    assert stored["last_seen"] >= int(time.time()) - 5
    assert {k: v for k, v in stored.items() if k != "last_seen"} == \
        {k: v for k, v in recently.items() if k != "last_seen"}
    after = [r.text for r in listed(laptop, world) if not r.this][0]
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(ten_minutes_ago)) in before
    assert time.strftime("%Y-%m-%d %H:%M", time.gmtime(stored["last_seen"])) in after
    with app.app_context():  # and the session ends when it always would have
        assert 0 < store.get().ttl(f"sso:{sid}") <= app.config["IDP"].sso_session_ttl


def test_last_active_never_brings_back_a_session_signed_out_meanwhile(app, world):
    """The phone's request read its session; before it ends, the laptop signs the phone out.
    The phone's "last active" write must not bring the session back."""
    laptop, phone = _laptop_and_phone(app, world)
    sid = _sid(phone, world)
    _restore(app, sid, {**_stored(app, sid), "last_seen": int(time.time()) - 600})
    other = next(row for row in listed(laptop, world) if not row.this)
    with app.test_request_context(f"/t/{world.slug}/account", headers={
            "Cookie": f"{sso.COOKIE}={sid}"}):
        from flask import g

        g.tenant = directory.get_tenant(db.session(), world.slug)
        assert sso.current(g.tenant.id) is not None  # read, its last use now due
        # The laptop's request, meanwhile (a thread of its own: its own request context).
        pressed = []
        meanwhile = threading.Thread(
            target=lambda: pressed.append(sign_out_browser(laptop, world, other.public_id)))
        meanwhile.start()
        meanwhile.join()
        assert pressed[0].status == 302
        sso.write_cookie(app.response_class())  # the request's end sends the due write
        assert store.get().get(f"sso:{sid}") is None
    assert not is_signed_in(phone, world)


def test_a_session_kept_before_browsers_were_recorded_is_listed_and_can_be_signed_out(app, world):
    """A deploy of this change leaves sessions stored without the browser, address and times:
    they go on, listed as an unknown browser, and can be signed out."""
    laptop, phone = _laptop_and_phone(app, world)
    sid = _sid(phone, world)
    older = {k: v for k, v in _stored(app, sid).items()
             if k not in ("created_at", "last_seen", "user_agent", "ip", "earlier")}
    _restore(app, sid, older)
    other = next(row for row in listed(laptop, world) if not row.this)
    assert "Unknown browser on unknown system" in other.text and "unknown network" in other.text
    assert is_signed_in(phone, world)  # the old shape is read, not refused
    assert sign_out_browser(laptop, world, other.public_id).status == 302
    assert not is_signed_in(phone, world)


def test_a_hostile_user_agent_is_kept_short_and_shown_as_text(app, world):
    """Whoever signs in chooses the User-Agent: markup, control characters, 20,000 characters.
    The session keeps 512 of them and the page shows words, never markup."""
    hostile = "<script>alert(1)</script>/1.0 (\x01\x7f) " + "A" * 20_000
    odd = signed_in_browser(app, world, world.alice, hostile, "198.51.100.66")
    laptop = signed_in_browser(app, world, world.alice, FIREFOX_ON_WINDOWS)
    assert len(_stored(app, _sid(odd, world))["user_agent"]) == 512
    page = account_page(laptop, world)
    assert "<script>alert(1)" not in page.text and "A" * 600 not in page.text
    row = next(row for row in listed(laptop, world) if "198.51.100.66" in row.text)
    assert sign_out_browser(laptop, world, row.public_id).status == 302
    assert not is_signed_in(odd, world)
