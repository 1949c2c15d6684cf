"""Which local account an upstream sign-in is, when the upstream's word on the email is all we
have: defect 5 of issue 16 (corporate SSO with a standards-conformant upstream).

Peer classes guarded against:

- **account takeover through an unverified email from an identity provider** (nOAuth, Descope
  2023, on Microsoft Entra ID's mutable ``email`` claim; Keycloak CVE-2023-6927's sibling
  class of brokered first-login linking by email, keycloak/keycloak#14457; GitLab
  CVE-2022-1680 through SAML/OmniAuth email matching): an address counts only when the
  upstream says ``email_verified: true``, or when the admin marked it authoritative for the
  address's domain;
- **userinfo substitution** (OIDC Core 5.3.2: the userinfo ``sub`` MUST match the ID token's):
  claims about someone else are never used.

And the defect itself: OIDC Core 5.4 lets a provider keep ``email`` out of the ID token of the
code flow (panva's oidc-provider does), so we read userinfo when the ID token lacks it.
Settings are edited after creation from the CLI (``idp upstream set``) and the console.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from idp import admin, db, directory
from idp.models import AuditEvent, Upstream, UpstreamIdentity
from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.federated import choose_upstream, portal_id_token, through_scripted
from tests.support.journey import CSRF, Browser, field
from tests.support.upstream import ScriptedProvider
from tests.support.world import World

NAME = "Corp SSO"


@pytest.fixture(scope="module")
def provider():
    with ScriptedProvider() as scripted:
        yield scripted


@pytest.fixture
def corp(provider):
    """The scripted upstream as a conformant corporate one: only ``sub`` in the ID token, the
    email and its verification at userinfo."""
    provider.reset()
    provider.userinfo = {"email": "Alice@Example.com", "email_verified": True, "name": "Alice"}
    return provider


def add_corp(app, world: World, provider, domains=("example.com",), **settings) -> None:
    with app.app_context():
        session = db.session()
        admin.add_upstream(session, app.extensions["idp.secretbox"],
                           directory.get_tenant(session, world.slug), slug="corp", name=NAME,
                           issuer=provider.issuer, client_id=provider.client_id,
                           client_secret=provider.client_secret, email_domains=list(domains),
                           trust_mfa="never", actor="test", **settings)
        session.commit()


def sign_in(client, world: World, provider):
    started = choose_upstream(Browser(client), world, "corp", NAME)
    return started, through_scripted(started, world, provider)


def linked_users(app, world: World) -> list[int]:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return list(session.scalars(select(UpstreamIdentity.user_id).join(Upstream).where(
            Upstream.tenant_id == tenant.id)))


def user_id(app, world: World, email: str) -> int | None:
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        return user.id if user else None


def audit(app, world: World, action: str) -> list[dict]:
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return [e.data for e in session.scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.id))]


def refused(page) -> bool:
    return page.status == 403 and "No account here" in page.text


# --- The email is read at userinfo -----------------------------------------------------------


def test_an_email_only_at_userinfo_signs_the_local_account_in(app, client, world, corp):
    add_corp(app, world, corp)
    started, done = sign_in(client, world, corp)

    claims = portal_id_token(started.browser, world, done, started.verifier)
    alice = user_id(app, world, world.alice)
    assert "fed" in claims["amr"]
    assert linked_users(app, world) == [alice]
    assert corp.userinfo_requests == 1


def test_an_email_in_the_id_token_needs_no_userinfo(app, client, world, corp):
    corp.claims = {"email": world.alice, "email_verified": True}
    add_corp(app, world, corp)
    started, done = sign_in(client, world, corp)

    portal_id_token(started.browser, world, done, started.verifier)
    assert corp.userinfo_requests == 0


def test_userinfo_about_someone_else_is_not_used(app, client, world, corp):
    add_corp(app, world, corp)
    corp.userinfo = {**corp.userinfo, "sub": "someone-else"}
    _, page = sign_in(client, world, corp)

    assert page.status == 400 and "could not be verified" in page.text
    assert "about someone else" in page.text
    assert linked_users(app, world) == []


# --- Only a verified address, or a domain the upstream is authoritative for -------------------


@pytest.mark.parametrize("verified", [False, "missing"])
def test_an_unverified_email_is_not_matched_unless_the_upstream_is_authoritative(
        app, client, world, corp, idp, verified):
    if verified == "missing":
        del corp.userinfo["email_verified"]
    else:
        corp.userinfo["email_verified"] = False
    add_corp(app, world, corp)
    _, page = sign_in(client, world, corp)
    assert refused(page)
    assert linked_users(app, world) == []
    assert audit(app, world, "upstream.sign_in_failed")[-1]["why"] == \
        "the upstream did not say it verified the email address"

    # The admin says the upstream runs the example.com mailboxes (its own directory).
    code, out, err = idp("upstream", "set", world.slug, "corp", "--email-authoritative", "on")
    assert code == 0, err
    assert json.loads(out)["email_authoritative"] is True

    started, done = sign_in(client, world, corp)
    portal_id_token(started.browser, world, done, started.verifier)
    assert linked_users(app, world) == [user_id(app, world, world.alice)]
    assert audit(app, world, "upstream.identity_linked")[-1]["how"] == "authoritative_domain"


def test_authority_covers_only_the_listed_domains(app, client, world, corp):
    corp.userinfo = {"email": world.alice, "email_verified": False}
    add_corp(app, world, corp, domains=("corp.test",), email_authoritative=True)
    _, page = sign_in(client, world, corp)

    assert refused(page)  # example.com is not corp.test's to vouch for
    assert linked_users(app, world) == []


def test_an_upstream_cannot_be_authoritative_for_every_domain(world, corp, idp, app):
    add_corp(app, world, corp, domains=())
    code, _, err = idp("upstream", "set", world.slug, "corp", "--email-authoritative", "on")
    assert code != 0 and "list its domains first" in err

    code, _, err = idp("upstream", "set", world.slug, "corp", "--email-domains", "not a domain")
    assert code != 0 and "is not an email domain" in err


def test_just_in_time_provisioning_never_creates_an_account_for_an_unverified_email(
        app, client, world, corp, idp):
    corp.userinfo = {"email": "newcomer@example.com", "email_verified": False}
    add_corp(app, world, corp, domains=())
    code, out, err = idp("upstream", "set", world.slug, "corp", "--jit", "on")
    assert code == 0 and json.loads(out)["jit"] == "on", err

    _, page = sign_in(client, world, corp)
    assert refused(page)
    assert user_id(app, world, "newcomer@example.com") is None

    corp.userinfo["email_verified"] = True
    started, done = sign_in(client, world, corp)
    portal_id_token(started.browser, world, done, started.verifier)
    assert user_id(app, world, "newcomer@example.com") is not None


def test_the_upstreams_own_jit_switch_overrides_the_tenants(app, client, world, corp, idp):
    corp.userinfo = {"email": "newcomer@example.com", "email_verified": True}
    add_corp(app, world, corp, jit=False)
    with app.app_context():
        session = db.session()
        admin.set_policy(session, directory.get_tenant(session, world.slug), "test",
                         federation_jit=True)
        session.commit()

    _, page = sign_in(client, world, corp)
    assert refused(page) and user_id(app, world, "newcomer@example.com") is None

    code, out, err = idp("upstream", "set", world.slug, "corp", "--jit", "tenant")
    assert code == 0 and json.loads(out)["jit"] == "tenant", err
    started, done = sign_in(client, world, corp)
    portal_id_token(started.browser, world, done, started.verifier)
    assert user_id(app, world, "newcomer@example.com") is not None


# --- The console ---------------------------------------------------------------------------


def upstream_form(page_text: str, **changes) -> dict:
    form = {"csrf_token": field(CSRF, page_text), "name": NAME, "email_domains": "example.com",
            "jit": "tenant", "trust_mfa": "never", "trusted_acrs": ""}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def test_the_console_edits_an_upstream_and_the_next_sign_in_follows(app, client, world, corp):
    corp.userinfo["email_verified"] = False
    add_corp(app, world, corp, domains=())
    console = admin_browser(app, world)
    listing = console.get(f"/t/{world.slug}/admin/upstreams")
    assert listing.status == 200 and NAME in listing.text and "Identity providers" in listing.text
    page = console.get(f"/t/{world.slug}/admin/upstreams/corp")
    assert page.status == 200 and "runs the mailboxes" in page.text

    # Authority without a domain: refused in words, nothing saved.
    bad = console.post(f"/t/{world.slug}/admin/upstreams/corp",
                       upstream_form(page.text, email_domains="", email_authoritative="on"))
    assert bad.status == 400 and "list its domains first" in bad.text

    saved = console.post(f"/t/{world.slug}/admin/upstreams/corp",
                         upstream_form(page.text, email_authoritative="on"))
    assert saved.status == 302
    changes = audit(app, world, "upstream.updated")[-1]
    assert changes["changes"] == {"email_domains": ["example.com"], "email_authoritative": True}

    started, done = sign_in(app.test_client(), world, corp)
    portal_id_token(started.browser, world, done, started.verifier)
    assert linked_users(app, world) == [user_id(app, world, world.alice)]


def test_only_admins_edit_upstreams_and_only_with_the_csrf_token(app, client, world, corp):
    add_corp(app, world, corp)
    console = admin_browser(app, world)
    page = console.get(f"/t/{world.slug}/admin/upstreams/corp")
    no_token = console.post(f"/t/{world.slug}/admin/upstreams/corp",
                            {**upstream_form(page.text, email_authoritative="on"),
                             "csrf_token": ""})
    assert no_token.status == 400
    assert audit(app, world, "upstream.updated") == []
    assert console.get(f"/t/{world.slug}/admin/upstreams/nope").status == 404

    member = Browser(app.test_client())
    password_sign_in(member, world, world.bob)
    assert member.get(f"/t/{world.slug}/admin/upstreams").status == 403
    assert member.get(f"/t/{world.slug}/admin/upstreams/corp").status == 403
