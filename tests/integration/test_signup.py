"""Self-registration: off by default; with it on, a CAPTCHA, the tenant's domains, the password
policy, and a verification link (with the password chosen) before the account signs in. The
same answer whether or not the address has an account."""

from __future__ import annotations

from sqlalchemy import select

from idp import db, directory
from idp.models import OutboxMessage
from tests.support.captcha import solve
from tests.support.journey import CSRF, Browser, field
from tests.support.mailed_links import mailed_paths, password_sign_in_answer
from tests.support.signin import set_policy

EVE = "eve@example.com"
CHOSEN = "copper kettles sing at noon"


def sign_up(browser: Browser, world, email=EVE, password=CHOSEN, again=None, captcha=True):
    page = browser.get(f"/t/{world.slug}/signup")
    assert page.status == 200, page.status
    form = {"csrf_token": field(CSRF, page.text), "name": "Eve", "email": email,
            "password": password, "confirm": password if again is None else again}
    if captcha:
        form["altcha"] = solve(page.text)
    return browser.post(f"/t/{world.slug}/signup", form)


def status_of(app, world, email=EVE):
    with app.app_context():
        user = directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug), email)
        return None if user is None else (user.status, user.email_verified)


def verify(browser: Browser, path: str, password: str):
    page = browser.get(path)
    assert page.status == 200 and "Enter the password you" in page.text, page.text[:300]
    return browser.post(path, {"csrf_token": field(CSRF, page.text), "password": password})


def test_sign_up_is_off_unless_the_tenant_turns_it_on(app, world):
    assert Browser(app.test_client()).get(f"/t/{world.slug}/signup").status == 404
    assert 'id="signup-link"' not in Browser(app.test_client()).get(f"/t/{world.slug}/login").text
    set_policy(app, world, self_registration=True)
    assert 'id="signup-link"' in Browser(app.test_client()).get(f"/t/{world.slug}/login").text


def test_a_new_account_signs_in_only_after_its_address_is_verified(app, world):
    set_policy(app, world, self_registration=True)
    browser = Browser(app.test_client())
    sent = sign_up(browser, world)
    assert sent.status == 200 and "Check your mail" in sent.text
    assert status_of(app, world) == ("unverified", False)
    refused = password_sign_in_answer(app, world, EVE, CHOSEN)
    assert refused.status == 403 and "Verify your email address first" in refused.text

    [path] = mailed_paths(app, world, EVE, "verify")
    wrong = verify(browser, path, "not the password I chose")
    assert wrong.status == 400 and "not the password chosen" in wrong.text
    assert status_of(app, world) == ("unverified", False)
    done = verify(browser, path, CHOSEN)
    assert done.status == 200 and "is verified" in done.text
    assert status_of(app, world) == ("active", True)
    assert password_sign_in_answer(app, world, EVE, CHOSEN).status == 302


def test_an_existing_address_gets_the_same_answer_and_a_mail_saying_so(app, world):
    set_policy(app, world, self_registration=True)
    new = sign_up(Browser(app.test_client()), world, email="frank@example.com")
    old = sign_up(Browser(app.test_client()), world, email=world.bob)
    assert new.status == old.status == 200
    assert new.text.replace("frank@example.com", "X") == old.text.replace(world.bob, "X")
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        [kind] = db.session().scalars(select(OutboxMessage.kind).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.recipient == world.bob)).all()
    assert kind == "signup_exists"
    assert status_of(app, world, world.bob) == ("active", False)  # nothing changed


def test_a_second_sign_up_never_changes_the_first_ones_password(app, world):
    set_policy(app, world, self_registration=True)
    sign_up(Browser(app.test_client()), world)
    sign_up(Browser(app.test_client()), world, password="an attacker's own passphrase")
    path = mailed_paths(app, world, EVE, "verify")[-1]
    assert verify(Browser(app.test_client()), path, "an attacker's own passphrase").status == 400
    assert verify(Browser(app.test_client()), path, CHOSEN).status == 200


def test_domains_captcha_and_password_policy_are_enforced(app, world):
    set_policy(app, world, self_registration=True, registration_domains=["corp.example"])
    browser = Browser(app.test_client())
    page = sign_up(browser, world)
    assert page.status == 400 and "own domains" in page.text
    page = sign_up(browser, world, email="gina@corp.example", captcha=False)
    assert page.status == 400 and "Complete the check" in page.text
    page = sign_up(browser, world, email="gina@corp.example", password="password123")
    assert page.status == 400 and "too common" in page.text
    assert status_of(app, world, "gina@corp.example") is None
    assert sign_up(browser, world, email="gina@corp.example").status == 200
