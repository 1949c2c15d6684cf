"""Probes from an adversarial review of issue 15's fixes: each asserts the secure behaviour,
and each of the first five failed on the fixes as they first landed.

- A password typed on the login page of a stored sign-in inherited its notes: another user's
  trusted upstream sign-in waived the password user's second factor, and another user's grace
  skip skipped their forced setup (``transaction.first_step_proved`` now starts afresh).
- The console's 15-minute step-up kept the session's own factors as proved and asked for
  nothing (it now keeps only the first step: password, upstream or login link).
- "Sign in with <upstream>" kept a verifier and nonce in Redis for anyone who pressed it (the
  login-flow storage exhaustion class): now bounded per client address.
- Dot segments in ``next`` (``/t/acme/../../x``) left the tenant's path.

Held: odd tx/next values on the new pages (hypothesis), other next= spellings.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from idp import db, directory
from tests.support.account import age_sessions, answer_challenge, password_sign_in
from tests.support.journey import CSRF, TX, Browser, field, pkce_pair
from tests.support.rp import params_for
from tests.support.signin import set_policy, start, tokens_for
from tests.support.totp import enroll_another, totp_code
from tests.support.upstream_signin import add_upstream


def _login_page_for(browser: Browser, world, tx_id: str):
    page = browser.get(f"/t/{world.slug}/login", {"tx": tx_id})
    assert page.status == 200 and 'autocomplete="current-password"' in page.text, \
        (page.status, page.location, page.text[:400])
    return page


def _post_password(browser: Browser, world, page, email):
    form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "email": email, "password": world.password}
    return browser.follow(browser.post(f"/t/{world.slug}/login", form), world.portal.redirect_uri)


# --- Stale progress: a stored sign-in reused at the password page ------------------------------

def test_a_trusted_upstream_sign_in_does_not_waive_another_users_second_factor(app, world,
                                                                               upstream):
    """Alice (the attacker) has an account at an upstream the tenant trusts for MFA. She signs
    in through it with prompt=consent, so the finished sign-in waits, stored, at the consent
    page. She opens the login page with that stored sign-in's id and types Bob's password:
    Bob has an authenticator app, and his second factor must still be asked for."""
    bobs_phone = Browser(app.test_client())
    password_sign_in(bobs_phone, world, world.bob)
    enroll_another(bobs_phone, world)
    add_upstream(app, world, upstream, trust_mfa="always")

    browser = Browser(app.test_client())
    verifier, challenge = pkce_pair()
    login = browser.authorize(f"/t/{world.slug}", params_for(
        world.portal, code_challenge=challenge, prompt="consent"))
    page = browser.post(f"/t/{world.slug}/login/upstream/partner",
                        {"csrf_token": field(CSRF, login.text), "tx": field(TX, login.text)})
    there = requests.get(page.location, allow_redirects=False, timeout=10,
                         verify=str(upstream.ca_file))
    consent = browser.follow(browser.get(there.headers["Location"]), world.portal.redirect_uri)
    assert consent.status == 200 and "Allow" in consent.text, consent.text[:500]
    stored_tx = field(TX, consent.text)
    assert not stored_tx.startswith("p.")

    after = _post_password(browser, world, _login_page_for(browser, world, stored_tx), world.bob)
    # Secure: Bob's authenticator app is asked for (or the sign-in is refused); never consent
    # or a code on his password alone.
    assert "code=" not in (after.location or ""), after.location
    if "Allow" in after.text:  # the hole: show what the portal gets
        done = browser.consent(after, world.slug, allow=True, stop_at=world.portal.redirect_uri)
        claims = tokens_for(browser, world, done, verifier)
        pytest.fail(f"a code for Bob without his second factor: {claims['email']} "
                    f"amr={claims['amr']} acr={claims['acr']}")


def test_a_grace_skip_used_by_one_user_does_not_skip_anothers_forced_setup(app, world):
    """Grace skips: Alice has one left, Bob has none (his setup is forced now). Alice signs in
    with prompt=consent and skips; the sign-in waits at consent, stored. Bob's password typed
    on the login page of that stored sign-in must lead to Bob's forced setup."""
    set_policy(app, world, mode="required", factors=["totp"], grace_skips=1)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        directory.find_user(session, tenant, world.bob).mfa_skips_used = 1
        session.commit()
    browser = Browser(app.test_client())
    _, wizard, _ = start(browser, world, prompt="consent")
    assert "Not now" in wizard.text, wizard.text[:400]
    consent = browser.follow(browser.post(f"/t/{world.slug}/login/setup/skip", {
        "csrf_token": field(CSRF, wizard.text), "tx": field(TX, wizard.text)}), "\0")
    assert consent.status == 200 and "Allow" in consent.text, consent.text[:500]
    stored_tx = field(TX, consent.text)

    after = _post_password(browser, world, _login_page_for(browser, world, stored_tx), world.bob)
    assert "code=" not in (after.location or ""), after.location
    assert "Allow" not in after.text, "Bob skipped his forced setup with Alice's skip"
    assert "/login/setup" in after.text or "Set up" in after.text or "set up" in after.text, \
        after.text[:500]


# --- Console step-up: "a second factor proved in the last 15 minutes" -------------------------

def test_a_stale_console_session_must_prove_a_factor_again(app, world):
    """The console asks for a second factor proved in the last 15 minutes. An admin signed in
    with password + app an hour ago; the step-up must ask for the app again, not refresh the
    session's clock because its amr already lists otp."""

    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.admin)
    secret = enroll_another(browser, world)
    browser.post(f"/t/{world.slug}/signout", {})  # (CSRF aside, a fresh browser follows)
    browser = Browser(app.test_client())
    challenge = password_sign_in(browser, world, world.admin)
    done = browser.follow(answer_challenge(browser, world, challenge, "totp",
                                           code=totp_code(secret, 1)), "\0")
    assert done.status == 200, (done.status, done.text[:300])
    assert browser.follow(browser.get(f"/t/{world.slug}/admin"), "\0").status == 200  # fresh

    age_sessions(app, world, world.admin, 3600)
    page = browser.follow(browser.get(f"/t/{world.slug}/admin"), "\0")
    # Secure: the second-factor page, not the console.
    assert 'name="code"' in page.text or "/login/verify" in page.text, \
        f"console opened without a fresh factor: {page.status} {page.text[:300]}"


# --- Anonymous state: the federation button ----------------------------------------------------

def test_anonymous_upstream_buttons_store_a_bounded_number_of_sign_ins(app, world, upstream,
                                                                        monkeypatch):
    """Issue 15's hardening: what a visitor who proved nothing makes us keep is bounded. The
    "Sign in with Partner SSO" button must keep its PKCE verifier and nonce until the upstream
    answers, so presses are counted per client address; past the limit nothing more is kept."""
    from dataclasses import replace

    from idp import store

    add_upstream(app, world, upstream, trust_mfa="never")
    monkeypatch.setitem(app.config, "IDP", replace(app.config["IDP"],
                                                   upstream_starts_per_10_minutes=5))
    with app.app_context():
        store.get().delete("guard:upstream-starts:127.0.0.1")
        before = set(store.get().scan_iter(count=1000))
    answers = []
    for _ in range(8):
        browser = Browser(app.test_client())
        login = browser.get(f"/t/{world.slug}/login")
        answers.append(browser.post(f"/t/{world.slug}/login/upstream/partner",
                                    {"csrf_token": field(CSRF, login.text),
                                     "tx": field(TX, login.text)}))
    assert [a.status for a in answers] == [302] * 5 + [429] * 3
    assert all(a.location.startswith(upstream.issuer) for a in answers[:5])
    assert "Too many sign-ins" in answers[-1].text
    with app.app_context():
        added = set(store.get().scan_iter(count=1000)) - before
    assert len(added) <= 5 + 1, f"{len(added)} keys kept for 8 anonymous presses"


# --- Odd input on the new paths: a 4xx or a page, never a 500, never another host -------------


_tx_values = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=80),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=80).map(lambda s: "p." + s),
    st.binary(max_size=120).map(lambda b: "p." + __import__("base64").urlsafe_b64encode(b)
                                .decode().rstrip("=")),
    st.sampled_from(["p.", "p.=", "p.====", "p.\x00", "p." + "A" * 9000, "x" * 64, "x" * 65,
                     "p.AAAAAAAAAAAAAAAA", "p.\u00e9\u00e9", "../", "%00"]),
)
_next_values = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=60),
    st.sampled_from(["//evil.test", "/\\evil.test", "\\\\evil.test", "/t/{slug}/..//evil.test",
                     "/t/{slug}/%2f%2fevil.test", "/t/{slug}/%5C%5Cevil.test",
                     "/t/{slug}/\t/evil.test", "/t/{slug}/\r\nSet-Cookie: a=1",
                     "https://evil.test/", "/t/{slug}/\u3002evil", "/t/{slug}/@evil.test",
                     "/t/{slug}//evil.test", "/t/{slug}/\uff0f\uff0fevil.test",
                     "/t/{slug}/../../evil.test", "javascript:alert(1)", "/t/{slug}/\x00"]),
)
_FUZZ = hsettings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture,
                                         HealthCheck.too_slow])


def _no_foreign_redirect(r, slug):
    assert r.status_code < 500, (r.status_code, r.get_data(as_text=True)[:300])
    location = r.headers.get("Location")
    if location:
        parts = urlsplit(location)
        assert parts.netloc in ("", "idp.test", "portal.test"), location
        assert not location.startswith("//") and "\\" not in location, location


@_FUZZ
@given(tx=_tx_values, next_=_next_values)
def test_fuzz_sign_in_pages_with_odd_tx_and_next(app, world, tx, next_):
    client = app.test_client()
    slug = world.slug
    next_ = next_.replace("{slug}", slug)
    for path in ("login", "login/verify", "login/setup", "login/setup/totp", "consent",
                 "authorize/resume"):
        r = client.get(f"/t/{slug}/{path}?" + urlencode({"tx": tx, "next": next_}))
        _no_foreign_redirect(r, slug)
    r = client.get(f"/t/{slug}/login?" + urlencode({"next": next_}))
    _no_foreign_redirect(r, slug)
    page = r.get_data(as_text=True)
    if r.status_code == 200:
        csrf = field(CSRF, page)
        for path in ("login", "login/verify", "login/setup/skip", "consent",
                     "login/upstream/none"):
            r = client.post(f"/t/{slug}/{path}", data={"csrf_token": csrf, "tx": tx,
                                                       "email": "a@b.c", "password": "x"})
            _no_foreign_redirect(r, slug)


@pytest.mark.parametrize("next_", ["//evil.test", "/\\evil.test", "/t/{slug}/..//evil.test",
                                   "/t/{slug}/%2f%2fevil.test", "/t/{slug}/%5c%5cevil.test",
                                   "/t/{slug}/\uff0f\uff0fevil.test", "/t/{slug}/\t/evil.test",
                                   "/t/{slug}/../../x", "/t/{slug}/\u2215\u2215evil.test"])
def test_next_after_sign_in_stays_on_this_host(app, world, next_):
    browser = Browser(app.test_client())
    next_ = next_.replace("{slug}", world.slug)
    page = browser.get(f"/t/{world.slug}/login", {"next": next_})
    done = browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
        "email": world.alice, "password": world.password})
    assert done.status == 302, done.text[:300]
    location = done.location
    parts = urlsplit(location)
    assert parts.netloc in ("", "idp.test") and not location.startswith("//"), location
    # What a browser would make of it: the path it resolves to stays under this tenant.
    from urllib.parse import urljoin

    resolved = urlsplit(urljoin(f"http://idp.test/t/{world.slug}/login", location))
    assert resolved.netloc == "idp.test", location
    assert resolved.path.startswith(f"/t/{world.slug}/") or resolved.path.startswith("/t/"), \
        location
    assert not resolved.path.startswith("//"), location
