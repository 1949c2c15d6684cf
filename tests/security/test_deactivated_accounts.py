"""A deactivated account that still gets in: by a refresh token issued before, by an SSO
session kept from before, or by another way of signing in than the password.

Peers: goauthentik/authentik#12858 (refresh tokens of a deactivated user still worked),
wso2-extensions/identity-inbound-auth-oauth#1385 (a disabled user refreshed access tokens).
Deactivating here revokes every token and ends every session in the same request; and where
something outlived that (a command run without the server's store, a row written by a request
racing the deactivation), each way in asks the account's status itself: the token endpoint,
userinfo, introspection, every page that reads a session, the password, the sign-in link and
the upstream sign-in.
"""

from __future__ import annotations

from sqlalchemy import select

from idp import db, directory
from idp.guard import account_key
from idp.models import AuditEvent
from tests.support.console import admin_browser
from tests.support.journey import Browser
from tests.support.lifecycle import portal_sign_in, set_status_behind_the_store
from tests.support.rp import introspect, params_for, refresh, userinfo
from tests.support.signin import challenge_page
from tests.support.totp import enroll_totp
from tests.support.upstream_signin import add_upstream, sign_in_upstream

DEACTIVATED = "This account is deactivated. Contact your organisation&#39;s administrator."


def test_tokens_and_a_session_that_outlived_the_deactivation_open_nothing(app, client, world):
    alice = portal_sign_in(app, world)
    set_status_behind_the_store(app, world, world.alice, "deactivated")

    r = refresh(client, world, world.portal, alice.tokens["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    assert userinfo(client, world, alice.tokens["access_token"]).status_code == 401
    assert introspect(client, world, world.portal, alice.tokens["access_token"])["active"] is False
    assert introspect(client, world, world.portal, alice.tokens["refresh_token"])["active"] is False
    # The browser's session: the portal's next request finds nobody, and the session is gone
    # for good (a reactivation does not bring it back).
    silent = alice.browser.get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    assert "error=login_required" in silent.location
    set_status_behind_the_store(app, world, world.alice, "active")
    assert alice.browser.get(f"/t/{world.slug}/account").status == 302


def test_an_administrator_deactivated_behind_the_store_loses_the_console(app, world):
    ada = admin_browser(app, world)
    assert ada.get(f"/t/{world.slug}/admin/users").status == 200
    set_status_behind_the_store(app, world, world.admin, "deactivated")
    page = ada.get(f"/t/{world.slug}/admin/users")
    assert page.status == 302 and "/login" in page.location


def test_an_upstream_sign_in_does_not_open_a_deactivated_account(app, client, world, upstream):
    add_upstream(app, world, upstream, trust_mfa="always")  # alice is linked to its subject
    set_status_behind_the_store(app, world, world.alice, "deactivated")
    browser = Browser(client)

    done, _ = sign_in_upstream(browser, world, upstream)

    assert done.status == 403 and DEACTIVATED in done.text
    assert upstream.authorization_requests  # the upstream did sign them in
    assert browser.get(f"/t/{world.slug}/account").status == 302  # but here: nobody
    with app.app_context():
        session = db.session()
        actions = list(session.scalars(select(AuditEvent.action).where(
            AuditEvent.tenant_id == directory.get_tenant(session, world.slug).id,
            AuditEvent.actor == world.alice, AuditEvent.action.like("user.sign%"))))
    assert actions == ["user.sign_in_refused"]
    # Reactivated, the same upstream sign-in works.
    set_status_behind_the_store(app, world, world.alice, "active")
    again, _ = sign_in_upstream(Browser(app.test_client()), world, upstream)
    assert again.status == 302 and "code=" in again.location


def test_a_deactivated_account_is_not_an_oracle_for_its_second_factor(app, world):
    """Past the right password a deactivated account is refused before any factor is asked,
    so its second factor cannot be guessed at (nor its lock counter moved)."""
    enroll_totp(Browser(app.test_client()), world)
    set_status_behind_the_store(app, world, world.alice, "deactivated")
    _, _, page = challenge_page(app, world)
    assert page.status == 403 and DEACTIVATED in page.text and 'name="code"' not in page.text
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), world.alice)
        assert app.extensions["idp.guard"].failures(account_key(user.tenant_id, user.id, "")) == 0
