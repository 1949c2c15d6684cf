"""Sign in with an upstream OpenID provider, through a live server, like a browser would.

Two kinds of upstream:

- **another tenant of ours** on the same live server: a real OpenID provider with password,
  backup codes, ``amr``/``acr``. The downstream tenant's upstream row points at its issuer,
  and the browser (a ``requests.Session``) goes back and forth between the two tenants;
- **a scripted provider** in this process (a small Flask app on a real socket) for what our
  own provider will not do: say ``email_verified: true``, sign with a key it then tampers with,
  address its ID token to someone else. It checks our PKCE verifier like any provider would.

Our side is the real thing: Authlib's OAuth 2 client, joserfc, Redis, the policy.
"""

from __future__ import annotations

import base64
import html
import json
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from idp import admin, db, directory
from idp.federation.client import UntrustedToken, validate_id_token
from idp.mfa.backup_codes import ALPHABET, normalise
from idp.models import AuditEvent, Authenticator, BackupCode, Upstream, UpstreamIdentity, User
from tests.support.account import answer_challenge
from tests.support.journey import CSRF, TX, Browser, Page, field, pkce_pair, query
from tests.support.live_server import LiveServer
from tests.support.ports import free_port
from tests.support.rp import params_for
from tests.support.upstream import ScriptedProvider, flip_signature
from tests.support.world import PASSWORD, World, make_world


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    # Everything listens on http://127.0.0.1; Authlib's client refuses plain http otherwise.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


# --- A server that has the federation pages ----------------------------------------------------


@pytest.fixture(scope="session")
def server(live_server):
    """The session's live ``idp serve``: it serves both the upstream and the downstream tenant."""
    return live_server


# --- The scripted upstream ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider():
    scripted = ScriptedProvider()
    yield scripted
    scripted.stop()


@pytest.fixture
def scripted(provider):
    provider.reset()
    return provider


# --- Setting up tenants ------------------------------------------------------------------------


def callback_url(server, world: World, upstream_slug: str) -> str:
    return f"{server.url}/t/{world.slug}/login/upstream/{upstream_slug}/callback"


def add_upstream(app, world: World, *, slug: str, issuer: str, client_id: str, secret: str,
                 trust_mfa: str = "never", domains=(), name: str | None = None):
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.add_upstream(session, app.extensions["idp.secretbox"], tenant, slug=slug,
                           name=name or f"{slug.title()} SSO", issuer=issuer, client_id=client_id,
                           client_secret=secret, email_domains=list(domains),
                           trust_mfa=trust_mfa, actor="test")
        session.commit()


def set_jit(app, world: World, on: bool) -> None:
    with app.app_context():
        session = db.session()
        admin.set_policy(session, directory.get_tenant(session, world.slug), "test",
                         federation_jit=on)
        session.commit()


def user_in(app, world: World, email: str) -> User | None:
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        if user is not None:
            session.expunge(user)  # readable after the app context ends
        return user


def give_backup_codes(app, world: World, email: str) -> list[str]:
    """Backup codes for a user, as the account page would store them (keyed hashes)."""
    codes = ["".join(secrets.choice(ALPHABET) for _ in range(10)) for _ in range(3)]
    with app.app_context():
        session = db.session()
        box = app.extensions["idp.secretbox"]
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        auth = Authenticator(tenant_id=user.tenant_id, user_id=user.id, type="backup",
                             name="Backup codes", data={})
        auth.backup_codes = [BackupCode(code_hash=box.keyed_hash("backup-code", normalise(c)))
                             for c in codes]
        session.add(auth)
        session.commit()
    return codes


def links(app, **where) -> list[tuple[str, int]]:
    """(upstream subject, local user id) of the links matching ``where``."""
    with app.app_context():
        return [tuple(row) for row in db.session().execute(
            select(UpstreamIdentity.subject, UpstreamIdentity.user_id).filter_by(**where))]


def audit_actions(app, world: World) -> list[tuple[str, int | None, dict]]:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return [(e.action, e.user_id, e.data) for e in session.scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant.id).order_by(AuditEvent.id))]


@dataclass
class Federation:
    """A downstream tenant whose users may sign in with an upstream tenant of ours."""

    server: LiveServer
    down: World
    up: World
    slug: str

    @property
    def callback(self) -> str:
        return callback_url(self.server, self.down, self.slug)


def federate(app, settings, server, trust_mfa: str = "never", link_alice: bool = True,
             domains=()) -> Federation:
    down = make_world(app, settings, base_url=server.url)
    up = make_world(app, settings, base_url=server.url)
    slug = "corp"
    with app.app_context():
        session = db.session()
        new = directory.create_client(session, directory.get_tenant(session, up.slug), "Downstream",
                                      [callback_url(server, down, slug)])
        client_id, secret = new.client.client_id, new.secret
        session.commit()
    add_upstream(app, down, slug=slug, issuer=up.issuer, client_id=client_id, secret=secret,
                 trust_mfa=trust_mfa, domains=domains, name="Corp SSO")
    fed = Federation(server, down, up, slug)
    if link_alice:
        link(app, fed, down.alice, up.alice)
    return fed


def link(app, fed: Federation, down_email: str, up_email: str) -> None:
    """Connect an upstream account to a local one, as an earlier sign-in would have."""
    upstream_user = user_in(app, fed.up, up_email)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, fed.down.slug)
        local = directory.find_user(session, tenant, down_email)
        upstream = session.scalar(select(Upstream).where(
            Upstream.tenant_id == tenant.id, Upstream.slug == fed.slug))
        session.add(UpstreamIdentity(upstream_id=upstream.id, user_id=local.id,
                                     subject=upstream_user.subject))
        session.commit()


# --- Driving the browser -----------------------------------------------------------------------


@dataclass
class Started:
    browser: Browser
    verifier: str
    response: Page  # the answer to "Sign in with ...": a redirect to the upstream


def start(server, down: World, upstream_slug: str, http: requests.Session | None = None) -> Started:
    """A portal sends a fresh browser to the downstream tenant; it picks the upstream button."""
    browser = Browser(http or requests.Session(), origin=server.url)
    verifier, challenge = pkce_pair()
    login = browser.authorize(f"/t/{down.slug}", params_for(down.portal, code_challenge=challenge))
    assert login.status == 200 and "Sign in with" in login.text, (login.status, login.text[:800])
    response = browser.post(f"/t/{down.slug}/login/upstream/{upstream_slug}",
                            {"csrf_token": field(CSRF, login.text), "tx": field(TX, login.text)})
    assert response.status == 302, (response.status, response.text[:800])
    return Started(browser, verifier, response)


def sign_in_upstream(fed: Federation, started: Started, email: str,
                     backup_code: str | None = None) -> Page:
    """At the upstream tenant: password (and a backup code if it asks); returns the redirect
    back to the downstream callback."""
    browser = started.browser
    page = browser.follow(started.response, fed.callback)
    page = browser.sign_in(page, email, PASSWORD, fed.up.slug, stop_at=fed.callback)
    if backup_code is not None:
        assert page.status == 200 and "Backup code" in page.text, page.text[:800]
        page = browser.follow(answer_challenge(browser, fed.up, page, "backup", code=backup_code),
                              fed.callback)
    assert page.status == 302 and page.location.startswith(fed.callback), (page.status, page.text[:800])
    return page


def back_downstream(started: Started, down: World, callback: str) -> Page:
    """The browser returns to the downstream callback; where it ends up (portal or a page)."""
    return started.browser.follow(started.browser.get(callback), down.portal.redirect_uri)


def id_token_claims(server, down: World, done: Page, verifier: str) -> dict:
    """Redeem the portal's code at the downstream tenant; the ID token's claims."""
    assert done.status == 302 and done.location.startswith(down.portal.redirect_uri), \
        (done.status, done.location, done.text[:800])
    r = requests.post(f"{server.url}/t/{down.slug}/token", timeout=10,
                      auth=(down.portal.client_id, down.portal.client_secret),
                      data={"grant_type": "authorization_code", "code": query(done.location)["code"],
                            "redirect_uri": down.portal.redirect_uri, "code_verifier": verifier})
    assert r.status_code == 200, r.text
    payload = r.json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def subject_of(app, world: World, email: str) -> str:
    return user_in(app, world, email).subject


# --- The button and the request we send ---------------------------------------------------------


def test_login_page_offers_the_upstream_and_sends_a_pkce_request(app, settings, server, scripted):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="partner", issuer=scripted.issuer, client_id=scripted.client_id,
                 secret=scripted.client_secret, name="Partner <SSO>")
    page = Browser(requests.Session(), origin=server.url).get(f"/t/{down.slug}/login")
    assert "Sign in with Partner &lt;SSO&gt;" in page.text  # the name is escaped

    started = start(server, down, "partner")
    assert started.response.location.startswith(f"{scripted.issuer}/authorize?")
    sent = query(started.response.location)
    assert sent["response_type"] == "code" and sent["client_id"] == scripted.client_id
    assert sent["redirect_uri"] == callback_url(server, down, "partner")
    assert "openid" in sent["scope"].split()
    assert sent["code_challenge_method"] == "S256" and len(sent["code_challenge"]) == 43
    assert len(sent["state"]) >= 32 and len(sent["nonce"]) >= 32


def test_a_stranger_without_a_csrf_token_cannot_start_an_upstream_sign_in(app, settings, server,
                                                                           scripted):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="partner", issuer=scripted.issuer, client_id=scripted.client_id,
                 secret=scripted.client_secret)
    r = requests.post(f"{server.url}/t/{down.slug}/login/upstream/partner", data={},
                      allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "Location" not in r.headers
    assert scripted.authorization_requests == []


# --- Trusting the upstream's MFA -----------------------------------------------------------------


def test_a_trusted_upstream_skips_the_local_second_factor(app, settings, server):
    fed = federate(app, settings, server, trust_mfa="always")
    give_backup_codes(app, fed.down, fed.down.alice)  # the local policy would ask for it

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice)
    done = back_downstream(started, fed.down, back.location)

    claims = id_token_claims(server, fed.down, done, started.verifier)  # no challenge page
    assert claims["sub"] == subject_of(app, fed.down, fed.down.alice)
    # The tenant waives its own second step; the token says only what it can vouch for.
    assert claims["amr"] == ["fed"] and claims["acr"] == "pwd"
    signed_in = [d for action, _, d in audit_actions(app, fed.down) if action == "user.signed_in_upstream"]
    assert signed_in and signed_in[-1]["upstream"] == "corp" and signed_in[-1]["how"] == "linked"


def test_when_upstream_mfa_and_the_upstream_only_saw_a_password_the_local_factor_is_asked(
        app, settings, server):
    fed = federate(app, settings, server, trust_mfa="when_upstream_mfa")
    codes = give_backup_codes(app, fed.down, fed.down.alice)

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice)
    page = back_downstream(started, fed.down, back.location)
    assert page.status == 200 and "Backup code" in page.text  # the downstream's own challenge

    done = started.browser.follow(
        answer_challenge(started.browser, fed.down, page, "backup", code=codes[0]),
        fed.down.portal.redirect_uri)
    claims = id_token_claims(server, fed.down, done, started.verifier)
    # Our backup code counted; the upstream's pwd is not vouched for.
    assert claims["amr"][:2] == ["fed", "otp"] and "pwd" not in claims["amr"]


def test_when_upstream_mfa_and_the_upstream_did_mfa_its_methods_count(app, settings, server):
    fed = federate(app, settings, server, trust_mfa="when_upstream_mfa")
    give_backup_codes(app, fed.down, fed.down.alice)
    upstream_codes = give_backup_codes(app, fed.up, fed.up.alice)

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice, backup_code=upstream_codes[1])
    done = back_downstream(started, fed.down, back.location)

    claims = id_token_claims(server, fed.down, done, started.verifier)  # no local challenge
    assert claims["amr"] == ["fed", "pwd", "otp", "mfa"] and claims["acr"] == "mfa"


def test_an_upstream_never_trusted_gets_the_local_policy_even_after_its_own_mfa(app, settings, server):
    fed = federate(app, settings, server, trust_mfa="never")
    codes = give_backup_codes(app, fed.down, fed.down.alice)
    upstream_codes = give_backup_codes(app, fed.up, fed.up.alice)

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice, backup_code=upstream_codes[0])
    page = back_downstream(started, fed.down, back.location)
    assert page.status == 200 and "Backup code" in page.text

    done = started.browser.follow(
        answer_challenge(started.browser, fed.down, page, "backup", code=codes[2]),
        fed.down.portal.redirect_uri)
    claims = id_token_claims(server, fed.down, done, started.verifier)
    assert claims["amr"][:2] == ["fed", "otp"] and "pwd" not in claims["amr"]  # none of its own


# --- Which local account ----------------------------------------------------------------------


def test_just_in_time_provisioning_creates_a_linked_passwordless_member(app, settings, server):
    fed = federate(app, settings, server, link_alice=False, domains=["example.com"])
    set_jit(app, fed.down, True)
    # Our own provider never says email_verified: true; only an upstream the admin marked as
    # running the example.com mailboxes gets an account made from its address.
    with app.app_context():
        session = db.session()
        admin.update_upstream(session, directory.get_tenant(session, fed.down.slug), fed.slug,
                              "test", email_authoritative=True)
        session.commit()
    with app.app_context():
        session = db.session()
        directory.create_user(session, app.extensions["idp.passwords"],
                              directory.get_tenant(session, fed.up.slug), "carol@example.com",
                              PASSWORD, name="Carol Upstream")
        session.commit()
    assert user_in(app, fed.down, "carol@example.com") is None

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, "carol@example.com")
    claims = id_token_claims(server, fed.down, back_downstream(started, fed.down, back.location),
                             started.verifier)

    carol = user_in(app, fed.down, "carol@example.com")
    assert carol is not None and claims["sub"] == carol.subject
    assert carol.password_hash is None and carol.role == "member" and carol.name == "Carol Upstream"
    # The upstream runs example.com's mailboxes: its word verifies the address here too.
    assert carol.email_verified is True
    assert links(app, user_id=carol.id) == [(subject_of(app, fed.up, "carol@example.com"), carol.id)]
    assert ("user.provisioned", carol.id) in [(a, u) for a, u, _ in audit_actions(app, fed.down)]

    # The next sign-in finds the same account through the link; nobody new is created.
    again = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, again, "carol@example.com")
    claims = id_token_claims(server, fed.down, back_downstream(again, fed.down, back.location),
                             again.verifier)
    assert claims["sub"] == carol.subject
    assert [a for a, _, _ in audit_actions(app, fed.down)].count("user.provisioned") == 1


def test_without_provisioning_an_unknown_upstream_user_gets_a_clear_refusal(app, settings, server):
    fed = federate(app, settings, server, link_alice=False)  # federation_jit is off by default
    with app.app_context():
        session = db.session()
        directory.create_user(session, app.extensions["idp.passwords"],
                              directory.get_tenant(session, fed.up.slug), "dave@example.com", PASSWORD)
        session.commit()

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, "dave@example.com")
    page = back_downstream(started, fed.down, back.location)
    assert page.status == 403 and "No account here" in page.text
    assert "Ask your administrator" in page.text
    assert user_in(app, fed.down, "dave@example.com") is None


def test_an_unverified_email_never_takes_over_an_existing_account(app, settings, server):
    # Our own provider says email_verified: false, so alice@example.com upstream proves nothing
    # about alice@example.com here — not even with provisioning on.
    fed = federate(app, settings, server, link_alice=False)
    set_jit(app, fed.down, True)

    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice)
    page = back_downstream(started, fed.down, back.location)
    assert page.status == 403 and "No account here" in page.text
    assert links(app, user_id=user_in(app, fed.down, fed.down.alice).id) == []


def test_a_verified_email_in_the_upstreams_domain_matches_the_existing_account(app, settings, server,
                                                                               scripted):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="partner", issuer=scripted.issuer, client_id=scripted.client_id,
                 secret=scripted.client_secret, domains=["example.com"])
    scripted.claims = {"email": "ALICE@example.com", "email_verified": True}

    started = start(server, down, "partner")
    done = started.browser.follow(started.response, down.portal.redirect_uri)
    claims = id_token_claims(server, down, done, started.verifier)

    alice = user_in(app, down, down.alice)
    assert claims["sub"] == alice.subject
    assert scripted.token_requests[-1]["code_verifier"]  # PKCE: the provider checked it
    assert links(app, subject=scripted.subject) == [(scripted.subject, alice.id)]
    assert ("upstream.identity_linked", alice.id) in [(a, u) for a, u, _ in audit_actions(app, down)]


def test_a_verified_email_outside_the_upstreams_domains_matches_nobody(app, settings, server, scripted):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="partner", issuer=scripted.issuer, client_id=scripted.client_id,
                 secret=scripted.client_secret, domains=["corp.test"])
    scripted.claims = {"email": "alice@example.com", "email_verified": True}

    started = start(server, down, "partner")
    page = started.browser.follow(started.response, down.portal.redirect_uri)
    assert page.status == 403 and "No account here" in page.text


# --- ID tokens that must not pass ------------------------------------------------------------


def test_a_tampered_upstream_id_token_is_refused(app, settings, server, scripted):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="partner", issuer=scripted.issuer, client_id=scripted.client_id,
                 secret=scripted.client_secret)
    scripted.claims = {"email": "alice@example.com", "email_verified": True}
    scripted.tamper = True

    started = start(server, down, "partner")
    page = started.browser.follow(started.response, down.portal.redirect_uri)
    assert page.status == 400 and "could not be verified" in page.text
    assert "signature" in page.text and "Back to sign in" in page.text
    failures = [d for a, _, d in audit_actions(app, down) if a == "upstream.sign_in_failed"]
    assert failures and "signature" in failures[-1]["reason"]
    # Nobody is signed in: the downstream home page offers no account.
    home = started.browser.get(f"/t/{down.slug}/")
    assert down.alice not in home.text


def test_an_upstream_id_token_for_another_audience_is_refused(app, settings, server, scripted):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="partner", issuer=scripted.issuer, client_id=scripted.client_id,
                 secret=scripted.client_secret)
    scripted.claims = {"aud": "some-other-client", "email": "alice@example.com",
                       "email_verified": True}

    started = start(server, down, "partner")
    page = started.browser.follow(started.response, down.portal.redirect_uri)
    assert page.status == 400 and "could not be verified" in page.text and "aud" in page.text
    assert links(app, subject=scripted.subject) == []


def test_the_validator_refuses_what_oidc_core_says_to_refuse(app, settings, server):
    """``validate_id_token`` on a real ID token of our upstream tenant, then on variations."""
    up = make_world(app, settings, base_url=server.url)
    doc = requests.get(f"{up.issuer}/.well-known/openid-configuration", timeout=10).json()
    keys = KeySet.import_key_set(requests.get(doc["jwks_uri"], timeout=10).json())
    oauth = OAuth2Session(up.portal.client_id, up.portal.client_secret, scope="openid email",
                          redirect_uri=up.portal.redirect_uri, code_challenge_method="S256")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = oauth.create_authorization_url(doc["authorization_endpoint"],
                                                code_verifier=verifier, nonce=nonce)
    browser = Browser(requests.Session(), origin=server.url)
    page = browser.follow(browser.get(url), up.portal.redirect_uri)
    done = browser.sign_in(page, up.alice, PASSWORD, up.slug, up.portal.redirect_uri)
    token = oauth.fetch_token(doc["token_endpoint"], authorization_response=done.location,
                              code_verifier=verifier, state=state)
    id_token = token["id_token"]

    def check(token_text=id_token, **changes):
        args = dict(issuer=up.issuer, client_id=up.portal.client_id, nonce=nonce, keys=keys,
                    access_token=token["access_token"])
        args.update(changes)
        return validate_id_token(token_text, **args)

    assert check()["sub"] == subject_of(app, up, up.alice)  # the control: the real token passes

    refused = {
        "bad signature": dict(token_text=flip_signature(id_token)),
        "wrong audience": dict(client_id="someone-else"),
        "wrong nonce": dict(nonce="another-nonce"),
        "wrong issuer": dict(issuer=f"{server.url}/t/someone-else"),
        "expired": dict(now=int(time.time()) + 7200),
        "other access token": dict(access_token="not-the-one"),
        "unknown key": dict(keys=KeySet([RSAKey.generate_key(2048)])),
        "alg not allowed": dict(algorithms=["ES512"]),
        "too old for max_age": dict(now=int(time.time()) + 600, max_age=60),
    }
    for what, changes in refused.items():
        with pytest.raises(UntrustedToken):
            check(**changes)
            pytest.fail(f"accepted despite: {what}")

    head, body, _ = id_token.split(".")
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + f".{body}."
    with pytest.raises(UntrustedToken, match="'none'"):
        check(token_text=unsigned)
    with pytest.raises(UntrustedToken):
        check(token_text="not a token")


# --- The response the browser brings back ------------------------------------------------------


def test_a_replayed_or_unknown_state_is_refused(app, settings, server):
    fed = federate(app, settings, server, trust_mfa="always")
    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice)
    done = back_downstream(started, fed.down, back.location)
    assert done.status == 302 and done.location.startswith(fed.down.portal.redirect_uri)

    replayed = started.browser.get(back.location)
    assert replayed.status == 400 and "already used" in replayed.text

    unknown = started.browser.get(fed.callback, {"state": secrets.token_urlsafe(32), "code": "x",
                                                 "iss": fed.up.issuer})
    assert unknown.status == 400 and "This sign-in cannot continue" in unknown.text


def test_a_callback_opened_in_another_browser_is_refused_and_spoils_nothing(app, settings, server):
    fed = federate(app, settings, server, trust_mfa="always")
    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice)

    elsewhere = Browser(requests.Session(), origin=server.url).get(back.location)
    assert elsewhere.status == 400 and "expired" in elsewhere.text

    done = back_downstream(started, fed.down, back.location)  # the real browser still finishes
    assert id_token_claims(server, fed.down, done, started.verifier)["amr"] == ["fed"]


def test_an_answer_from_another_issuer_is_refused(app, settings, server):
    # RFC 9207: the response says who issued it; a mix-up sends it to the wrong callback.
    fed = federate(app, settings, server, trust_mfa="always")
    started = start(server, fed.down, fed.slug)
    back = sign_in_upstream(fed, started, fed.up.alice)
    params = query(back.location)
    params["iss"] = f"{server.url}/t/someone-else"
    page = started.browser.get(fed.callback, params)
    assert page.status == 400 and "did not come from Corp SSO" in page.text


def test_an_error_from_the_upstream_is_a_friendly_page(app, settings, server):
    fed = federate(app, settings, server, trust_mfa="always")
    started = start(server, fed.down, fed.slug)
    sent = query(started.response.location)
    # What the upstream answers when the user cancels there (RFC 6749 4.1.2.1).
    page = started.browser.get(fed.callback, {"error": "access_denied", "state": sent["state"],
                                              "iss": fed.up.issuer})
    assert page.status == 400 and "You cancelled signing in with Corp SSO" in page.text
    link_back = re.search(r'<a href="([^"]+)">Back to sign in</a>', page.text)
    assert link_back, page.text
    back = urlsplit(html.unescape(link_back.group(1)))
    assert back.path == f"/t/{fed.down.slug}/login"  # and a way back to the sign-in page
    again = started.browser.get(f"{back.path}?{back.query}")
    assert again.status == 200 and "Sign in with Corp SSO" in again.text


def test_an_unreachable_upstream_is_a_clear_page_not_a_500(app, settings, server):
    down = make_world(app, settings, base_url=server.url)
    add_upstream(app, down, slug="gone", issuer=f"http://127.0.0.1:{free_port()}",
                 client_id="x", secret="y", name="Gone SSO")
    browser = Browser(requests.Session(), origin=server.url)
    login = browser.get(f"/t/{down.slug}/login")
    page = browser.post(f"/t/{down.slug}/login/upstream/gone",
                        {"csrf_token": field(CSRF, login.text), "tx": field(TX, login.text)})
    assert page.status == 502 and "We could not reach Gone SSO" in page.text
    assert "Back to sign in" in page.text
