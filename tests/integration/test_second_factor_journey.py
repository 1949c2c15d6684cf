"""The journey around any second factor: nothing is reachable half-way, the strongest factor
is offered first, others can be chosen, and the guard counts wrong answers."""

from __future__ import annotations

from idp.guard import account_key
from tests.support.account import answer_challenge, enroll_backup_codes
from tests.support.captcha import solve
from tests.support.journey import TX, Browser, field, query
from tests.support.rp import params_for
from tests.support.signin import challenge_page


def test_half_way_through_nothing_is_reachable(app, client, world):
    enroll_backup_codes(Browser(client), world)
    browser, _, page = challenge_page(app, world)
    assert page.status == 200  # the password was right; the second factor is pending
    # No code without a prompt...
    silent = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    assert query(silent.location)["error"] == "login_required"
    # ...no account page...
    account = browser.get(f"/t/{world.slug}/account")
    assert account.status == 302 and "/login" in account.location
    # ...and no SSO cookie was ever set.
    assert "idp_sso" not in str(browser.http.get_cookie("idp_sso", path=f"/t/{world.slug}/"))


def test_no_sso_cookie_until_the_second_factor_passes(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    browser, _, page = challenge_page(app, world)
    assert browser.http.get_cookie("idp_sso", path=f"/t/{world.slug}/") is None
    browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), world.portal.redirect_uri)
    assert browser.http.get_cookie("idp_sso", path=f"/t/{world.slug}/") is not None


def test_the_right_answer_goes_straight_back_to_the_portal_with_a_code(app, client, world):
    """No stop on the way: the answer's response is the redirect to the portal itself."""
    codes = enroll_backup_codes(Browser(client), world)
    browser, _, page = challenge_page(app, world)
    done = answer_challenge(browser, world, page, "backup", code=codes[0])
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri), done.location
    back = query(done.location)
    assert back["code"] and back["state"] == "st-123" and back["iss"] == f"http://idp.test/t/{world.slug}"


def test_consent_asked_after_the_second_factor_still_issues_the_code(app, client, world):
    """prompt=consent after a second factor: the consent page comes next, then the code."""
    codes = enroll_backup_codes(Browser(client), world)
    browser = Browser(app.test_client())
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, prompt="consent"))
    page = browser.sign_in(page, world.alice, world.password, world.slug, world.portal.redirect_uri)
    asked = answer_challenge(browser, world, page, "backup", code=codes[0])
    assert asked.status == 302 and f"/t/{world.slug}/consent" in asked.location
    consent = browser.get(asked.location)
    assert consent.status == 200 and field(TX, consent.text)
    done = browser.consent(consent, world.slug, allow=True, stop_at=world.portal.redirect_uri)
    assert done.status == 302 and query(done.location)["code"], done.location


def test_a_challenge_cannot_be_answered_for_a_factor_the_user_lacks(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    browser, _, page = challenge_page(app, world)
    r = answer_challenge(browser, world, page, "totp", code="123456")
    # The page is shown again for the user's own factor; nothing was accepted.
    assert r.status == 200 and "Backup code" in r.text
    assert browser.http.get_cookie("idp_sso", path=f"/t/{world.slug}/") is None
    assert codes  # the codes still work afterwards
    done = answer_challenge(browser, world, page, "backup", code=codes[1])
    assert done.status == 302


def test_wrong_answers_count_and_lock_the_account(app, client, world):
    enroll_backup_codes(Browser(client), world)

    browser, _, page = challenge_page(app, world)
    for attempt in range(5):
        extra = {"altcha": solve(page.text)} if attempt >= 3 else {}
        page = answer_challenge(browser, world, page, "backup", code="xxxxx-xxxxx", **extra)
    assert page.status == 429 and "locked" in page.text
    with app.app_context():
        from idp import db
        from idp.directory import find_user, get_tenant

        user = find_user(db.session(), get_tenant(db.session(), world.slug), world.alice)
        assert app.extensions["idp.guard"].failures(account_key(user.tenant_id, user.id, user.email)) >= 5
    # Even the right password is now refused with the locked page.
    fresh = Browser(app.test_client())
    login = fresh.authorize(f"/t/{world.slug}", params_for(world.portal))
    locked = fresh.sign_in(login, world.alice, world.password, world.slug, world.portal.redirect_uri)
    assert locked.status == 429
