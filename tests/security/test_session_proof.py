"""An SSO session remembers how its user proved who they are, and every later decision uses it.

Peer class: an identity broker forgetting, after the first sign-in, what the session's first
step was — Keycloak's brokered logins not carrying the upstream's level into later step-up
decisions (keycloak/keycloak#25335), the same class as an admin's one-time link whose
"skip the second factor" is honoured at the sign-in but not at the next application. Issue 16,
finding 2 (ClickHelp, seed 001: login tokens skip 2FA): with ``--login-token-bypass on`` the
link said "You are signed in", then the portal's request landed on the code page, because
/authorize asked the policy as if the session were a password sign-in. A trusted upstream's
session had the same fault.

Everything goes through the hosted pages (the link, its button, /authorize, the upstream) and
ends in the ID token the portal would read.
"""

from __future__ import annotations

import json

import pytest

from tests.support.journey import CSRF, Browser, field
from tests.support.signin import set_policy, start, tokens_for
from tests.support.totp import enroll_totp
from tests.support.upstream_signin import add_upstream, sign_in_upstream


def login_link(idp, world, email: str) -> str:
    """``idp login-token create`` as the admin runs it; the link's path on our site."""
    status, out, err = idp("login-token", "create", world.slug, email)
    assert status == 0, err
    url = json.loads(out)["url"]
    return url[url.index("/t/"):]


def use_link(browser: Browser, path: str):
    """Open the link and press Continue, as the person who received it."""
    page = browser.get(path)
    assert page.status == 200 and 'id="use-token"' in page.text, page.text[:500]
    done = browser.follow(browser.post(path, {"csrf_token": field(CSRF, page.text)}), "\0")
    assert done.status == 200 and "You are signed in" in done.text, done.text[:800]
    return done


def test_a_login_link_reaches_the_portal_without_the_second_factor(app, client, world, idp):
    enroll_totp(Browser(app.test_client()), world)  # alice has an authenticator app
    browser = Browser(client)
    use_link(browser, login_link(idp, world, world.alice))

    verifier, page, _ = start(browser, world)
    claims = tokens_for(browser, world, page, verifier)  # a code at once, no code page
    assert (claims["amr"], claims["acr"]) == (["login_token"], "pwd")


def test_with_the_bypass_off_the_next_portal_asks_for_the_second_factor(app, client, world, idp):
    """A policy change applies at the next authorization request, also to a live session."""
    enroll_totp(Browser(app.test_client()), world)
    browser = Browser(client)
    use_link(browser, login_link(idp, world, world.alice))
    set_policy(app, world, login_token_bypass=False)
    _, page, _ = start(browser, world)
    assert page.status == 200 and 'name="factor" value="totp"' in page.text, page.text[:600]


def test_a_password_sign_in_after_a_login_link_is_a_password_sign_in(app, client, world, idp):
    """What the link proved belongs to its session only: prompt=login is a password sign-in,
    and that one is asked for the second factor."""
    enroll_totp(Browser(app.test_client()), world)
    browser = Browser(client)
    use_link(browser, login_link(idp, world, world.alice))
    _, page, _ = start(browser, world, prompt="login")
    assert page.status == 200 and 'name="factor" value="totp"' in page.text, page.text[:600]


@pytest.mark.parametrize("trust_mfa,asked_again", [("always", False), ("never", True)])
def test_a_trusted_upstreams_session_counts_at_the_next_portal(app, client, world, upstream,
                                                               trust_mfa, asked_again):
    enroll_totp(Browser(app.test_client()), world)
    add_upstream(app, world, upstream, trust_mfa=trust_mfa)
    browser = Browser(client)
    first, _ = sign_in_upstream(browser, world, upstream)
    assert len(upstream.authorization_requests) == 1, first.text[:600]  # it went there
    if trust_mfa == "always":
        assert first.status == 302 and first.location.startswith(world.portal.redirect_uri), \
            first.text[:600]
    # The portal's next request, in the same browser: the session is the upstream's.
    verifier, page, _ = start(browser, world)
    if asked_again:
        assert page.status == 200 and 'name="factor" value="totp"' in page.text, page.text[:600]
    else:
        claims = tokens_for(browser, world, page, verifier)
        assert claims["amr"] == ["fed"]
