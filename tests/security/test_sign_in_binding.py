"""What a sign-in may do is decided at every step, for the session that does it.

Guards against:
- **Keycloak CVE-2023-3597** (a password alone sets up a second factor on an account that
  has one): a forced-setup page opened while the account had no factor, kept open, and used
  after the owner set up their own (review finding 1). The setup page must also not keep the
  sign-in alive forever.
- **Session confusion at consent** (an authorization request started and authenticated by
  one user, finished for whoever is signed in when it is approved, at their lower level;
  no CVE matches exactly, the class is CWE-384/CWE-863): review finding 2.
- **Grace-period skips raced or stockpiled** (review finding 7): more skips than allowed by
  opening several setup pages first, or posting skips at once.
- **amr naming a method not used** (review finding 8): a login-link session stepped up for
  the console claimed a password.
"""

from __future__ import annotations

import json
import threading

from sqlalchemy import func, select

from idp import admin, db, directory, store
from idp.models import Authenticator
from tests.support.account import answer_challenge, enroll_backup_codes, password_sign_in
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.questions import enroll
from tests.support.signin import (finish_forced_totp, open_forced_setup, set_policy, start,
                                  tokens_for, totp_code)
from tests.support.totp import enroll_another


def _factors(app, world, email) -> list[str]:
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        return list(session.scalars(select(Authenticator.type)
                                    .where(Authenticator.user_id == user.id)))


def _audit_count(app, world, action) -> int:
    from idp.models import AuditEvent

    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == action))


# --- Finding 1: a setup page kept open plants no second factor ---------------------------------
def test_a_setup_page_opened_before_the_owner_enrolled_adds_no_factor_after(app, world):
    set_policy(app, world, mode="required", factors=["totp"])
    attacker = Browser(app.test_client())  # knows the password only
    _, wizard, _ = start(attacker, world)
    attacker_setup = open_forced_setup(attacker, world, wizard)

    owner = Browser(app.test_client())
    verifier, owner_wizard, _ = start(owner, world)
    done, _ = finish_forced_totp(owner, world, open_forced_setup(owner, world, owner_wizard))
    done = owner.follow(done, world.portal.redirect_uri)
    assert tokens_for(owner, world, done, verifier)["acr"] == "mfa"

    answer, attacker_secret = finish_forced_totp(attacker, world, attacker_setup)
    answer = attacker.follow(answer, world.portal.redirect_uri)
    # No code, no factor of the attacker's: the sign-in now asks for the owner's app.
    assert not (answer.location or "").startswith(world.portal.redirect_uri)
    assert answer.status == 200 and "/login/verify" in answer.text, answer.text[:500]
    assert _factors(app, world, world.alice) == ["totp"]
    # The attacker's app cannot answer that challenge either.
    challenge = attacker.get(f"/t/{world.slug}/login/verify", {"tx": field(TX, attacker_setup.text)})
    refused = attacker.follow(answer_challenge(attacker, world, challenge, "totp",
                                               code=totp_code(attacker_secret, 1)), "\0")
    assert not (refused.location or "").startswith(world.portal.redirect_uri)
    assert _audit_count(app, world, "mfa.enroll_refused") == 1


def test_the_setup_wizard_reopened_after_the_owner_enrolled_asks_for_the_owners_factor(app, world):
    set_policy(app, world, mode="required", factors=["totp", "sms"])
    attacker = Browser(app.test_client())
    _, wizard, _ = start(attacker, world)
    tx = field(TX, open_forced_setup(attacker, world, wizard).text)

    owner = Browser(app.test_client())
    _, owner_wizard, _ = start(owner, world)
    finish_forced_totp(owner, world, open_forced_setup(owner, world, owner_wizard))

    for path in ("login/setup", "login/setup/sms", "login/setup/totp"):
        page = attacker.get(f"/t/{world.slug}/{path}", {"tx": tx})
        assert page.status == 302 and "/login/verify" in page.location, (path, page.status, page.location)
    assert _factors(app, world, world.alice) == ["totp"]


def test_two_setups_confirmed_at_once_add_one_factor(app, world):
    set_policy(app, world, mode="required", factors=["totp"])
    pages = []
    for _ in range(2):
        browser = Browser(app.test_client())
        _, wizard, _ = start(browser, world)
        pages.append((browser, open_forced_setup(browser, world, wizard)))
    barrier = threading.Barrier(len(pages))
    answers = []

    def confirm(browser, setup):
        barrier.wait()
        answers.append(finish_forced_totp(browser, world, setup)[0])

    threads = [threading.Thread(target=confirm, args=pair) for pair in pages]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 2 and all(a.status < 500 for a in answers)
    assert _factors(app, world, world.alice) == ["totp"]


def test_opening_the_setup_page_again_does_not_extend_the_sign_in(app, world, settings):
    set_policy(app, world, mode="required", factors=["totp"])
    browser = Browser(app.test_client())
    _, wizard, _ = start(browser, world)
    tx = field(TX, open_forced_setup(browser, world, wizard).text)
    with app.app_context():
        r = store.get()
        data = json.loads(r.get(f"ltx:{tx}"))
        data["created"] -= settings.login_transaction_ttl - 60  # a minute left
        r.set(f"ltx:{tx}", json.dumps(data), ex=settings.login_transaction_ttl)
    assert browser.get(f"/t/{world.slug}/login/setup/totp", {"tx": tx}).status == 200
    with app.app_context():
        assert 0 < store.get().ttl(f"ltx:{tx}") <= 60
        data = json.loads(store.get().get(f"ltx:{tx}"))
        data["created"] -= 120  # past its deadline, though the key is still there
        store.get().set(f"ltx:{tx}", json.dumps(data), ex=60)
    expired = browser.get(f"/t/{world.slug}/login/setup/totp", {"tx": tx})
    assert expired.status == 400 and "expired" in expired.text


# --- Finding 2: consent belongs to the session that signed in --------------------------------
def test_consent_given_after_another_user_signed_in_issues_no_code(app, world):
    """Bob (with his app) reaches a portal's consent page; in the same browser Alice signs in
    with her password alone; Allow must not give the portal a code for Alice at level pwd."""
    with app.app_context():
        session = db.session()
        admin.update_client(session, directory.get_tenant(session, world.slug),
                            world.portal.client_id, "test", min_acr="mfa")
        session.commit()
    browser = Browser(app.test_client())
    bobs_phone = Browser(app.test_client())
    password_sign_in(bobs_phone, world, world.bob)
    bob_secret = enroll_another(bobs_phone, world)
    _, page, params = start(browser, world, email=world.bob, prompt="consent")
    consent = browser.follow(answer_challenge(browser, world, page, "totp",
                                              code=totp_code(bob_secret, 1)), "\0")
    assert "consent" in consent.text.lower() or "Allow" in consent.text, consent.text[:500]

    other_tab = Browser(browser.http)  # the same browser, another tab
    signed_in = password_sign_in(other_tab, world, world.alice)
    assert signed_in.status == 200 and world.alice.lower() in signed_in.text.lower()

    allowed = browser.consent(consent, world.slug, allow=True, stop_at=world.portal.redirect_uri)
    location = allowed.location or ""
    assert "code=" not in location, location
    assert allowed.status == 400 and "expired" in allowed.text


# --- Finding 7: grace skips are counted when used --------------------------------------------
def _wizard(app, world):
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    assert "Not now" in page.text, page.text[:400]
    return browser, verifier, page


def _skip(browser, world, page):
    return browser.post(f"/t/{world.slug}/login/setup/skip",
                        {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text)})


def test_setup_pages_opened_beforehand_allow_only_the_skips_configured(app, world):
    set_policy(app, world, mode="required", factors=["totp"], grace_skips=1)
    first, second = _wizard(app, world), _wizard(app, world)
    browser, verifier, page = first
    done = browser.follow(_skip(browser, world, page), world.portal.redirect_uri)
    assert tokens_for(browser, world, done, verifier)["amr"] == ["pwd"]
    browser, _, page = second
    refused = _skip(browser, world, page)
    assert refused.status == 302 and "/login/setup" in refused.location
    assert "Not now" not in browser.get(refused.location).text


def test_skips_posted_at_once_count_one_by_one(app, world):
    set_policy(app, world, mode="required", factors=["totp"], grace_skips=1)
    wizards = [_wizard(app, world) for _ in range(4)]
    barrier = threading.Barrier(len(wizards))
    codes = []

    def skip(browser, verifier, page):
        barrier.wait()
        answer = browser.follow(_skip(browser, world, page), world.portal.redirect_uri)
        if (answer.location or "").startswith(world.portal.redirect_uri):
            codes.append(query(answer.location).get("code"))

    threads = [threading.Thread(target=skip, args=w) for w in wizards]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(codes) == 1
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), world.alice)
        assert user.mfa_skips_used == 1


# --- Finding 8: amr lists the methods this session used ---------------------------------------
def test_a_login_link_session_stepped_up_for_the_console_claims_no_password(app, world, settings):
    codes = enroll_backup_codes(Browser(app.test_client()), world, email=world.admin)
    set_policy(app, world, admin_login_links=True)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        issued = admin.create_login_token(session, tenant, world.admin, settings.base_url, "test",
                                          settings=settings)
        session.commit()
    path = issued.url.replace(settings.base_url, "")
    browser = Browser(app.test_client())
    link = browser.get(path)
    browser.follow(browser.post(path, {"csrf_token": field(CSRF, link.text)}), "\0")
    step_up = browser.follow(browser.get(f"/t/{world.slug}/admin"), "\0")
    assert "/login/verify" in step_up.text or 'name="code"' in step_up.text, step_up.text[:500]
    console = browser.follow(answer_challenge(browser, world, step_up, "backup", code=codes[0]), "\0")
    assert console.status == 200
    verifier, page, _ = start(browser, world)
    claims = tokens_for(browser, world, page, verifier)
    assert claims["amr"] == ["login_token", "otp", "mfa"], claims["amr"]
    assert "pwd" not in claims["amr"]


def test_a_password_only_session_adds_no_factor_once_the_owner_set_up_questions(app, world):
    """Security questions are knowledge: a session that proved the password alone is at the
    same level as one that also answered them, but it has not proved the owner's factor."""

    attacker = Browser(app.test_client())
    password_sign_in(attacker, world)  # before the owner set anything up
    owner = Browser(app.test_client())
    password_sign_in(owner, world)
    enroll(owner, world)
    page = attacker.get(f"/t/{world.slug}/account/add/totp")
    assert page.status == 302 and "/login" in page.location, (page.status, page.location)
    assert _factors(app, world, world.alice) == ["kba"]
