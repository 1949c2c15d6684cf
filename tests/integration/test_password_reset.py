"""A forgotten password: the link, its rules, and that a reset never skips the second factor.
Links are read from the outbox (the embedded default's delivery); the browser test reads them
from a real SMTP server."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from idp import db, directory
from idp.models import AccountLink, AuditEvent, Authenticator, OutboxMessage, User
from tests.support.journey import CSRF, TX, Browser, field, pkce_pair
from tests.support.rp import get_code, params_for, redeem, refresh
from tests.support.signin import set_policy, tokens_for
from tests.support.mailed_links import password_sign_in_answer, set_new_password
from tests.support.totp import totp_code, with_totp

NEW = "a brand new and long passphrase"


def tenant_id(app, world) -> int:
    with app.app_context():
        return directory.get_tenant(db.session(), world.slug).id


def mails(app, world, to: str, kind: str = "reset") -> list[OutboxMessage]:
    with app.app_context():
        found = db.session().scalars(select(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant_id(app, world), OutboxMessage.recipient == to,
            OutboxMessage.kind == kind).order_by(OutboxMessage.id)).all()
        db.session().expunge_all()
        return found


def link_path(message: OutboxMessage) -> str:
    url = re.search(r"https?://\S+/login/reset/\S+", message.body).group(0)
    return re.sub(r"^https?://[^/]+", "", url)


def ask(browser: Browser, world, email: str, tx: str = "") -> object:
    page = browser.get(f"/t/{world.slug}/login/forgot", {"tx": tx} if tx else None)
    return browser.post(f"/t/{world.slug}/login/forgot",
                        {"csrf_token": field(CSRF, page.text), "tx": tx, "email": email})


def choose(browser: Browser, path: str, password: str, again: str | None = None):
    return set_new_password(browser, path, password, again)


def password_sign_in(app, world, email, password):
    return password_sign_in_answer(app, world, email, password)


def test_a_reset_goes_on_to_the_second_factor_and_then_to_the_portal(app, world):
    seed = with_totp(app, world)
    browser = Browser(app.test_client())
    verifier, challenge = pkce_pair()
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal, code_challenge=challenge))
    assert 'id="forgot-link"' in login.text
    tx = field(TX, login.text)
    sent = ask(browser, world, world.alice.upper(), tx)  # any spelling of the address
    assert sent.status == 200 and "a link to choose a" in sent.text
    [message] = mails(app, world, world.alice)
    assert message.state == "kept" and "within 30 minutes" in message.body
    assert "Choose a new password" in message.html

    after = choose(browser, link_path(message), NEW)
    # The new password is the first step; the policy still wants the app's code.
    assert after.status == 302 and "/login/verify" in after.location, (after.status, after.text[:300])
    page = browser.get(after.location)
    done = browser.post(f"/t/{world.slug}/login/verify", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "factor": "totp",
        "code": totp_code(seed)})
    claims = tokens_for(browser, world, browser.follow(done, world.portal.redirect_uri), verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"

    # The old password is gone, the new one works, and the user was told.
    assert password_sign_in(app, world, world.alice, world.password).status == 200
    assert password_sign_in(app, world, world.alice, NEW).status == 302
    [changed] = mails(app, world, world.alice, "password_changed")
    assert "reset through a link mailed to this address" in changed.body
    with app.app_context():
        alice = directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug),
                                    world.alice)
        assert alice.email_verified is True and alice.password_changed_at is not None


def test_known_and_unknown_addresses_get_the_same_answer_and_the_same_work(app, world):
    answers = {}
    for email in (world.bob, "nobody@example.com"):
        page = ask(Browser(app.test_client()), world, email)
        answers[email] = (page.status, page.text.replace(email, "ADDRESS"))
    assert answers[world.bob] == answers["nobody@example.com"]
    [real] = mails(app, world, world.bob)
    [decoy] = mails(app, world, "nobody@example.com")
    assert (real.state, decoy.state) == ("kept", "dropped")  # written alike, only one leaves
    assert real.subject == decoy.subject
    with app.app_context():
        links = db.session().scalars(select(AccountLink).where(
            AccountLink.tenant_id == tenant_id(app, world), AccountLink.purpose == "reset")).all()
        assert sorted(link.user_id is None for link in links) == [False, True]
    # The decoy keeps no text (its link could never be spent anyway).
    assert "/login/reset/" not in decoy.body and decoy.html is None


def test_a_link_works_once_and_a_newer_one_voids_it(app, world):
    browser = Browser(app.test_client())
    ask(browser, world, world.bob)
    ask(browser, world, world.bob)
    first, second = mails(app, world, world.bob)
    old = browser.get(link_path(first))
    assert old.status == 400 and "a newer one was sent" in old.text
    assert choose(browser, link_path(second), NEW).status == 302
    reused = browser.get(link_path(second))
    assert reused.status == 400 and "This link does not work" in reused.text
    again = Browser(app.test_client()).post(link_path(second), {"password": NEW, "confirm": NEW})
    assert again.status == 400


def test_an_expired_or_tampered_link_gets_a_clear_page(app, world):
    browser = Browser(app.test_client())
    ask(browser, world, world.bob)
    [message] = mails(app, world, world.bob)
    path = link_path(message)
    for bad in (path[:-3] + "AAA", path + "x" * 200, path.rsplit("/", 1)[0] + "/%00",
                path.rsplit("/", 1)[0] + "/short"):
        page = browser.get(bad)
        assert page.status in (400, 404) and "Traceback" not in page.text, bad
    with app.app_context():
        db.session().execute(AccountLink.__table__.update().where(
            AccountLink.user_id.is_not(None), AccountLink.tenant_id == tenant_id(app, world))
            .values(expires_at=func.now()))
        db.session().commit()
    page = browser.get(path)
    assert page.status == 400 and "has expired" in page.text


def test_a_bad_new_password_spends_nothing_and_says_why(app, world):
    browser = Browser(app.test_client())
    ask(browser, world, world.bob)
    path = link_path(mails(app, world, world.bob)[0])
    for password, again, said in (("short", "short", "at least 8 characters"),
                                  (NEW, NEW + "!", "not the same"),
                                  ("x" * 257, "x" * 257, "at most 256"),
                                  ("with a\0nul inside", "with a\0nul inside", "NUL character"),
                                  ("with a\ttab inside", "with a\ttab inside", "control characters"),
                                  ("password123", "password123", "too common"),
                                  (world.bob, world.bob, "not your email address")):
        page = choose(browser, path, password, again)
        assert page.status == 400 and said in page.text, (said, page.text[-800:])
    assert choose(browser, path, NEW).status == 302  # still good


def test_the_same_link_posted_twice_at_once_sets_one_password(app, world):
    browser = Browser(app.test_client())
    ask(browser, world, world.bob)
    path = link_path(mails(app, world, world.bob)[0])
    page = browser.get(path)
    form = {"csrf_token": field(CSRF, page.text)}

    def post(password):
        return browser.post(path, form | {"password": password, "confirm": password}).status

    with ThreadPoolExecutor(2) as pool:
        statuses = sorted(pool.map(post, ["first passphrase long", "second passphrase long"]))
    assert statuses == [302, 400]
    with app.app_context():
        events = db.session().scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.tenant_id == tenant_id(app, world), AuditEvent.action == "user.password_set"))
    assert events == 1


def test_a_reset_ends_every_session_and_refresh_token(app, world):
    client = app.test_client()
    code, verifier = get_code(client, world, world.portal)
    tokens = redeem(client, world, world.portal, code, verifier).get_json()
    other = Browser(app.test_client())
    assert password_sign_in(app, world, world.alice, world.password).status == 302
    ask(other, world, world.alice)
    choose(Browser(app.test_client()), link_path(mails(app, world, world.alice)[-1]), NEW)
    assert refresh(client, world, world.portal, tokens["refresh_token"]).status_code == 400
    assert client.get(f"/t/{world.slug}/account").status_code == 302  # signed out


def test_requests_are_throttled_per_address_alike_for_everyone(app, world):
    for email in (world.bob, "ghost@example.com"):
        browser = Browser(app.test_client())
        statuses = [ask(browser, world, email).status for _ in range(4)]
        # The fourth asks for a CAPTCHA (the same for an address with or without an account).
        assert statuses == [200, 200, 200, 400]
    assert len(mails(app, world, world.bob)) == 3


def test_a_tenant_can_turn_self_service_reset_off(app, world):
    set_policy(app, world, self_service_reset=False)
    login = Browser(app.test_client()).get(f"/t/{world.slug}/login")
    assert 'id="forgot-link"' not in login.text
    page = Browser(app.test_client()).get(f"/t/{world.slug}/login/forgot")
    assert page.status == 404 and "Ask your administrator" in page.text


def test_a_deactivated_account_gets_no_link(app, world):
    with app.app_context():
        user = db.session().scalar(select(User).where(User.email == world.bob,
                                                      User.tenant_id == tenant_id(app, world)))
        user.status = "deactivated"
        db.session().commit()
    page = ask(Browser(app.test_client()), world, world.bob)
    assert page.status == 200 and "a link to choose a" in page.text  # the same answer
    assert [m.state for m in mails(app, world, world.bob)] == ["dropped"]


def test_one_network_asking_for_many_addresses_is_stopped(app, world):
    browser = Browser(app.test_client())
    statuses = [ask(browser, world, f"someone{i}@example.com").status for i in range(21)]
    assert statuses == [200] * 20 + [429]
    page = ask(browser, world, world.bob)
    assert page.status == 429 and "Too many requests" in page.text
    assert mails(app, world, world.bob) == []


def test_the_link_names_the_configured_address_whatever_host_the_request_named(app, world):
    client = app.test_client()
    page = client.get(f"/t/{world.slug}/login/forgot", headers={"Host": "evil.example"})
    client.post(f"/t/{world.slug}/login/forgot", headers={"Host": "evil.example"},
                data={"csrf_token": field(CSRF, page.get_data(as_text=True)), "email": world.bob})
    [message] = mails(app, world, world.bob)
    assert "evil.example" not in message.body and "evil.example" not in message.html
    assert f"{app.config['IDP'].base_url}/t/{world.slug}/login/reset/" in message.body


def test_a_reset_does_not_lift_a_lock_for_wrong_codes(app, world):
    from idp.guard import account_key

    with_totp(app, world)
    with app.app_context():
        session = db.session()
        alice = directory.find_user(session, directory.get_tenant(session, world.slug), world.alice)
        key = account_key(alice.tenant_id, alice.id, alice.email)
    store = app.extensions["idp.store"]
    store.set(key, 50, ex=3600)  # locked: far past the tenant's limit
    browser = Browser(app.test_client())
    ask(browser, world, world.alice)
    after = choose(browser, link_path(mails(app, world, world.alice)[-1]), NEW)
    assert after.status == 429 and "locked" in after.text.lower()
    assert int(store.get(key)) >= 50


def test_an_address_with_a_line_break_gets_the_form_again(app, world):
    for email in ("a\nb@example.com", "x@example.com\r\nBcc: y@example.com"):
        page = ask(Browser(app.test_client()), world, email)
        assert page.status == 400 and "Enter the email address" in page.text


def test_an_account_without_a_password_gets_no_link(app, world):
    with app.app_context():
        user = db.session().scalar(select(User).where(User.email == world.bob,
                                                      User.tenant_id == tenant_id(app, world)))
        user.password_hash = None  # signs in through its organisation's provider only
        db.session().commit()
    page = ask(Browser(app.test_client()), world, world.bob)
    assert page.status == 200 and "a link to choose a" in page.text
    assert [m.state for m in mails(app, world, world.bob)] == ["dropped"]


def test_a_flood_from_many_networks_needs_a_captcha_for_everyone(app, world, monkeypatch):
    from idp.journey import recovery

    monkeypatch.setattr(recovery, "TENANT_CAPTCHA_AFTER", 3)
    statuses = []
    for i in range(4):  # a new address and a new network each time
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"203.0.113.{i + 1}"
        statuses.append(ask(Browser(client), world, f"flood{i}@example.com").status)
    assert statuses == [200, 200, 200, 400]
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.9"
    page = ask(Browser(client), world, world.bob)
    assert page.status == 400 and 'id="captcha"' in page.text


def test_a_sign_in_racing_a_reset_comes_out_with_nothing(app, world):
    """Past the password in one browser when the password is reset in another: the second
    factor answered afterwards signs nobody in, like every session the reset ended."""
    seed = with_totp(app, world)
    browser = Browser(app.test_client())
    verifier, challenge = pkce_pair()
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal, code_challenge=challenge))
    page = browser.sign_in(login, world.alice, world.password, world.slug,
                           world.portal.redirect_uri)
    assert page.status == 200 and 'name="code"' in page.text
    # Meanwhile, the owner resets the password from another browser.
    owner = Browser(app.test_client())
    ask(owner, world, world.alice)
    [message] = mails(app, world, world.alice)
    assert choose(owner, link_path(message), NEW).status == 302
    done = browser.post(f"/t/{world.slug}/login/verify", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "factor": "totp",
        "code": totp_code(seed)})
    # What was proved before the change is void: the sign-in has to start again.
    assert done.status == 400 and "This sign-in has expired" in done.text
    assert "idp_sso=" not in done.headers.get("Set-Cookie", "")
    # Signing in again with the new password works as usual.
    again = browser.sign_in(browser.authorize(f"/t/{world.slug}", params_for(
        world.portal, code_challenge=challenge)), world.alice, NEW, world.slug,
        world.portal.redirect_uri)
    assert again.status == 200 and 'name="code"' in again.text


def test_after_a_reset_link_a_code_to_the_same_mailbox_is_no_second_step(app, world):
    """The link proved the mailbox: a code mailed there again would prove nothing more, so
    the app is asked for, and the code by email is not offered beside it."""
    seed = with_totp(app, world)
    with app.app_context():
        session = db.session()
        alice = directory.find_user(session, directory.get_tenant(session, world.slug),
                                    world.alice)
        session.add(Authenticator(tenant_id=alice.tenant_id, user_id=alice.id, type="email",
                                  name="Code by email", data={"email": alice.email}))
        session.commit()
    from tests.support.account import password_sign_in as typed_sign_in
    typed = typed_sign_in(Browser(app.test_client()), world)
    assert "factor=email" in typed.text  # signing in with the password: both are offered
    browser = Browser(app.test_client())
    ask(browser, world, world.alice)
    [message] = mails(app, world, world.alice)
    after = choose(browser, link_path(message), NEW)
    page = browser.get(after.location)
    assert page.status == 200 and 'name="code"' in page.text
    assert "factor=email" not in page.text and "Code by email" not in page.text
    done = browser.post(f"/t/{world.slug}/login/verify", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "factor": "totp",
        "code": totp_code(seed)})
    assert done.status == 302
