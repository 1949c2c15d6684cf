"""Unauthenticated state creation: anyone can open the sign-in page, so opening it must not
store anything on the server (the "login flow storage exhaustion" class: each anonymous
request leaving a session or an authentication flow in the server's storage until it
expires, which lets one client fill that storage). Issue 15's finding on pending sign-ins.

Until a first step is proved, the sign-in travels sealed in the browser (``tx=p.…``): these
tests check that anonymous visits store no key, that a sealed sign-in is refused in another
browser, after its time, or changed, and that replaying one skips nothing.
"""

from __future__ import annotations

import re
import secrets
import time

import pytest

from idp import store
from idp.journey import transaction
from tests.support.account import (
    answer_challenge, password_sign_in, start_enrollment, submit_enrollment,
)
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.rp import params_for
from tests.support.world import make_world

VISITS = 100


def stored_keys(app) -> set:
    """This installation's keys (a set: keys of earlier tests may expire meanwhile)."""
    with app.app_context():
        return set(store.get().scan_iter(count=1000))


def fresh_browser(app) -> Browser:
    """A client that keeps no cookie from one request to the next, as a flood would."""
    return Browser(app.test_client())


def sealed_login(app, world, browser: Browser | None = None) -> tuple[Browser, str]:
    browser = browser or fresh_browser(app)
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    assert page.status == 200 and 'autocomplete="current-password"' in page.text
    return browser, field(TX, page.text)


def assert_expired(page) -> None:
    assert page.status == 400 and "This sign-in has expired" in page.text, \
        (page.status, page.text[:300])


def test_anonymous_visits_of_authorize_and_login_store_nothing(app, world):
    fresh_browser(app).get(f"/t/{world.slug}/login")  # caches the tenant, its client, its keys
    before = stored_keys(app)
    for i in range(VISITS):
        browser = fresh_browser(app)
        authorize = browser.get(f"/t/{world.slug}/authorize",
                                params_for(world.portal, state=f"s{i}",
                                                 prompt="login" if i % 2 else "select_account"))
        assert authorize.status == 302 and "/login?tx=" in authorize.location
        assert browser.get(authorize.location).status == 200
        login = fresh_browser(app).get(f"/t/{world.slug}/login",
                                       {"next": f"/t/{world.slug}/account"})
        assert login.status == 200 and 'name="tx"' in login.text
    assert stored_keys(app) - before == set()


def test_a_wrong_password_keeps_the_same_sealed_sign_in_and_the_right_one_finishes_it(app, world):
    browser, tx = sealed_login(app, world)
    page = browser.get(f"/t/{world.slug}/login?tx={tx}")
    form = {"csrf_token": field(CSRF, page.text), "tx": tx, "email": world.alice,
            "password": "not the password"}
    wrong = browser.post(f"/t/{world.slug}/login", form)
    assert wrong.status == 200 and "Incorrect email or password." in wrong.text
    assert field(TX, wrong.text) == tx
    done = browser.sign_in(wrong, world.alice, world.password, world.slug,
                           world.portal.redirect_uri)
    assert done.status == 302 and query(done.location)["code"]


def test_a_sealed_sign_in_opens_only_in_the_browser_that_started_it(app, world):
    _, tx = sealed_login(app, world)
    victim = fresh_browser(app)
    assert_expired(victim.get(f"/t/{world.slug}/login?tx={tx}"))
    page = victim.get(f"/t/{world.slug}/login")
    form = {"csrf_token": field(CSRF, page.text), "tx": tx, "email": world.alice,
            "password": world.password}
    assert_expired(victim.post(f"/t/{world.slug}/login", form))
    assert victim.http.get_cookie("idp_sso", path=f"/t/{world.slug}/") is None


def test_a_sealed_sign_in_does_not_open_in_another_tenant(app, world, settings):
    other = make_world(app, settings)
    browser, tx = sealed_login(app, world)
    sealed_login(app, other, browser)  # the same browser, known to the other tenant too
    assert_expired(browser.get(f"/t/{other.slug}/login?tx={tx}"))


def test_a_sealed_sign_in_expires(app, world, settings, monkeypatch):
    browser, tx = sealed_login(app, world)
    later = time.time() + settings.login_transaction_ttl + 1
    monkeypatch.setattr(transaction.time, "time", lambda: later)
    assert_expired(browser.get(f"/t/{world.slug}/login?tx={tx}"))


def _flip(value: str, at: int) -> str:
    return value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1:]


@pytest.mark.parametrize("change", [
    lambda tx: _flip(tx, len(tx) // 2),  # a bit of the request
    lambda tx: _flip(tx, len(tx) - 3),  # the tag
    lambda tx: tx[:-6],
    lambda tx: tx + "AAAA",
    lambda tx: "p.",
    lambda tx: "p." + secrets.token_urlsafe(300),
    lambda tx: "p." + "A" * (transaction.MAX_SEALED_LENGTH + 10),
    lambda tx: "p.%00%ff\u00e9",
    lambda tx: tx.replace("p.", "p..", 1),
])
def test_a_changed_sealed_sign_in_is_refused(app, world, change):
    browser, tx = sealed_login(app, world)
    assert_expired(browser.get(f"/t/{world.slug}/login", {"tx": change(tx)}))


def _require_a_second_factor(app, world) -> list[str]:
    """Alice gets backup codes; then every sign-in of hers needs one."""
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "backup")
    assert submit_enrollment(browser, world, "backup", page).status == 302
    return re.findall(r"<code>([a-z0-9-]+)</code>", page.text)


def test_replaying_the_sealed_sign_in_skips_nothing(app, world):
    """Progress is stored under a fresh random id: the sealed value still means "not signed
    in", wherever it is sent after the password was right."""
    codes = _require_a_second_factor(app, world)
    browser, tx = sealed_login(app, world)
    page = browser.get(f"/t/{world.slug}/login?tx={tx}")
    challenge = browser.sign_in(page, world.alice, world.password, world.slug,
                                world.portal.redirect_uri)
    assert challenge.status == 200 and 'name="factor"' in challenge.text
    stored = field(TX, challenge.text)
    assert stored != tx and not stored.startswith(transaction.SEALED)
    # The sealed value reaches neither the second factor nor consent nor a code.
    form = {"csrf_token": field(CSRF, challenge.text), "tx": tx, "factor": "backup",
            "code": codes[1]}
    assert_expired(browser.post(f"/t/{world.slug}/login/verify", form))
    assert_expired(browser.get(f"/t/{world.slug}/login/verify?tx={tx}"))
    assert_expired(browser.get(f"/t/{world.slug}/login/setup?tx={tx}"))
    assert_expired(browser.get(f"/t/{world.slug}/consent?tx={tx}"))
    resumed = browser.get(f"/t/{world.slug}/authorize/resume?tx={tx}")
    assert resumed.status == 302 and f"/t/{world.slug}/login?tx=" in resumed.location
    again = browser.get(f"/t/{world.slug}/login?tx={tx}")
    assert again.status == 200 and 'autocomplete="current-password"' in again.text
    # The stored step goes on as before.
    done = answer_challenge(browser, world, challenge, "backup", code=codes[0])
    assert done.status == 302 and query(done.location)["code"]


def test_a_request_too_large_to_carry_is_a_clear_error_for_the_client(app, world):
    # Each parameter within the per-parameter limit, together too large for the login URL.
    extra = {f"x{i}": secrets.token_urlsafe(3000) for i in range(4)}
    browser = fresh_browser(app)
    before = stored_keys(app)
    page = browser.post(f"/t/{world.slug}/authorize", {**params_for(world.portal), **extra})
    assert page.status == 302 and page.location.startswith(world.portal.redirect_uri)
    back = query(page.location)
    assert back["error"] == "invalid_request" and "too large" in back["error_description"]
    assert back["state"] == "st-123"
    long_next = f"/t/{world.slug}/" + secrets.token_urlsafe(12_000)
    page = browser.get(f"/t/{world.slug}/login", {"next": long_next})
    # Refused clearly, or sent home instead (the next address is only a convenience).
    assert page.status == 200 or (page.status == 400 and "too long" in page.text)
    assert stored_keys(app) - before == set()
