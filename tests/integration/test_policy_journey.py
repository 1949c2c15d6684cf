"""The tenant's policy and the relying party's requirements, applied by the hosted pages."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from idp import admin, db, directory
from idp.models import LoginToken
from tests.support.account import (CEREMONY, age_sessions, answer_challenge, enroll_backup_codes,
                                   password_sign_in, start_enrollment, submit_enrollment)
from tests.support.journey import CSRF, TX, Browser, field, query
from tests.support.rp import params_for
from tests.support.signin import set_policy, start, tokens_for, user_mfa
from tests.support.totp import TOTP_KEY, enroll_totp, totp_code, with_totp
from tests.support.world import ClientCreds


def test_disabled_ignores_enrolled_factors(app, client, world):
    enroll_backup_codes(Browser(client), world)
    set_policy(app, world, mode="disabled")
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    claims = tokens_for(browser, world, page, verifier)
    assert claims["amr"] == ["pwd"] and claims["acr"] == "pwd"


def test_disabled_tenant_says_two_factor_is_not_available(app, client, world):
    set_policy(app, world, mode="disabled")
    browser = Browser(client)

    password_sign_in(browser, world)
    page = browser.get(f"/t/{world.slug}/account")
    assert "Two-factor authentication is not available" in page.text
    assert browser.get(f"/t/{world.slug}/account/add/backup").status == 403


def test_group_scope_asks_only_members(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.create_group(session, tenant, "Finance", "test")
        session.commit()
    set_policy(app, world, mode="required", groups=["Finance"])
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    # Alice is not in Finance: her enrolled codes are not asked for.
    assert tokens_for(browser, world, page, verifier)["amr"] == ["pwd"]
    with app.app_context():
        session = db.session()
        admin.add_to_group(session, directory.get_tenant(session, world.slug), "Finance", world.alice, "test")
        session.commit()
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    assert page.status == 200 and "Backup code" in page.text
    done = answer_challenge(browser, world, page, "backup", code=codes[0])
    assert tokens_for(browser, world, browser.follow(done, world.portal.redirect_uri), verifier)["acr"] == "mfa"


def test_exempt_user_is_not_asked(app, client, world):
    enroll_backup_codes(Browser(client), world)
    set_policy(app, world, mode="required")
    user_mfa(app, world, world.alice, "exempt")
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    assert tokens_for(browser, world, page, verifier)["amr"] == ["pwd"]


def test_required_without_a_factor_shows_the_setup_wizard_before_any_code(app, world):
    set_policy(app, world, mode="required", factors=["totp", "sms", "questions"])
    browser = Browser(app.test_client())
    _, page, params = start(browser, world)
    assert page.status == 200 and "Set up two-step verification" in page.text
    assert "Not now" not in page.text  # no grace configured
    # No code can be had meanwhile, not even silently.

    silent = browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    assert query(silent.location)["error"] == "login_required"


def test_grace_skips_then_forced(app, world):
    set_policy(app, world, mode="required", grace_skips=2)
    for left in (2, 1):
        browser = Browser(app.test_client())
        verifier, page, _ = start(browser, world)
        assert f"Not now ({left} skip" in page.text
        tx = field(TX, page.text)
        done = browser.follow(browser.post(f"/t/{world.slug}/login/setup/skip",
                                           {"csrf_token": field(CSRF, page.text), "tx": tx}),
                              world.portal.redirect_uri)
        assert tokens_for(browser, world, done, verifier)["amr"] == ["pwd"]
    browser = Browser(app.test_client())
    _, page, _ = start(browser, world)
    assert "Set up two-step verification" in page.text and "Not now" not in page.text
    assert "grace period is over" in page.text


def test_a_forged_skip_is_refused_when_no_grace_is_left(app, world):
    set_policy(app, world, mode="required")
    browser = Browser(app.test_client())
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    after_password = browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
        "email": world.alice, "password": world.password})
    assert "/login/setup?tx=" in after_password.location
    tx = query(after_password.location)["tx"]
    r = browser.post(f"/t/{world.slug}/login/setup/skip", {"csrf_token": field(CSRF, login.text), "tx": tx})
    assert r.status == 302 and "/login/setup" in r.location  # back to the wizard, no code


def test_reset_removes_factors_and_forces_setup_again(app, client, world):
    enroll_backup_codes(Browser(client), world)
    user_mfa(app, world, world.alice, "reset")
    browser = Browser(app.test_client())
    _, page, _ = start(browser, world)
    assert "Set up two-step verification" in page.text and "reset" in page.text


def test_step_up_from_a_pwd_session_asks_only_for_the_second_factor(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    set_policy(app, world, mode="disabled")
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    first = tokens_for(browser, world, page, verifier)
    assert first["acr"] == "pwd"
    set_policy(app, world, mode="optional")
    # The portal opens a sensitive page: acr_values=mfa. No password page, a factor page.
    verifier, page, _ = start(browser, world, acr_values="mfa")
    assert page.status == 200 and "current-password" not in page.text and "Backup code" in page.text
    done = browser.follow(answer_challenge(browser, world, page, "backup", code=codes[2]), world.portal.redirect_uri)
    stepped = tokens_for(browser, world, done, verifier)
    assert stepped["acr"] == "mfa" and stepped["amr"] == ["pwd", "otp", "mfa"]
    assert stepped["auth_time"] == first["auth_time"]  # the last full authentication
    assert stepped["sid"] != first["sid"]  # the session id rotated


def test_voluntary_phr_without_webauthn_returns_the_level_reached(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world, acr_values="phr")
    done = browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), world.portal.redirect_uri)
    assert tokens_for(browser, world, done, verifier)["acr"] == "mfa"


def test_essential_phr_without_webauthn_is_unmet(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["phr"]}}})
    browser = Browser(app.test_client())
    _, page, _ = start(browser, world, claims=claims)
    q = query(page.location)
    assert q["error"] == "unmet_authentication_requirements" and q["iss"] == world.issuer
    assert codes


def test_essential_acr_is_reported_as_a_requested_value(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    claims = json.dumps({"id_token": {"acr": {"essential": True, "values": ["mfa"]}}})
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world, claims=claims)
    done = browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), world.portal.redirect_uri)
    assert tokens_for(browser, world, done, verifier)["acr"] == "mfa"


def test_malformed_claims_parameter_is_invalid_request(app, world):
    browser = Browser(app.test_client())
    _, page, _ = start(browser, world, claims="{not json")
    assert query(page.location)["error"] == "invalid_request"


def test_client_minimum_acr_applies_to_every_request(app, world):
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        new = directory.create_client(session, tenant, "Bank", ["https://bank.test/cb"], min_acr="mfa")
        session.commit()

    world.portal = ClientCreds(new.client.client_id, new.secret, "https://bank.test/cb", "")
    browser = Browser(app.test_client())
    _, page, _ = start(browser, world)
    # Alice has no factor: the forced first setup, limited to factors that reach mfa.
    assert "Set up two-step verification" in page.text and "Security questions" not in page.text


def test_policy_change_applies_at_the_next_request(app, client, world):
    codes = enroll_backup_codes(Browser(client), world)
    set_policy(app, world, mode="disabled")
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    tokens_for(browser, world, page, verifier)
    set_policy(app, world, mode="required")
    verifier, page, _ = start(browser, world)
    assert "Backup code" in page.text  # the live session at pwd is stepped up
    assert codes


# --- Login tokens ------------------------------------------------------------------------------
def issue_token(app, world, settings, ttl=15):
    with app.app_context():
        session = db.session()
        issued = admin.create_login_token(session, directory.get_tenant(session, world.slug),
                                          world.alice, settings.base_url, "test", ttl,
                                          settings=settings)
        session.commit()
    return issued.url.replace(settings.base_url, "")


def use_token(browser, path):
    page = browser.get(path)
    assert page.status == 200, page.text[:300]
    return browser.follow(browser.post(path, {"csrf_token": field(CSRF, page.text)}), "\0")


def test_login_token_signs_in_once(app, world, settings):
    path = issue_token(app, world, settings)
    browser = Browser(app.test_client())
    home = use_token(browser, path)
    assert world.alice in home.text
    again = Browser(app.test_client()).get(path)
    assert again.status == 400 and "does not work" in again.text
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        used = session.scalars(select(LoginToken.used_at).where(LoginToken.tenant_id == tenant.id)).all()
        assert len(used) == 1 and used[0] is not None


def test_login_token_expires(app, world, settings):
    path = issue_token(app, world, settings)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        for row in session.scalars(select(LoginToken).where(LoginToken.tenant_id == tenant.id)):
            row.expires_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        session.commit()
    assert Browser(app.test_client()).get(path).status == 400


@pytest.mark.parametrize("bypass", [True, False])
def test_login_token_bypass_on_and_off(app, client, world, settings, bypass):
    enroll_backup_codes(Browser(client), world)
    set_policy(app, world, mode="required", login_token_bypass=bypass)
    path = issue_token(app, world, settings)
    browser = Browser(app.test_client())
    page = use_token(browser, path)
    if bypass:
        assert world.alice in page.text and "You are signed in" in page.text
    else:
        assert "Backup code" in page.text


def test_login_token_session_says_so_in_the_token(app, world, settings):
    path = issue_token(app, world, settings)
    browser = Browser(app.test_client())
    use_token(browser, path)
    verifier, page, _ = start(browser, world)
    claims = tokens_for(browser, world, page, verifier)
    assert claims["amr"] == ["login_token"] and claims["acr"] == "pwd"


# --- Forced setup completed, and what an enrollment does not prove ---------------------------
def test_forced_setup_completed_in_the_sign_in_counts_as_its_second_step(app, world):
    set_policy(app, world, mode="required", factors=["totp"])
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world)
    # The only method allowed: its setup page at once, no choice page (issue 16, finding 8).
    assert "Set up authenticator app" in page.text and 'id="totp-setup-key"' in page.text
    setup = page
    secret = TOTP_KEY.search(setup.text).group(1).replace(" ", "")

    done = browser.follow(browser.post(f"/t/{world.slug}/login/setup/totp", {
        "csrf_token": field(CSRF, setup.text), "tx": field(TX, setup.text),
        "ceremony": field(CEREMONY, setup.text), "code": totp_code(secret)}), world.portal.redirect_uri)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"


def test_a_factor_added_on_the_account_page_does_not_step_up_the_session(app, world):
    browser = Browser(app.test_client())
    secret = enroll_totp(browser, world)  # a password-only session adds its first factor
    verifier, page, _ = start(browser, world, acr_values="mfa")
    # Still asked to prove the factor: having enrolled it is not having used it at sign-in.
    assert page.status == 200 and "Authenticator app" in page.text
    time_step_ahead = totp_code(secret, 1)
    done = browser.follow(answer_challenge(browser, world, page, "totp", code=time_step_ahead),
                          world.portal.redirect_uri)
    assert tokens_for(browser, world, done, verifier)["acr"] == "mfa"


def test_a_step_up_is_a_fresh_proof_for_the_account_page_too(app, world):
    """One freshness rule (``SSOSession.proved_within``): the account page, like the console,
    counts from the last step proved — a step-up that proved a factor just now — not only from
    the sign-in that began the session."""
    browser = Browser(app.test_client())
    secret = enroll_totp(browser, world)  # a password-only session adds its first factor
    age_sessions(app, world, world.alice, 3600)
    assert "Sign in again to change" in browser.get(f"/t/{world.slug}/account").text
    verifier, page, _ = start(browser, world, acr_values="mfa")  # the portal steps it up
    done = browser.follow(answer_challenge(browser, world, page, "totp", code=totp_code(secret, 1)),
                          world.portal.redirect_uri)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["acr"] == "mfa" and claims["auth_time"] < time.time() - 3000  # the same session
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Sign in again to change" not in account and re.search(r"/factors/\d+/remove", account)


def test_admins_cannot_enforce_while_the_tenant_has_mfa_disabled(app, world):
    from idp.directory import DirectoryError

    set_policy(app, world, mode="disabled")
    with pytest.raises(DirectoryError, match="not available"):
        user_mfa(app, world, world.alice, "enforce")


@pytest.mark.parametrize("changes,may_remove", [
    ({"mode": "optional", "self_disable": True}, True),
    ({"mode": "optional", "self_disable": False}, False),  # Klearcom: users cannot turn it off
    ({"mode": "required"}, False),
])
def test_removing_the_last_factor_follows_the_self_disable_rule(app, world, changes, may_remove):
    browser = Browser(app.test_client())
    codes = enroll_backup_codes(browser, world)
    set_policy(app, world, **changes)
    # A session that proved the codes may change factors: sign in again with one.
    page = password_sign_in(browser, world)
    answered = browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), "\0")
    assert "Sign-in and security" in answered.text or "signed in" in answered.text.lower()
    account = browser.get(f"/t/{world.slug}/account")
    factor_id = re.search(r"/factors/(\d+)/remove", account.text).group(1)
    browser.post(f"/t/{world.slug}/account/factors/{factor_id}/remove", {"csrf_token": field(CSRF, account.text)})
    after = browser.get(f"/t/{world.slug}/account").text
    assert ('data-factor="backup"' not in after) is may_remove
    if not may_remove:
        assert "requires two-step verification" in after


def test_a_user_an_admin_reset_cannot_remove_the_factor_they_set_up_again(app, world):
    """The account page asks ``policy.standing``, as the console does: an admin's reset makes
    two-step verification required for the user (whatever the tenant's mode and its
    self-disable switch) until the sign-in has them set a factor up."""
    set_policy(app, world, mode="optional", self_disable=True)
    browser = Browser(app.test_client())
    password_sign_in(browser, world)  # a fresh session, no factor yet
    user_mfa(app, world, world.alice, "reset")
    page = start_enrollment(browser, world, "backup")
    codes = re.findall(r"<code>([a-z0-9-]+)</code>", page.text)
    assert submit_enrollment(browser, world, "backup", page).status == 302
    # A session that proved the codes may change factors: sign in again with one.
    page = password_sign_in(browser, world)
    browser.follow(answer_challenge(browser, world, page, "backup", code=codes[0]), "\0")
    account = browser.get(f"/t/{world.slug}/account")
    assert 'data-factor="backup"' in account.text and 'id="mfa-not-available"' not in account.text
    factor_id = re.search(r"/factors/(\d+)/remove", account.text).group(1)
    browser.post(f"/t/{world.slug}/account/factors/{factor_id}/remove",
                 {"csrf_token": field(CSRF, account.text)})
    after = browser.get(f"/t/{world.slug}/account").text
    assert 'data-factor="backup"' in after and "requires two-step verification" in after


def test_acr_values_added_to_a_link_cannot_lower_the_portals_minimum(app, world):
    """A portal registered with minimum level mfa; someone adds acr_values=phr to its sign-in
    link. Alice has TOTP but is outside the tenant's policy (it names Bob only), so only the
    portal asks for a second step. phr is out of reach for her, but the portal's floor still
    holds: TOTP is asked for, and the token says mfa (before the fix, the password alone got
    a code)."""
    from dataclasses import replace

    import pyotp

    with app.app_context():
        session = db.session()
        made = directory.create_client(session, directory.get_tenant(session, world.slug),
                                       "Payroll", ["https://payroll.test/cb"], min_acr="mfa")
        session.commit()
    strict = replace(world, portal=ClientCreds(made.client.client_id, made.secret,
                                               "https://payroll.test/cb", ""))
    set_policy(app, world, users=[world.bob])
    seed = with_totp(app, world)
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, strict, acr_values="phr")
    assert page.status == 200 and 'name="code"' in page.text, (page.status, page.location)
    done = browser.follow(answer_challenge(browser, strict, page, "totp",
                                           code=pyotp.TOTP(seed).now()), strict.portal.redirect_uri)
    assert tokens_for(browser, strict, done, verifier)["acr"] == "mfa"
