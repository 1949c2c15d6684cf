"""A passkey as the whole sign-in (issue 19), and accounts without a password, through the
hosted pages with the software authenticator answering as a browser's would.

The sign-in page asks for any passkey of this site (no credential named: the browser offers
the ones it holds); the passkey names its owner. With user verification it is two kinds of
factor in one (``amr`` hwk + user + mfa, ``acr`` phr); without it, one step, like a password.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from idp import db
from idp.models import AuditEvent, Authenticator, Tenant, User
from tests.support.account import password_sign_in, submit_enrollment
from tests.support.journey import CSRF, TX, Browser, Page, field, pkce_pair
from tests.support.mailed_links import mailed_paths, set_new_password
from tests.support.rp import params_for
from tests.support.signin import (fail_until_locked, put_in_group, set_policy, tokens_for,
                                  user_mfa)
from tests.support.totp import with_totp
from tests.support.soft_authenticator import SoftAuthenticator, options_from
from tests.support.webauthn import answer
from tests.support.world import make_world

ORIGIN = "http://idp.test"
OPTIONS = re.compile(r'<script type="application/json" id="passkey-options">(.*?)</script>', re.S)


def passkey_request(page: Page) -> dict:
    """The passkey request the sign-in page hands to webauthn.js."""
    found = OPTIONS.search(page.text)
    assert found, page.text[:1500]
    return json.loads(found.group(1))


def create_passkey(browser: Browser, world, soft: SoftAuthenticator, name: str = "Laptop") -> str:
    """"Create a passkey" on the account page of a signed-in browser: its credential id."""
    page = browser.get(f"/t/{world.slug}/account/add/webauthn?kind=passkey")
    assert page.status == 200 and "Create a passkey" in page.text, page.text[:800]
    credential = soft.create(options_from(page.text))
    done = submit_enrollment(browser, world, "webauthn", page, credential=json.dumps(credential),
                             name=name)
    assert done.status == 302, done.text[:1500]
    return credential["id"]


def with_passkey(app, world, soft: SoftAuthenticator, email: str | None = None) -> str:
    """A user signs in with the password and creates a passkey: its credential id."""
    browser = Browser(app.test_client())
    password_sign_in(browser, world, email)
    return create_passkey(browser, world, soft)


def portal_login(app, world, **extra) -> tuple[Browser, str, Page]:
    """A new browser at the sign-in page of the portal's request: (browser, verifier, page)."""
    browser = Browser(app.test_client())
    verifier, challenge = pkce_pair()
    page = browser.authorize(f"/t/{world.slug}",
                             params_for(world.portal, code_challenge=challenge, **extra))
    assert page.status == 200 and 'autocomplete="current-password"' in page.text, page.text[:500]
    return browser, verifier, page


def post_passkey(browser: Browser, world, page: Page, assertion: dict | str) -> Page:
    value = assertion if isinstance(assertion, str) else json.dumps(assertion)
    form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "credential": value}
    return browser.follow(browser.post(f"/t/{world.slug}/login/passkey", form),
                          world.portal.redirect_uri)


def sign_in_with(app, world, soft: SoftAuthenticator, credential_id: str, **get) -> tuple:
    """The portal's request answered by the passkey alone: (browser, verifier, the response)."""
    browser, verifier, page = portal_login(app, world)
    assertion = soft.get(passkey_request(page), credential_id=credential_id, **get)
    return browser, verifier, post_passkey(browser, world, page, assertion)


def user_of(session, world, email: str | None = None) -> User:
    """The tenant's user (every test tenant has an alice@example.com)."""
    return session.scalar(select(User).join(Tenant, User.tenant_id == Tenant.id).where(
        Tenant.slug == world.slug, User.email == (email or world.alice)))


def mail_bodies(app, world, to: str, kind: str) -> list[str]:
    from idp.models import OutboxMessage
    with app.app_context():
        session = db.session()
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == world.slug))
        return session.scalars(select(OutboxMessage.body).where(
            OutboxMessage.tenant_id == tenant_id, OutboxMessage.recipient == to,
            OutboxMessage.kind == kind)).all()


def audit_actions(app, world) -> list[str]:
    with app.app_context():
        session = db.session()
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == world.slug))
        return session.scalars(select(AuditEvent.action).where(
            AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.id)).all()


# --- setting one up ----------------------------------------------------------------------------


def test_a_passkey_is_a_discoverable_credential_that_verifies_its_user(app, client, world):
    browser = Browser(client)
    password_sign_in(browser, world)
    page = browser.get(f"/t/{world.slug}/account/add/webauthn?kind=passkey")
    selection = options_from(page.text)["authenticatorSelection"]
    assert selection["residentKey"] == "required" and selection["requireResidentKey"] is True
    assert selection["userVerification"] == "required"
    # Without user verification it is refused, with a way forward, and nothing is stored.
    soft = SoftAuthenticator(ORIGIN, user_verifying=False)
    credential = soft.create(options_from(page.text))
    done = submit_enrollment(browser, world, "webauthn", page, credential=json.dumps(credential))
    assert done.status == 400 and "did not ask for your PIN, fingerprint or face" in done.text
    with app.app_context():
        assert db.session().scalar(select(Authenticator).where(
            Authenticator.lookup == credential["id"])) is None
    # With it, the passkey is kept under the name chosen, marked as one that signs in alone.
    soft = SoftAuthenticator(ORIGIN)
    again = browser.get(f"/t/{world.slug}/account/add/webauthn?kind=passkey")
    lookup = soft.create(options_from(again.text))
    done = submit_enrollment(browser, world, "webauthn", again, credential=json.dumps(lookup),
                             name="Pixel 9")
    assert done.status == 302
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Pixel 9" in account and "Passkey: signs you in by itself" in account
    with app.app_context():
        row = db.session().scalar(select(Authenticator).where(Authenticator.lookup == lookup["id"]))
        assert row.data["passkey"] is True and row.data["user_verified"] is True


# --- signing in with one -------------------------------------------------------------------------


def test_the_sign_in_page_asks_for_any_passkey_of_this_site(app, world):
    _, _, page = portal_login(app, world)
    request = passkey_request(page)
    assert request["rpId"] == "idp.test" and request["allowCredentials"] == []
    assert request["userVerification"] == "preferred"
    assert 'autocomplete="username webauthn"' in page.text
    assert 'id="passkey-button"' in page.text
    # Each page its own challenge; nothing stored to show it.
    _, _, other = portal_login(app, world)
    assert passkey_request(other)["challenge"] != request["challenge"]


def test_a_passkey_with_user_verification_signs_in_with_nothing_more(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    # The tenant requires a second step: the passkey is one, and the first too.
    set_policy(app, world, mode="required")
    browser, verifier, done = sign_in_with(app, world, soft, credential)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["amr"] == ["hwk", "user", "mfa"] and claims["acr"] == "phr"
    with app.app_context():
        assert claims["sub"] == user_of(db.session(), world).subject
    assert "user.passkey_used" in audit_actions(app, world)
    # Single use: the same answer posted again signs nobody in.
    again, _, page = portal_login(app, world)
    assertion = soft.get(passkey_request(page), credential_id=credential)
    assert post_passkey(again, world, page, assertion).status == 302
    replay = post_passkey(again, world, page, assertion)
    assert replay.status == 400 and "used already" in replay.text


def test_a_portal_asking_for_a_phishing_resistant_sign_in_gets_one_from_a_passkey(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    browser, verifier, page = portal_login(app, world, acr_values="phr",
                                           claims=json.dumps({"id_token": {"acr": {
                                               "essential": True, "values": ["phr"]}}}))
    done = post_passkey(browser, world, page,
                        soft.get(passkey_request(page), credential_id=credential))
    claims = tokens_for(browser, world, done, verifier)
    assert claims["acr"] == "phr"


def test_without_user_verification_a_passkey_is_one_step(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    # Where the policy does not cover the user, one step is enough: the token says one.
    put_in_group(app, world, "finance", world.bob)
    set_policy(app, world, groups=["finance"])
    browser, verifier, done = sign_in_with(app, world, soft, credential, uv=False)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["amr"] == ["hwk"] and claims["acr"] == "pwd"


def test_without_user_verification_where_two_steps_are_needed_the_password_comes_first(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    set_policy(app, world, mode="required")
    browser, verifier, page = portal_login(app, world)
    done = post_passkey(browser, world, page,
                        soft.get(passkey_request(page), credential_id=credential, uv=False))
    # Back on the sign-in page, told why, the address filled in: nothing proved carries over.
    assert done.status == 200 and "counts as one step" in done.text
    assert f'value="{world.alice}"' in done.text
    signed = browser.sign_in(done, world.alice, world.password, world.slug,
                             world.portal.redirect_uri)
    assert signed.status == 200 and 'id="webauthn-options"' in signed.text
    # The password, then the same passkey as the second step: two kinds, phishing-resistant.
    finished = browser.follow(answer(browser, world, signed,
                                     soft.get(options_from(signed.text), uv=False)),
                              world.portal.redirect_uri)
    claims = tokens_for(browser, world, finished, verifier)
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == "phr"


def test_a_passkey_answer_from_another_browser_is_refused(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    _, _, page = portal_login(app, world)
    assertion = soft.get(passkey_request(page), credential_id=credential)
    # The challenge was shown to the first browser: the second cannot answer it.
    thief, _, their_page = portal_login(app, world)
    done = post_passkey(thief, world, their_page, assertion)
    assert done.status == 400 and "expired" in done.text


def test_an_old_challenge_is_refused(app, world, monkeypatch):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    browser, _, page = portal_login(app, world)
    assertion = soft.get(passkey_request(page), credential_id=credential)
    import idp.mfa.webauthn as module
    monkeypatch.setattr(module, "CHALLENGE_SECONDS", -1)
    done = post_passkey(browser, world, page, assertion)
    assert done.status == 400 and "expired" in done.text


def test_a_passkey_of_another_organisation_is_refused_without_saying_whose(app, settings, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    other = make_world(app, settings)
    browser, _, page = portal_login(app, other)
    done = post_passkey(browser, other, page,
                        soft.get(passkey_request(page), credential_id=credential))
    assert done.status == 400 and "not one of this organisation" in done.text
    assert world.alice not in done.text
    assert "user.passkey_refused" in audit_actions(app, other)
    assert "idp_sso" not in done.headers.get("Set-Cookie", "")


def test_a_cloned_passkey_is_refused_and_audited(app, world):
    soft = SoftAuthenticator(ORIGIN)  # a counter that moves by one per use
    credential = with_passkey(app, world, soft)
    sign_in_with(app, world, soft, credential)
    _, _, done = sign_in_with(app, world, soft, credential, sign_count=1)  # moved back
    assert done.status == 400 and "out-of-date signature counter" in done.text
    assert "mfa.webauthn_sign_count_regressed" in audit_actions(app, world)


def test_a_removed_passkey_signs_nobody_in(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    with app.app_context():
        session = db.session()
        session.delete(session.scalar(select(Authenticator).where(
            Authenticator.lookup == credential)))
        session.commit()
    _, _, done = sign_in_with(app, world, soft, credential)
    assert done.status == 400 and "removed from its account" in done.text


def test_a_locked_account_stays_locked_for_its_passkey(app, client, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    fail_until_locked(client, world, world.alice)
    _, _, done = sign_in_with(app, world, soft, credential)
    assert done.status == 429


def test_where_passkeys_are_not_a_first_step_the_page_offers_none(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    set_policy(app, world, passkey_first=False)
    browser, _, page = portal_login(app, world)
    assert "passkey-options" not in page.text and 'autocomplete="username"' in page.text
    # A passkey answer posted anyway (to an old page's address) signs nobody in.
    assertion = soft.get({"rpId": "idp.test", "challenge": "AAAA"}, credential_id=credential)
    done = post_passkey(browser, world, page, assertion)
    assert done.status == 400 and "idp_sso" not in done.headers.get("Set-Cookie", "")


def test_a_deactivated_account_cannot_sign_in_with_its_passkey(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    with app.app_context():
        session = db.session()
        user_of(session, world).status = "deactivated"
        session.commit()
    _, _, done = sign_in_with(app, world, soft, credential)
    assert done.status == 403 and "idp_sso" not in done.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("garbage", ["", "not json", json.dumps({"rawId": "@@", "response": {}})])
def test_garbage_instead_of_a_passkey_is_a_clear_refusal(app, world, garbage):
    browser, _, page = portal_login(app, world)
    done = post_passkey(browser, world, page, garbage)
    assert done.status == 400 and 'id="passkey-options"' in done.text


# --- accounts without a password ----------------------------------------------------------------


def passwordless_browser(app, world, soft) -> tuple[Browser, str]:
    """Alice with a passkey and no password any more, signed in with the passkey:
    (the browser, the passkey's credential id)."""
    credential = with_passkey(app, world, soft)
    set_policy(app, world, passwordless=True)
    browser = passkey_browser(app, world, soft, credential)
    account = browser.get(f"/t/{world.slug}/account")
    done = browser.post(f"/t/{world.slug}/account/password/remove",
                        {"csrf_token": field(CSRF, account.text)})
    assert done.status == 302
    return browser, credential


def passkey_browser(app, world, soft, credential) -> Browser:
    """A browser signed in at the tenant with the passkey alone."""
    browser = Browser(app.test_client())
    page = browser.get(f"/t/{world.slug}/login")
    done = browser.follow(browser.post(f"/t/{world.slug}/login/passkey", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
        "credential": json.dumps(soft.get(passkey_request(page), credential_id=credential))}),
        "\0")
    assert done.status == 200 and "/login" not in (done.location or ""), done.text[:800]
    return browser


def test_a_user_with_a_passkey_may_remove_their_password_where_the_tenant_allows(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    browser = passkey_browser(app, world, soft, credential)
    account = browser.get(f"/t/{world.slug}/account")
    assert 'id="remove-password"' not in account.text  # not allowed by the tenant yet
    set_policy(app, world, passwordless=True)
    account = browser.get(f"/t/{world.slug}/account")
    assert 'id="remove-password"' in account.text
    done = browser.post(f"/t/{world.slug}/account/password/remove",
                        {"csrf_token": field(CSRF, account.text)})
    assert done.status == 302
    assert "You have no password" in browser.get(f"/t/{world.slug}/account").text
    assert "user.password_removed" in audit_actions(app, world)
    # The old password signs nobody in; the passkey does.
    page = password_sign_in(Browser(app.test_client()), world)
    assert "Incorrect email or password." in page.text
    passkey_browser(app, world, soft, credential)


def test_the_last_passkey_of_an_account_without_a_password_cannot_be_removed(app, world):
    browser, credential = passwordless_browser(app, world, SoftAuthenticator(ORIGIN))
    with app.app_context():
        auth_id = db.session().scalar(select(Authenticator.id).where(
            Authenticator.lookup == credential))
    account = browser.get(f"/t/{world.slug}/account")
    browser.post(f"/t/{world.slug}/account/factors/{auth_id}/remove",
                 {"csrf_token": field(CSRF, account.text)})
    after = browser.get(f"/t/{world.slug}/account").text
    assert "This passkey is how you sign in" in after
    with app.app_context():
        assert db.session().get(Authenticator, auth_id) is not None
    # Setting a password again needs no current one, only the recent sign-in.
    page = browser.get(f"/t/{world.slug}/account/password")
    assert "Set a password" in page.text and 'name="current"' not in page.text
    done = browser.post(f"/t/{world.slug}/account/password", {
        "csrf_token": field(CSRF, page.text), "password": "a brand new long password",
        "confirm": "a brand new long password"})
    assert done.status == 302
    other = Browser(app.test_client())
    page = other.get(f"/t/{world.slug}/login")
    signed = other.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "email": world.alice,
        "password": "a brand new long password"})
    # The new password is right: on to the second step (the passkey, held as a second factor).
    assert signed.status == 302 and "/login/verify" in signed.location


def test_a_password_cannot_be_removed_by_a_stale_session(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    set_policy(app, world, passwordless=True)
    browser = passkey_browser(app, world, soft, credential)
    account = browser.get(f"/t/{world.slug}/account")
    with app.app_context():  # the sign-in is an hour old
        from tests.support.account import age_sessions
        age_sessions(app, world, world.alice, 3600)
    done = browser.post(f"/t/{world.slug}/account/password/remove",
                        {"csrf_token": field(CSRF, account.text)})
    assert done.status == 302 and "/login" in done.location
    with app.app_context():
        assert user_of(db.session(), world).password_hash


def test_a_lost_passkey_of_an_account_without_a_password_is_recovered_by_mail(app, world):
    """"Forgot your password?" mails an account that signs in with a passkey a link too: it
    sets a password (a way in again), and the policy still asks for the second step."""
    _, credential = passwordless_browser(app, world, SoftAuthenticator(ORIGIN))
    browser = Browser(app.test_client())
    page = browser.get(f"/t/{world.slug}/login/forgot")
    sent = browser.post(f"/t/{world.slug}/login/forgot",
                        {"csrf_token": field(CSRF, page.text), "tx": "", "email": world.alice})
    assert sent.status == 200
    [path] = mailed_paths(app, world, world.alice, "reset")
    after = set_new_password(browser, path, "a brand new long password")
    assert after.status == 302 and "/login/verify" in after.location
    with app.app_context():
        assert user_of(db.session(), world).password_hash


# --- what the adversarial review found ------------------------------------------------------------


def test_deeply_nested_client_data_is_a_clear_refusal_not_a_500(app, world):
    import base64
    browser, _, page = portal_login(app, world)
    nested = base64.urlsafe_b64encode(b"[" * 40000).rstrip(b"=").decode()
    garbage = {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
               "response": {"clientDataJSON": nested, "authenticatorData": "AAAA",
                            "signature": "AAAA", "userHandle": "AAAA"}}
    done = post_passkey(browser, world, page, garbage)
    assert done.status == 400 and "expired" in done.text


def test_an_account_that_never_had_a_password_neither_gets_one_nor_signs_in_with_a_passkey(app, world):
    """An account made through the organisation's provider (no password, never removed) must
    not turn a passkey or the account page into a way around that provider."""
    soft = SoftAuthenticator(ORIGIN)
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    credential = create_passkey(browser, world, soft)
    with app.app_context():  # as an account the upstream provider created would be
        session = db.session()
        user_of(session, world).password_hash = None
        session.commit()
    _, _, done = sign_in_with(app, world, soft, credential)
    assert done.status == 400 and "sign-in service, not with a passkey alone" in done.text
    page = browser.get(f"/t/{world.slug}/account/password")
    refused = browser.post(f"/t/{world.slug}/account/password", {
        "csrf_token": field(CSRF, page.text), "password": "a brand new long password",
        "confirm": "a brand new long password"})
    assert refused.status == 400
    with app.app_context():
        assert user_of(db.session(), world).password_hash is None
    assert "Set a password" not in browser.get(f"/t/{world.slug}/account").text


def test_after_an_admin_reset_a_passwordless_account_still_gets_its_reset_link(app, world):
    passwordless_browser(app, world, SoftAuthenticator(ORIGIN))
    user_mfa(app, world, world.alice, "reset")  # every method gone, the passkey too
    browser = Browser(app.test_client())
    page = browser.get(f"/t/{world.slug}/login/forgot")
    browser.post(f"/t/{world.slug}/login/forgot",
                 {"csrf_token": field(CSRF, page.text), "tx": "", "email": world.alice})
    [path] = mailed_paths(app, world, world.alice, "reset")
    assert set_new_password(browser, path, "a brand new long password").status == 302


def test_removing_the_password_needs_self_service_reset_and_tells_the_owner(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    set_policy(app, world, passwordless=True, self_service_reset=False)
    browser = passkey_browser(app, world, soft, credential)
    assert 'id="remove-password"' not in browser.get(f"/t/{world.slug}/account").text
    set_policy(app, world, self_service_reset=True)
    account = browser.get(f"/t/{world.slug}/account")
    browser.post(f"/t/{world.slug}/account/password/remove", {"csrf_token": field(CSRF, account.text)})
    [body] = mail_bodies(app, world, world.alice, "password_changed")
    assert "was removed" in body and "Forgot your password?" in body


def test_wrong_passwords_for_an_account_without_one_do_not_lock_out_its_passkey(app, client, world):
    soft = SoftAuthenticator(ORIGIN)
    _, credential = passwordless_browser(app, world, soft)
    for _ in range(8):
        page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
        client.post(f"/t/{world.slug}/login", data={
            "csrf_token": field(CSRF, page), "tx": field(TX, page), "email": world.alice,
            "password": "guess"})
    passkey_browser(app, world, soft, credential)


def test_a_portal_asking_more_of_a_one_step_passkey_session_sends_the_person_to_sign_in(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential = with_passkey(app, world, soft)
    put_in_group(app, world, "finance", world.bob)
    set_policy(app, world, groups=["finance"])  # alice is outside the policy
    browser, _, done = sign_in_with(app, world, soft, credential, uv=False)
    assert done.status == 302  # a one-step session
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, acr_values="mfa"))
    # Not "this sign-in has expired": the sign-in page, saying why.
    assert page.status == 200 and 'autocomplete="current-password"' in page.text
    assert "counts as one step" in page.text


def test_a_step_up_whose_session_ended_meanwhile_gets_nothing(app, world):
    """Started from a session that a reset (or a sign-out everywhere) then ended: its answer
    neither starts a session nor hands the portal a code."""
    seed = with_totp(app, world)
    set_policy(app, world, mode="optional")
    browser = Browser(app.test_client())
    verifier, challenge = pkce_pair()
    # A password-only session (the app set up later, as a thief's stolen cookie would be).
    with app.app_context():
        session = db.session()
        alice = user_of(session, world)
        totp = session.scalar(select(Authenticator).where(Authenticator.user_id == alice.id))
        totp_id, totp.type = totp.id, "totp-off"
        session.commit()
    password_sign_in(browser, world)
    with app.app_context():
        session = db.session()
        session.get(Authenticator, totp_id).type = "totp"
        session.commit()
    page = browser.authorize(f"/t/{world.slug}", params_for(
        world.portal, code_challenge=challenge,
        claims=json.dumps({"id_token": {"acr": {"essential": True, "values": ["mfa"]}}})))
    assert page.status == 200 and 'name="code"' in page.text, page.text[:800]
    with app.app_context():  # the owner signs out everywhere (what a reset does too)
        from idp import store
        from idp.journey import session as sso
        sso.end_everything(db.session(), user_of(db.session(), world).id, store.get())
        db.session().commit()
    from tests.support.totp import totp_code
    done = browser.post(f"/t/{world.slug}/login/verify", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "factor": "totp",
        "code": totp_code(seed)})
    assert done.status in (200, 400) and "code=" not in (done.location or "")
    assert "idp_sso=" not in done.headers.get("Set-Cookie", "")
