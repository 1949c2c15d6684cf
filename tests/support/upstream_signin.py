"""A sign-in through an upstream OpenID provider (``tests.support.upstream.ScriptedProvider``),
as a portal's user does it: the portal's request, "Sign in with Partner SSO", the upstream, back."""

from __future__ import annotations

import secrets

import requests

from idp import admin, db, directory
from idp.federation import client as upstream_client
from idp.models import UpstreamIdentity
from tests.support.journey import CSRF, TX, Browser, Page, field, pkce_pair


def reset_upstream(provider, monkeypatch):
    """The provider reset, its certificate trusted here, nothing it published still cached
    (a generator for a fixture to ``yield from``)."""
    provider.reset()
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(provider.ca_file))
    upstream_client._cache.clear()
    yield provider
    upstream_client._cache.clear()


def add_upstream(app, world, provider, *, trust_mfa="never", trusted_acrs=(),
                 back_channel_hosts=()) -> None:
    """The upstream "Partner SSO", with alice here linked to the provider's subject (an earlier
    sign-in)."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        row = admin.add_upstream(
            session, app.extensions["idp.secretbox"], tenant, slug="partner", name="Partner SSO",
            issuer=provider.issuer, client_id=provider.client_id,
            client_secret=provider.client_secret, email_domains=[], trust_mfa=trust_mfa,
            actor="test", trusted_acrs=list(trusted_acrs),
            back_channel_hosts=list(back_channel_hosts))
        alice = directory.find_user(session, tenant, world.alice)
        session.add(UpstreamIdentity(upstream_id=row.id, user_id=alice.id,
                                     subject=provider.subject))
        session.commit()


def sign_in_upstream(browser: Browser, world, provider) -> tuple[Page, str]:
    """A portal sends the browser to us; it picks "Sign in with Partner SSO", goes to the
    upstream and comes back as far as we let it: (where it ends, the portal's PKCE verifier).
    Where we refuse before sending it to the upstream, it ends at our answer (the upstream's
    ``authorization_requests`` tell whether it went there)."""
    verifier, challenge = pkce_pair()
    login = browser.authorize(f"/t/{world.slug}", {
        "response_type": "code", "client_id": world.portal.client_id,
        "redirect_uri": world.portal.redirect_uri, "scope": "openid email",
        "state": "st", "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert login.status == 200 and "Sign in with Partner SSO" in login.text, login.text[:500]
    page = browser.post(f"/t/{world.slug}/login/upstream/partner",
                        {"csrf_token": field(CSRF, login.text), "tx": field(TX, login.text)})
    if page.status == 302 and page.location.startswith(provider.issuer):
        # At the upstream: it signs the user in and sends the browser back with a code.
        there = requests.get(page.location, allow_redirects=False, timeout=10,
                             verify=str(provider.ca_file) if provider.ca_file else True)
        assert there.status_code == 302, there.text[:500]
        page = browser.follow(browser.get(there.headers["Location"]), world.portal.redirect_uri)
    return page, verifier
