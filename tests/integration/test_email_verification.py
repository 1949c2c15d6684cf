"""A verified address: the ID token says so only after the owner followed a link, and a tenant
that requires it issues no code before. Links are read from the outbox."""

from __future__ import annotations

import re

from tests.support.journey import CSRF, Browser, field, pkce_pair, query
from tests.support.mailed_links import mailed_paths
from tests.support.rp import params_for
from tests.support.signin import set_policy, tokens_for


def require_verification(app, world, on: bool = True) -> None:
    set_policy(app, world, require_verified_email=on)


def verify_mails(app, world, to: str) -> list[str]:
    return mailed_paths(app, world, to, "verify")


def sign_in(browser: Browser, world, email: str):
    verifier, challenge = pkce_pair()
    params = params_for(world.portal, code_challenge=challenge, scope="openid email")
    page = browser.authorize(f"/t/{world.slug}", params)
    page = browser.sign_in(page, email, world.password, world.slug, world.portal.redirect_uri)
    return verifier, page


def confirm(browser: Browser, path: str):
    page = browser.get(path)
    assert page.status == 200 and "Confirm my address" in page.text, page.text[:300]
    return browser.post(path, {"csrf_token": field(CSRF, page.text)})


def test_email_verified_is_false_until_the_owner_follows_a_link(app, world):
    browser = Browser(app.test_client())
    verifier, page = sign_in(browser, world, world.bob)
    assert tokens_for(browser, world, page, verifier)["email_verified"] is False


def test_a_tenant_that_requires_it_holds_the_code_until_the_link_is_followed(app, world):
    require_verification(app, world)
    browser = Browser(app.test_client())
    verifier, page = sign_in(browser, world, world.bob)
    assert page.status == 403 and "Verify your email address" in page.text
    assert "We mailed you a link" in page.text and "code=" not in (page.location or "")
    [path] = verify_mails(app, world, world.bob)

    # "Continue" before the link is followed: still held, no second mail at once.
    resume = re.search(r'href="([^"]*/authorize/resume[^"]*)"', page.text).group(1).replace("&amp;", "&")
    again = browser.get(resume)
    assert again.status == 403 and "a few minutes ago" in again.text
    assert len(verify_mails(app, world, world.bob)) == 1

    # Opening the link spends nothing (mail scanners); the button does, and the
    # authorization that waited in this browser goes on to the portal.
    assert browser.get(path).status == 200
    done = browser.follow(confirm(browser, path), world.portal.redirect_uri)
    assert done.status == 302 and "code" in query(done.location), (done.status, done.text[:300])
    claims = tokens_for(browser, world, done, verifier)
    assert claims["email_verified"] is True

    reused = browser.get(path)
    assert reused.status == 400 and "This link does not work" in reused.text


def test_a_link_followed_in_another_browser_verifies_and_says_so(app, world):
    require_verification(app, world)
    browser = Browser(app.test_client())
    verifier, page = sign_in(browser, world, world.bob)
    [path] = verify_mails(app, world, world.bob)
    elsewhere = Browser(app.test_client())
    shown = confirm(elsewhere, path)
    assert shown.status == 200 and "is verified" in shown.text
    # Back in the first browser, "Continue" now reaches the portal.
    resume = re.search(r'href="([^"]*/authorize/resume[^"]*)"', page.text).group(1).replace("&amp;", "&")
    done = browser.follow(browser.get(resume), world.portal.redirect_uri)
    assert tokens_for(browser, world, done, verifier)["email_verified"] is True


def test_prompt_none_gets_interaction_required_while_unverified(app, world):
    require_verification(app, world)
    browser = Browser(app.test_client())
    sign_in(browser, world, world.bob)
    verifier, challenge = pkce_pair()
    page = browser.get(f"/t/{world.slug}/authorize",
                       params_for(world.portal, code_challenge=challenge, prompt="none"))
    assert page.status == 302 and query(page.location)["error"] == "interaction_required"


def test_bad_verification_links_get_a_clear_page(app, world):
    browser = Browser(app.test_client())
    for token in ("x" * 43, "short", "y" * 300):
        page = browser.get(f"/t/{world.slug}/login/verify-email/{token}")
        assert page.status in (400, 404) and "Traceback" not in page.text
    page = browser.post(f"/t/{world.slug}/login/verify-email/again", {"tx": "nope"})
    assert page.status == 400
