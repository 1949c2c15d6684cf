"""The sign-in's steps (``idp.journey.signin``) called directly, one request at a time, and the
outcome each situation gives: what the hosted pages would show next. A browser's cookies (its
binding, its SSO session) are carried from one request to the next as the pages would set
them, so each test reads as a person's sign-in without parsing a single page.

At the end, through the hosted pages: a sign-in stored by another version of the code (a
deploy in the middle of it) gives a "start again" page, never a 500."""

from __future__ import annotations

import json
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import pyotp
import pytest
from flask import Flask, g, request

from idp import db, directory, store
from idp.journey import login_links, signin, transaction
from idp.journey import session as sso
from idp.journey.outcomes import (AskFactor, AskSetup, ChallengePage, LockedOut, Refused,
                                  SetupChoice, SetupPage, SignedIn, WrongPassword)
from idp.journey.signin import INCORRECT
from idp.journey.transaction import BROWSER_COOKIE, VERSION, Transaction, TransactionGone
from idp.mfa.flow import CAPTCHA_NEEDED
from idp.models import Authenticator, User
from idp.policy import Need
from idp.web import load_tenant
from tests.support.rp import params_for
from tests.support.signin import set_policy

ESSENTIAL_PHR = json.dumps({"id_token": {"acr": {"essential": True, "values": ["phr"]}}})


@dataclass
class DirectBrowser:
    """One browser calling the journey's steps itself: each ``request()`` is one request of it,
    with its cookies sent and the tenant loaded as the sign-in's pages load it; afterwards the
    database is committed and the cookies the step set are kept, as the app does after a view."""

    app: Flask
    slug: str
    address: str = "127.0.0.1"
    cookies: dict = field(default_factory=dict)

    @contextmanager
    def request(self, form: dict | None = None):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        with self.app.test_request_context(
                f"/t/{self.slug}/login", method="GET" if form is None else "POST", data=form,
                headers=headers, environ_base={"REMOTE_ADDR": self.address}):
            load_tenant("login.login", {"tenant": self.slug})
            yield
            if "db" in g:
                g.db.commit()
            if g.get("browser_cookie_new"):
                self.cookies[BROWSER_COOKIE] = g.browser_id
            if "sso_cookie" in g:
                if g.sso_cookie:
                    self.cookies[sso.COOKIE] = g.sso_cookie
                else:
                    self.cookies.pop(sso.COOKIE, None)

    def password(self, email: str, password: str, params: dict | None = None):
        """The login page posted: a fresh sign-in (for ``params``, a portal's request, else
        none) and its password step."""
        with self.request():
            tx = transaction.pending(g.tenant.id, params or {}, next_url=f"/t/{self.slug}/")
        with self.request(form={"email": email, "password": password}):
            return signin.with_password(tx, email, password,
                                        self.app.extensions["idp.passwords"])

    def session(self) -> sso.SSOSession | None:
        """The SSO session this browser has now, as any page reads it."""
        with self.request():
            return sso.current(g.tenant.id)

    def challenge(self, tx_id: str, factor: str | None, answer: dict | None = None):
        """The challenge page opened (``answer`` None) or its form posted."""
        with self.request(form=answer):
            return signin.challenge(tx_id, factor, request.form if answer is not None else None)

    def setup(self, tx_id: str, factor: str, answer: dict | None = None,
              setup_id: str | None = None):
        with self.request(form=answer):
            return signin.setup(tx_id, factor, request.form if answer is not None else None,
                                setup_id)

    def skip(self, tx_id: str):
        with self.request(form={"tx": tx_id}):
            return signin.skip_setup(tx_id)


@pytest.fixture
def browser(app, world) -> DirectBrowser:
    return DirectBrowser(app, world.slug)


def user_id(app, world, email: str) -> int:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).id


def add_totp(app, world, email: str) -> str:
    """An authenticator app set up for ``email`` (as the account page would keep it); its
    secret, to compute codes with."""
    secret = pyotp.random_base32(32)
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        session.add(Authenticator(
            tenant_id=user.tenant_id, user_id=user.id, type="totp", name="Phone",
            data={"secret": app.extensions["idp.secretbox"].encrypt(secret),
                  "handle": secrets.token_urlsafe(12)}))
        session.commit()
    return secret


def factor_types(app, world, email: str) -> list[str]:
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        return [a.type for a in user.authenticators]


def wrong(secret: str) -> str:
    """A code the app does not show now (nor one step before or after)."""
    shown = {pyotp.TOTP(secret).at(time.time() + 30 * step) for step in (-1, 0, 1)}
    return next(c for c in (f"{n:06d}" for n in range(1000)) if c not in shown)


def signed_in_user(outcome, email: str) -> None:
    assert isinstance(outcome, SignedIn), outcome
    assert outcome.user.email == email


# -- the password ---------------------------------------------------------------------------

def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(browser, world):
    wrong_password = browser.password(world.alice, "not her password")
    nobody = browser.password("nobody@example.com", "not her password")
    assert wrong_password == WrongPassword(INCORRECT) == nobody
    assert INCORRECT == "Incorrect email or password."
    assert browser.session() is None


def test_the_right_password_signs_in_where_no_second_step_is_asked(app, browser, world):
    set_policy(app, world, mode="disabled")
    outcome = browser.password(world.alice, world.password)
    signed_in_user(outcome, world.alice)
    assert outcome.tx.authenticated and not outcome.offer_backup
    assert outcome.tx.next_url == f"/t/{world.slug}/"  # where the home page sends it
    session = browser.session()  # the next page finds the browser signed in
    assert session is not None and session.user_id == user_id(app, world, world.alice)
    assert (session.amr, session.acr, session.sid) == (["pwd"], "pwd", outcome.tx.sid)


def test_a_portal_sign_in_keeps_its_request_and_binds_it_to_the_new_session(app, browser, world):
    set_policy(app, world, mode="disabled")
    params = params_for(world.portal)
    outcome = browser.password(world.alice, world.password, params)
    signed_in_user(outcome, world.alice)
    assert outcome.tx.params == params  # the code is issued for this request, state and all
    assert outcome.tx.sid == browser.session().sid


# -- a second factor ------------------------------------------------------------------------

def test_a_required_policy_asks_a_user_without_a_factor_to_set_one_up(app, browser, world):
    set_policy(app, world, mode="required")
    outcome = browser.password(world.alice, world.password, params_for(world.portal))
    assert isinstance(outcome, AskSetup)
    assert browser.session() is None  # nothing is signed in before the setup
    with browser.request():
        assert transaction.load(g.tenant.id, outcome.tx.id).user_id == \
            user_id(app, world, world.alice)
    with DirectBrowser(app, world.slug).request():  # the link alone, in another browser
        with pytest.raises(TransactionGone):
            transaction.load(g.tenant.id, outcome.tx.id)


def test_a_user_with_an_app_is_challenged_and_its_code_signs_in(app, browser, world):
    secret = add_totp(app, world, world.alice)
    set_policy(app, world, mode="required")
    asked = browser.password(world.alice, world.password, params_for(world.portal))
    assert isinstance(asked, AskFactor)
    assert browser.session() is None

    page = browser.challenge(asked.tx.id, "totp")
    assert isinstance(page, ChallengePage) and page.factor.type == "totp"
    assert page.error is None and page.others == [] and page.context["names"] == ["Phone"]

    done = browser.challenge(asked.tx.id, "totp", {"code": pyotp.TOTP(secret).now()})
    signed_in_user(done, world.alice)
    session = browser.session()
    assert "otp" in session.amr and session.acr == "mfa" and done.tx.sid == session.sid


def test_a_wrong_code_shows_the_challenge_again_and_enough_of_them_lock(app, browser, world):
    secret = add_totp(app, world, world.alice)
    set_policy(app, world, mode="required", lock_after=3)
    asked = browser.password(world.alice, world.password)
    for _ in range(2):
        again = browser.challenge(asked.tx.id, "totp", {"code": wrong(secret)})
        assert isinstance(again, ChallengePage) and again.factor.type == "totp"
        assert "not right" in again.error
    locked = browser.challenge(asked.tx.id, "totp", {"code": wrong(secret)})
    assert isinstance(locked, LockedOut) and not locked.network and locked.until > time.time()
    assert browser.session() is None
    with pytest.raises(TransactionGone):  # this sign-in is over: the right code comes too late
        browser.challenge(asked.tx.id, "totp", {"code": pyotp.TOTP(secret).now()})
    # The account is locked, whatever is tried next.
    assert isinstance(browser.password(world.alice, world.password), LockedOut)


# -- the guard ------------------------------------------------------------------------------

def test_wrong_passwords_lock_the_account_even_for_the_right_one(app, browser, world):
    set_policy(app, world, lock_after=3)
    for _ in range(2):
        assert browser.password(world.alice, "guess") == WrongPassword(INCORRECT)
    locked = browser.password(world.alice, "guess")
    assert isinstance(locked, LockedOut) and not locked.network and locked.until > time.time()
    again = browser.password(world.alice, world.password)
    assert isinstance(again, LockedOut) and not again.network
    assert browser.session() is None
    # Another account is not affected.
    set_policy(app, world, mode="disabled")
    assert isinstance(browser.password(world.bob, world.password), SignedIn)


def test_after_a_few_wrong_passwords_the_check_is_asked_for(browser, world):
    for _ in range(2):
        assert browser.password(world.alice, "guess") == WrongPassword(INCORRECT)
    third = browser.password(world.alice, "guess")
    assert third.message == INCORRECT and third.captcha is not None  # shown with the next try
    # Without the check solved not even the right password is looked at.
    unsolved = browser.password(world.alice, world.password)
    assert unsolved.message == CAPTCHA_NEEDED and unsolved.captcha is not None
    assert browser.session() is None


def test_too_many_wrong_passwords_from_one_network_lock_that_network(app, settings, world,
                                                                     monkeypatch):
    monkeypatch.setitem(app.config, "IDP", replace(settings, ip_failures_per_10_minutes=2))
    # Addresses of their own (others' tests count under 127.0.0.1), for this test only.
    stuffing = DirectBrowser(app, world.slug, address=f"198.51.100.{secrets.randbelow(254) + 1}")
    # Wrong guesses spread over accounts, as credential stuffing does.
    assert stuffing.password(world.alice, "guess") == WrongPassword(INCORRECT)
    assert stuffing.password(world.bob, "guess") == WrongPassword(INCORRECT)
    locked = stuffing.password(world.alice, world.password)
    assert isinstance(locked, LockedOut) and locked.network
    assert stuffing.session() is None
    # The account itself is not locked: from elsewhere its owner signs in.
    set_policy(app, world, mode="disabled")
    elsewhere = DirectBrowser(app, world.slug, address=f"192.0.2.{secrets.randbelow(254) + 1}")
    assert isinstance(elsewhere.password(world.alice, world.password), SignedIn)


# -- what a portal asks for -----------------------------------------------------------------

def test_an_essential_acr_nobody_can_reach_is_refused(app, browser, world):
    add_totp(app, world, world.alice)  # an app, no passkey: "phr" is out of reach
    outcome = browser.password(world.alice, world.password,
                               params_for(world.portal, claims=ESSENTIAL_PHR))
    assert isinstance(outcome, Refused)
    assert outcome.decision.error == "unmet_authentication_requirements"
    assert "passkey or security key" in outcome.decision.reason_for_you
    assert outcome.tx.params["redirect_uri"] == world.portal.redirect_uri  # told to the portal
    assert browser.session() is None


def test_a_malformed_claims_parameter_is_refused_as_an_invalid_request(browser, world):
    outcome = browser.password(world.alice, world.password,
                               params_for(world.portal, claims="{not json"))
    assert isinstance(outcome, Refused) and outcome.decision.error == "invalid_request"
    assert browser.session() is None


def test_a_step_up_asks_only_for_what_the_session_lacks(app, browser, world):
    params = params_for(world.portal)
    first = browser.password(world.alice, world.password)  # optional policy, no factor yet
    signed_in_user(first, world.alice)
    before = browser.session()

    def needed(params):
        with browser.request():
            session = sso.current(g.tenant.id)
            return signin.step_up_needed(params, session, db.session().get(User, session.user_id))

    assert needed(params) is None  # the password session suffices
    secret = add_totp(app, world, world.alice)  # the user sets up an app: now it is asked for
    decision = needed(params)
    assert decision.need is Need.CHALLENGE and decision.factors == ("totp",)
    refused = needed(params_for(world.portal, claims=ESSENTIAL_PHR))
    assert refused.need is Need.REFUSE and refused.error == "unmet_authentication_requirements"

    with browser.request():
        session = sso.current(g.tenant.id)
        asked = signin.step_up(params, session, db.session().get(User, session.user_id),
                               decision)
    assert isinstance(asked, AskFactor) and asked.tx.step_up and asked.tx.methods == ["pwd"]
    assert asked.tx.params == params
    done = browser.challenge(asked.tx.id, "totp", {"code": pyotp.TOTP(secret).now()})
    signed_in_user(done, world.alice)
    after = browser.session()
    assert after.sid != before.sid and after.sid == done.tx.sid  # the session id rotated
    assert after.auth_time == before.auth_time  # the last full authentication stays
    assert (after.amr, after.acr) == (["pwd", "otp", "mfa"], "mfa")
    assert needed(params) is None


@pytest.mark.parametrize("bypass", [True, False])
def test_a_login_link_skips_the_second_step_only_where_the_tenant_says_so(app, browser, world,
                                                                         bypass):
    add_totp(app, world, world.alice)
    set_policy(app, world, mode="required", login_token_bypass=bypass)
    with browser.request():
        user = directory.find_user(db.session(), g.tenant, world.alice)
        outcome = signin.with_login_link(user, [login_links.AMR], f"/t/{world.slug}/")
    if bypass:
        signed_in_user(outcome, world.alice)
        assert outcome.tx.next_url == f"/t/{world.slug}/"
        assert browser.session().amr == ["login_token"]
    else:
        assert isinstance(outcome, AskFactor)
        assert browser.session() is None


# -- a setup inside the sign-in -------------------------------------------------------------

def test_a_forced_setup_signs_in_with_the_new_app(app, browser, world):
    set_policy(app, world, mode="required", factors=["totp", "backup"])
    asked = browser.password(world.alice, world.password, params_for(world.portal))
    assert isinstance(asked, AskSetup)
    with browser.request():
        choice = signin.setup_choice(asked.tx.id)
    assert isinstance(choice, SetupChoice) and [f.type for f in choice.factors] == ["totp"]

    page = browser.setup(asked.tx.id, "totp")
    assert isinstance(page, SetupPage) and page.factor.type == "totp" and page.error is None
    secret = page.context["setup_key"].replace(" ", "")
    again = browser.setup(asked.tx.id, "totp", {"code": wrong(secret)}, page.setup.id)
    assert isinstance(again, SetupPage) and "not right" in again.error
    assert again.context["setup_key"] == page.context["setup_key"]  # the same app to confirm
    assert factor_types(app, world, world.alice) == []

    done = browser.setup(asked.tx.id, "totp", {"code": pyotp.TOTP(secret).now()}, page.setup.id)
    signed_in_user(done, world.alice)
    assert done.offer_backup  # backup codes are allowed and she has none yet
    assert factor_types(app, world, world.alice) == ["totp"]
    session = browser.session()
    assert "otp" in session.amr and session.acr == "mfa"
    with browser.request():  # the offer's "Not now" still resumes the portal's request
        kept = transaction.load(g.tenant.id, done.tx.id)
    assert kept.authenticated and kept.params == done.tx.params and kept.sid == session.sid


def test_a_setup_answer_for_another_page_goes_back_to_the_choice(app, browser, world):
    set_policy(app, world, mode="required", factors=["totp"])
    asked = browser.password(world.alice, world.password)
    first = browser.setup(asked.tx.id, "totp")
    second = browser.setup(asked.tx.id, "totp")  # opened again: a new app, a new page
    assert second.setup.id != first.setup.id
    code = pyotp.TOTP(first.context["setup_key"].replace(" ", "")).now()
    for stale in (first.setup.id, "unknown", None):
        back = browser.setup(asked.tx.id, "totp", {"code": code}, stale)
        assert isinstance(back, AskSetup) and back.tx.id == asked.tx.id
    # A method the tenant does not offer is no way round it either.
    assert isinstance(browser.setup(asked.tx.id, "sms"), AskSetup)
    assert factor_types(app, world, world.alice) == []
    assert browser.session() is None


def test_setup_can_be_skipped_only_while_a_grace_skip_is_left(app, world):
    set_policy(app, world, mode="required")
    browser = DirectBrowser(app, world.slug)
    asked = browser.password(world.alice, world.password)
    assert isinstance(browser.skip(asked.tx.id), AskSetup)  # no grace: back to the setup
    assert browser.session() is None

    set_policy(app, world, grace_skips=1)
    browser = DirectBrowser(app, world.slug)
    asked = browser.password(world.alice, world.password)
    skipped = browser.skip(asked.tx.id)
    signed_in_user(skipped, world.alice)
    assert browser.session().amr == ["pwd"]

    browser = DirectBrowser(app, world.slug)
    asked = browser.password(world.alice, world.password)
    assert isinstance(browser.skip(asked.tx.id), AskSetup)  # the one skip is used
    assert browser.session() is None


# -- a deploy in the middle of a sign-in ----------------------------------------------------

# Every page that takes a stored sign-in by its id.
PAGES = ["/login/verify?tx={tx}", "/login/setup?tx={tx}", "/login/setup/totp?tx={tx}",
         "/login?tx={tx}", "/consent?tx={tx}", "/authorize/resume?tx={tx}"]


def stored_sign_in(app, world, client, shape: str) -> str:
    """Alice's sign-in to the portal, waiting (for her app's code, or her consent to the
    portal), stored as ``shape`` says, in the browser of ``client``: its binding cookie set,
    and signed in, as a browser asked for consent is. Returns the sign-in's id."""
    tx_id, browser = secrets.token_urlsafe(24), DirectBrowser(app, world.slug)
    with browser.request():
        alice = directory.find_user(db.session(), g.tenant, world.alice)
        session = sso.start(g.tenant.id, alice.id, ["pwd"], "pwd")
        current = Transaction(tx_id, g.tenant.id, transaction.browser_id(),
                              params_for(world.portal), int(time.time()), user_id=alice.id,
                              methods=["pwd"], sid=session.sid)
        if shape == "this version":
            raw = current.to_json()
        elif shape == "a newer version":  # rolled back in the middle of a sign-in
            raw = json.dumps({**json.loads(current.to_json()), "v": VERSION + 1})
        else:  # before the transaction was typed: no version, the steps' state in "notes"
            raw = json.dumps({
                "id": tx_id, "tenant_id": g.tenant.id, "browser": current.browser,
                "params": current.params, "created": current.created, "authenticated": False,
                "consented": False, "user_id": alice.id, "methods": ["pwd"], "next_url": None,
                "sid": session.sid, "notes": {"primary": "password", "challenge": {
                    "type": "totp", "state": {}, "context": {"digits": 6, "names": ["Phone"]}}}})
        store.get().set(f"ltx:{tx_id}", raw, ex=600)
    for name, value in browser.cookies.items():
        client.set_cookie(name, value, path=f"/t/{world.slug}/")
    return tx_id


@pytest.mark.parametrize("shape", ["an older version", "a newer version"])
@pytest.mark.parametrize("page", PAGES)
def test_a_sign_in_stored_by_another_version_says_start_again(app, client, world, shape, page):
    add_totp(app, world, world.alice)
    tx_id = stored_sign_in(app, world, client, shape)
    r = client.get(f"/t/{world.slug}" + page.format(tx=tx_id))
    text = r.get_data(as_text=True)
    assert r.status_code == 400, text[:500]
    assert "This sign-in has expired" in text and "start signing in again" in text


@pytest.mark.parametrize("page", PAGES)
def test_the_same_sign_in_stored_by_this_version_goes_on(app, client, world, page):
    """The control for the test above: the same browser and the same sign-in, as this
    version stores it, go on (so it is the version that makes a page say expired)."""
    add_totp(app, world, world.alice)
    tx_id = stored_sign_in(app, world, client, "this version")
    r = client.get(f"/t/{world.slug}" + page.format(tx=tx_id))
    text = r.get_data(as_text=True)
    assert r.status_code in (200, 302) and "This sign-in has expired" not in text, text[:500]
    if page.startswith("/login/verify"):
        assert "Verify it's you" in text and 'name="factor" value="totp"' in text


def test_a_session_stored_by_a_newer_version_signs_the_browser_out(app, client, world):
    """A rollback after a deploy that gave the SSO session a field (as ``primary`` was
    added): every page reads the session, and a session of a shape this version does not know
    is no session (sign in again), never a 500 on every page until it expires."""
    set_policy(app, world, mode="disabled")
    browser = DirectBrowser(app, world.slug)
    signed_in_user(browser.password(world.alice, world.password), world.alice)
    sid = browser.cookies[sso.COOKIE]
    with app.app_context():
        newer = {**json.loads(store.get().get(f"sso:{sid}")), "device": "a later field"}
        store.get().set(f"sso:{sid}", json.dumps(newer), ex=600)
    client.set_cookie(sso.COOKIE, sid, path=f"/t/{world.slug}/")
    home = client.get(f"/t/{world.slug}/")
    assert home.status_code == 200 and world.alice not in home.get_data(as_text=True)
    login = client.get(f"/t/{world.slug}/authorize?" + urlencode(params_for(world.portal)))
    assert login.status_code == 302 and f"/t/{world.slug}/login" in login.headers["Location"]
