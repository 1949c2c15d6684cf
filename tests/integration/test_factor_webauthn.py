"""Passkeys and security keys (WebAuthn) through the hosted pages, with a software
authenticator standing in for the browser's (tests/support/soft_authenticator.py).

The test app's base URL is http://idp.test: the RP ID is "idp.test" and the only origin
accepted is "http://idp.test". Each refusal is a response a real browser could be tricked
into (or an attacker could craft) and must never yield a code.
"""

from __future__ import annotations

import json
import re
import secrets
from types import SimpleNamespace

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from idp import db, mfa, store
from idp.mfa.base import FactorContext, WrongAnswer
from idp.models import AuditEvent, Authenticator, Tenant, User
from tests.support.account import CEREMONY, password_sign_in, start_enrollment, submit_enrollment
from tests.support.journey import CSRF, TX, Browser, Page, field, pkce_pair, query
from tests.support.rp import jwt_claims, params_for, redeem
from tests.support.signin import challenge_page, set_policy
from tests.support.soft_authenticator import (InvalidState, SoftAuthenticator, b64url,
                                              options_from, unb64url)
from tests.support.webauthn import answer, enroll

ORIGIN = "http://idp.test"
RP_ID = "idp.test"
REFUSED = "could not be verified"


# --- helpers ---------------------------------------------------------------------------------


def enroll_new(app, world, soft: SoftAuthenticator, email: str | None = None,
               name: str | None = None) -> str:
    """A user without a second factor signs in with the password and adds a passkey."""
    browser = Browser(app.test_client())
    password_sign_in(browser, world, email)
    return enroll(browser, world, soft, name)


def at_challenge(app, world, email: str | None = None):
    """A new browser past the password of an authorization request: (browser, verifier, page)."""
    browser, verifier, page = challenge_page(app, world, email)
    assert page.status == 200 and 'id="webauthn-options"' in page.text, (page.status, page.text[:800])
    return browser, verifier, page


def id_token(browser: Browser, world, done: Page, verifier: str) -> dict:
    """Follow an accepted answer to the relying party, redeem the code, decode the ID token."""
    done = browser.follow(done, world.portal.redirect_uri)
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri), \
        (done.status, done.location, done.text[:800])
    r = redeem(browser.http, world, world.portal, query(done.location)["code"], verifier)
    assert r.status_code == 200, r.get_json()
    return jwt_claims(r.get_json()["id_token"])


def passkey_session(app, world, soft: SoftAuthenticator, email: str | None = None) -> Browser:
    """A browser signed in at the tenant (no client) with password + passkey."""
    browser = Browser(app.test_client())
    page = password_sign_in(browser, world, email)
    done = browser.follow(answer(browser, world, page, soft.get(options_from(page.text))), "\0")
    assert done.status == 200 and "/login/verify" not in (done.location or ""), done.text[:800]
    return browser


def actions(app, world) -> list[str]:
    with app.app_context():
        session = db.session()
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == world.slug))
        return session.scalars(select(AuditEvent.action).where(
            AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.id)).all()


def stored(app, lookup: str) -> SimpleNamespace | None:
    """The stored row for a credential id, as plain values."""
    with app.app_context():
        row = db.session().scalar(select(Authenticator).where(Authenticator.lookup == lookup))
        if row is None:
            return None
        return SimpleNamespace(id=row.id, type=row.type, name=row.name, data=dict(row.data),
                               counter=row.counter, last_used_at=row.last_used_at)


def refused(page: Page, message: str = REFUSED) -> None:
    """Refused on the page: a 400 with the reason, no code, and a fresh challenge offered."""
    assert page.status == 400, (page.status, page.location)
    assert message in page.text, page.text[:1500]
    assert 'id="webauthn-again"' in page.text and 'id="webauthn-options"' not in page.text


# --- enrollment ------------------------------------------------------------------------------


def test_enrollment_offers_a_passkey_for_this_site_and_stores_only_public_data(app, client, world):
    browser = Browser(client)
    password_sign_in(browser, world)
    account = browser.get(f"/t/{world.slug}/account")
    # Passkeys sign in by themselves here: one link creates one, the other adds any key.
    assert "Create a passkey" in account.text and "Add a security key" in account.text
    page = start_enrollment(browser, world, "webauthn")
    options = options_from(page.text)
    assert options["rp"] == {"id": RP_ID, "name": f"Tenant {world.slug}"}
    assert options["user"]["name"] == world.alice
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"]["residentKey"] == "preferred"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert {"type": "public-key", "alg": -7} in options["pubKeyCredParams"]
    assert len(unb64url(options["challenge"])) >= 16
    assert options["excludeCredentials"] == []
    # CSP default-src 'self': no inline script, only the JSON data block and our own file.
    for tag in re.findall(r"<script[^>]*>", page.text):
        assert 'type="application/json"' in tag or re.search(r'src="/static/webauthn\.js"', tag), tag
    assert 'name="name"' in page.text and 'value="Passkey"' in page.text

    soft = SoftAuthenticator(ORIGIN)
    credential = soft.create(options)
    done = submit_enrollment(browser, world, "webauthn", page,
                             credential=json.dumps(credential), name="  Work   laptop ")
    assert done.status == 302
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Passkey or security key" in account and "Work laptop" in account

    row = stored(app, credential["id"])
    assert row.type == "webauthn" and row.name == "Work laptop" and row.counter == 0
    assert row.data["transports"] == ["internal"] and row.data["aaguid"] == "00000000-0000-0000-0000-000000000000"
    assert row.data["user_handle"] == options["user"]["id"]
    key = soft.credentials[unb64url(credential["id"])].key
    assert unb64url(row.data["public_key"]) == SoftAuthenticator.cose_key(key)
    assert "mfa.enrolled" in actions(app, world)


def test_the_script_is_served_from_our_own_origin(client):
    r = client.get("/static/webauthn.js")
    assert r.status_code == 200 and "javascript" in r.content_type
    body = r.get_data(as_text=True)
    assert "navigator.credentials.create" in body and "navigator.credentials.get" in body
    assert "webauthn-options" in body and "http" not in body.replace("https://", "").split("*/", 1)[1]


@pytest.mark.parametrize("tamper", ["origin", "rp_id", "challenge", "presence"])
def test_a_registration_that_does_not_check_out_is_refused(app, client, world, tamper):
    browser = Browser(client)
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "webauthn")
    soft = SoftAuthenticator(ORIGIN)
    wrong = {"origin": {"origin": "http://evil.test"}, "rp_id": {"rp_id": "evil.test"},
             "challenge": {"challenge": b64url(secrets.token_bytes(32))},
             "presence": {"up": False}}[tamper]
    credential = soft.create(options_from(page.text), **wrong)
    done = submit_enrollment(browser, world, "webauthn", page, credential=json.dumps(credential))
    assert done.status == 400 and "could not be registered" in done.text
    assert 'id="webauthn-again"' in done.text  # a fresh start, not the spent challenge
    assert stored(app, credential["id"]) is None
    assert "mfa.enroll_failed" in actions(app, world)


def test_second_passkey_excludes_the_first_and_both_can_sign_in(app, world):
    laptop, key = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    first = enroll_new(app, world, laptop, name="Laptop")
    # Changing factors now needs the passkey: sign in with it first.
    browser = passkey_session(app, world, laptop)
    page = start_enrollment(browser, world, "webauthn")
    options = options_from(page.text)
    assert [c["id"] for c in options["excludeCredentials"]] == [first]
    # Same user handle as before: an authenticator keeps one passkey per account.
    assert options["user"]["id"] == stored(app, first).data["user_handle"]
    with pytest.raises(InvalidState):
        laptop.create(options)  # the browser refuses to register the same authenticator twice
    second = key.create(options)
    assert submit_enrollment(browser, world, "webauthn", page, credential=json.dumps(second),
                             name="Blue key").status == 302
    text = browser.get(f"/t/{world.slug}/account").text
    assert "Laptop" in text and "Blue key" in text

    _, _, challenge = at_challenge(app, world)
    allowed = [c["id"] for c in options_from(challenge.text)["allowCredentials"]]
    assert sorted(allowed) == sorted([first, second["id"]])
    browser2, verifier, page2 = at_challenge(app, world)
    claims = id_token(browser2, world, answer(browser2, world, page2, key.get(options_from(page2.text))), verifier)
    assert "hwk" in claims["amr"]


def test_the_same_credential_cannot_be_registered_twice(app, world):
    soft = SoftAuthenticator(ORIGIN)
    first = enroll_new(app, world, soft)
    browser = passkey_session(app, world, soft)
    page = start_enrollment(browser, world, "webauthn")
    # A client that ignores excludeCredentials and sends the registered credential again,
    # correctly attested for this new challenge.
    again = soft.create(options_from(page.text), reuse=first)
    done = submit_enrollment(browser, world, "webauthn", page, credential=json.dumps(again))
    assert done.status == 400 and "registered already" in done.text
    with app.app_context():
        assert len(db.session().scalars(select(Authenticator).where(
            Authenticator.lookup == first)).all()) == 1


def test_a_registration_naming_another_credential_id_is_refused(app, client, world):
    """The id a client names must be the one in authData, whose key is being registered."""
    browser = Browser(client)
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "webauthn")
    credential = SoftAuthenticator(ORIGIN).create(options_from(page.text))
    other = b64url(secrets.token_bytes(32))
    done = submit_enrollment(browser, world, "webauthn", page,
                             credential=json.dumps(dict(credential, id=other, rawId=other)))
    assert done.status == 400 and "could not be registered" in done.text
    assert stored(app, other) is None and stored(app, credential["id"]) is None


# --- sign-in ---------------------------------------------------------------------------------


def test_enroll_then_sign_in_with_the_passkey_reaches_phr(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential_id = enroll_new(app, world, soft, name="Laptop")
    browser, verifier, page = at_challenge(app, world)
    assert "Use passkey or security key" in page.text  # the strongest factor is offered first
    options = options_from(page.text)
    assert options["rpId"] == RP_ID and options["userVerification"] == "preferred"
    assert [c["id"] for c in options["allowCredentials"]] == [credential_id]
    assert options["allowCredentials"][0]["transports"] == ["internal"]

    done = answer(browser, world, page, soft.get(options))
    claims = id_token(browser, world, done, verifier)
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"] and claims["acr"] == "phr"
    row = stored(app, credential_id)
    assert row.counter == 1 and row.last_used_at is not None
    assert "mfa.challenge_passed" in actions(app, world)


def test_without_user_verification_it_is_still_a_possession_factor_but_not_user(app, world):
    soft = SoftAuthenticator(ORIGIN, user_verifying=False)  # a security key without a PIN
    enroll_new(app, world, soft)
    browser, verifier, page = at_challenge(app, world)
    claims = id_token(browser, world, answer(browser, world, page, soft.get(options_from(page.text))), verifier)
    assert claims["amr"] == ["pwd", "hwk", "mfa"] and claims["acr"] == "phr"


@pytest.mark.parametrize("tamper,override", [
    ("wrong origin in clientDataJSON", {"origin": "http://evil.test"}),
    ("an origin on another port", {"origin": "http://idp.test:8080"}),
    ("wrong RP ID hash", {"rp_id": "evil.test"}),
    ("a challenge the server never issued", {"challenge": b64url(secrets.token_bytes(32))}),
    ("no user presence", {"up": False}),
])
def test_an_assertion_that_does_not_check_out_is_refused(app, world, tamper, override):
    soft = SoftAuthenticator(ORIGIN)
    credential_id = enroll_new(app, world, soft)
    browser, _, page = at_challenge(app, world)
    done = answer(browser, world, page, soft.get(options_from(page.text), **override))
    refused(done)
    assert stored(app, credential_id).last_used_at is None
    assert actions(app, world).count("mfa.challenge_failed") == 1
    # The fresh challenge the page offers works with the genuine authenticator.
    retry = browser.get(re.search(r'href="([^"]+)" *\n? *id="webauthn-again"', done.text).group(1).replace("&amp;", "&"))
    assert retry.status == 200 and options_from(retry.text)["challenge"] != options_from(page.text)["challenge"]
    assert answer(browser, world, retry, soft.get(options_from(retry.text))).status == 302


@pytest.mark.parametrize("junk", [
    "not json", "[]", "{}", "[" * 60000, '{"rawId": "!!!", "response": {}}',
    '{"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {"clientDataJSON": "%%%"}}',
])
def test_malformed_credentials_are_a_400_never_a_500(app, world, junk):
    enroll_new(app, world, SoftAuthenticator(ORIGIN))
    browser, _, page = at_challenge(app, world)
    done = answer(browser, world, page, junk)
    assert done.status == 400 and 'role="alert"' in done.text


def test_nothing_posted_asks_for_the_passkey_and_counts_no_attempt(app, world):
    soft = SoftAuthenticator(ORIGIN)
    enroll_new(app, world, soft)
    browser, verifier, page = at_challenge(app, world)
    done = answer(browser, world, page, "")
    assert done.status == 400 and "Use your passkey or security key first" in done.text
    assert "mfa.challenge_failed" not in actions(app, world)


def test_another_users_credential_is_refused(app, world):
    alice_key, bob_key = SoftAuthenticator(ORIGIN), SoftAuthenticator(ORIGIN)
    enroll_new(app, world, alice_key)
    bob_credential = enroll_new(app, world, bob_key, email=world.bob)
    browser, _, page = at_challenge(app, world)  # alice's challenge
    # Bob's genuine signature over alice's challenge, with bob's credential.
    assertion = bob_key.get(options_from(page.text), credential_id=bob_credential)
    refused(answer(browser, world, page, assertion), "not registered to your account")
    assert "mfa.webauthn_foreign_credential" in actions(app, world)
    assert stored(app, bob_credential).last_used_at is None


def test_a_replayed_assertion_is_refused(app, world):
    """A whole assertion recorded from a successful sign-in, sent again for a new sign-in."""
    soft = SoftAuthenticator(ORIGIN, counts=0)  # a synced passkey: the counter cannot help
    enroll_new(app, world, soft)
    browser, verifier, page = at_challenge(app, world)
    recorded = soft.get(options_from(page.text))
    id_token(browser, world, answer(browser, world, page, recorded), verifier)
    attacker, _, page2 = at_challenge(app, world)
    refused(answer(attacker, world, page2, recorded))


def test_a_challenge_is_answered_once_even_when_the_first_answer_failed(app, world):
    """The challenge is spent before the response is checked: whatever the first response
    was, a second one for the same challenge (a replay, a retry, a parallel request) fails."""
    soft = SoftAuthenticator(ORIGIN, counts=0)
    enroll_new(app, world, soft)
    browser, _, page = at_challenge(app, world)
    genuine = soft.get(options_from(page.text))
    broken = json.loads(json.dumps(genuine))
    signature = bytearray(unb64url(broken["response"]["signature"]))
    signature[-1] ^= 1
    broken["response"]["signature"] = b64url(bytes(signature))
    refused(answer(browser, world, page, broken))
    refused(answer(browser, world, page, genuine), "used already")
    assert "mfa.webauthn_challenge_replayed" in actions(app, world)


def test_the_same_challenge_state_verifies_once(app, world):
    """Two requests that loaded the same challenge (parallel sign-ins of one transaction) and
    send the same valid assertion: the factor itself passes only one of them."""
    soft = SoftAuthenticator(ORIGIN, counts=0)
    enroll_new(app, world, soft)
    factor = mfa.get("webauthn")
    with app.app_context():
        session = db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
        user = session.scalar(select(User).where(User.tenant_id == tenant.id,
                                                 User.email == world.alice))
        ctx = FactorContext(db=session, store=store.get(), settings=app.config["IDP"],
                            box=app.extensions["idp.secretbox"], tenant=tenant, user=user)
        factors = list(session.scalars(select(Authenticator).where(Authenticator.user_id == user.id)))
        step = factor.challenge_begin(ctx, factors)
        form = MultiDict({"credential": json.dumps(soft.get(step.context["options"]))})
        proof = factor.verify(ctx, factors, step.state, form)
        assert proof.methods == ["hwk", "user"]
        with pytest.raises(WrongAnswer, match="used already"):
            factor.verify(ctx, factors, step.state, form)
        session.rollback()


@pytest.mark.parametrize("replayed_count", [1, 0])
def test_a_signature_counter_that_goes_back_is_refused_and_audited(app, world, replayed_count):
    soft = SoftAuthenticator(ORIGIN)  # counts 1, 2, 3...
    credential_id = enroll_new(app, world, soft)
    browser, verifier, page = at_challenge(app, world)
    id_token(browser, world, answer(browser, world, page, soft.get(options_from(page.text))), verifier)
    assert stored(app, credential_id).counter == 1

    # A clone of the key, which last signed with counter 1, answers with 1 (or 0) again.
    browser, _, page = at_challenge(app, world)
    done = answer(browser, world, page, soft.get(options_from(page.text), sign_count=replayed_count))
    refused(done, "signature counter")
    assert "mfa.webauthn_sign_count_regressed" in actions(app, world)
    assert stored(app, credential_id).counter == 1

    # The genuine key's next use (counter 2) still works.
    browser, verifier, page = at_challenge(app, world)
    id_token(browser, world, answer(browser, world, page, soft.get(options_from(page.text), sign_count=2)), verifier)
    assert stored(app, credential_id).counter == 2


def test_a_removed_passkey_no_longer_signs_in(app, world):
    soft = SoftAuthenticator(ORIGIN)
    credential_id = enroll_new(app, world, soft, name="Old phone")
    browser = passkey_session(app, world, soft)
    account = browser.get(f"/t/{world.slug}/account")
    assert "Old phone" in account.text and "Remove Old phone" in account.text
    row_id = stored(app, credential_id).id
    removed = browser.post(f"/t/{world.slug}/account/factors/{row_id}/remove",
                           {"csrf_token": field(CSRF, account.text)})
    assert removed.status == 302
    after = browser.get(f"/t/{world.slug}/account").text
    assert "Old phone removed." in after and "Remove Old phone" not in after
    assert stored(app, credential_id) is None
    assert "mfa.removed" in actions(app, world)

    # No second factor left: the password alone signs in, and the old key is not asked for.
    new = Browser(app.test_client())
    verifier, code_challenge = pkce_pair()
    page = new.authorize(f"/t/{world.slug}", params_for(world.portal, code_challenge=code_challenge))
    done = new.sign_in(page, world.alice, world.password, world.slug, world.portal.redirect_uri)
    assert id_token(new, world, done, verifier)["amr"] == ["pwd"]


def test_forced_setup_with_a_passkey_completes_the_sign_in(app, world):
    set_policy(app, world, mode="required", factors=["webauthn"])
    browser = Browser(app.test_client())
    verifier, code_challenge = pkce_pair()
    page = browser.authorize(f"/t/{world.slug}", params_for(world.portal, code_challenge=code_challenge))
    page = browser.sign_in(page, world.alice, world.password, world.slug, world.portal.redirect_uri)
    setup = page  # the only method allowed: its setup at once (issue 16, finding 8)
    soft = SoftAuthenticator(ORIGIN)
    done = browser.follow(browser.post(f"/t/{world.slug}/login/setup/webauthn", {
        "csrf_token": field(CSRF, setup.text), "tx": field(TX, setup.text),
        "ceremony": field(CEREMONY, setup.text), "name": "Laptop",
        "credential": json.dumps(soft.create(options_from(setup.text)))}), world.portal.redirect_uri)
    claims = id_token(browser, world, done, verifier)
    # The registration verified the user (the soft authenticator does UV), so "user" is there.
    assert claims["amr"] == ["pwd", "hwk", "user", "mfa"] and claims["acr"] == "phr"
