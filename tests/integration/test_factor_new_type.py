"""A new kind of factor is one class and two templates (issue 17): registered here as a module
in ``idp/mfa/`` registers itself, it is allowed by the policy, set up and proved at sign-in,
counted in the token, listed on the account page and shown by the console — with no other
module told about it. tests/unit/test_factor_registry.py lists what such a class provides."""

from __future__ import annotations

import hmac
import re
import secrets

import pytest
from jinja2 import ChoiceLoader, DictLoader

from idp import mfa
from idp.mfa.base import Factor, Proof, Step, WrongAnswer
from idp.models import Authenticator
from tests.support.account import CEREMONY, answer_challenge
from tests.support.console import admin_browser
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.signin import not_now_to_backup_codes, set_policy, start, tokens_for


class PaperCard(Factor):
    """A card with a code printed on it: the smallest factor there can be (not a secure one:
    the code is kept as it is, which a real type never does)."""

    type = "paper"
    label = "Paper card"
    policy_help = "A card with a code printed on it."
    amr = "otp"
    rank = 25
    several = False

    def enroll_begin(self, ctx):
        code = secrets.token_hex(4)
        return Step(context={"code": code}, state={"code": code})

    def enroll_finish(self, ctx, state, form):
        if not hmac.compare_digest(form.get("code", ""), state["code"]):
            raise WrongAnswer()
        return Authenticator(type=self.type, data={"code": state["code"]})

    def challenge_begin(self, ctx, factors):
        return Step()

    def verify(self, ctx, factors, state, form):
        for card in factors:
            if hmac.compare_digest(form.get("code", ""), card.data["code"]):
                return Proof(card, [self.amr])
        raise WrongAnswer()


PAGES = {
    "mfa/paper/enroll.html": '<p>Your card says <code id="paper-code">{{ step.code }}</code>.</p>'
                             '<input name="code"><button type="submit">Done</button>',
    "mfa/paper/challenge.html": '<label for="code" id="paper-challenge">The code on your card'
                                '</label><input id="code" name="code"><button>Verify</button>',
}
CODE = re.compile(r'id="paper-code">([0-9a-f]+)<')


@pytest.fixture
def paper(app, monkeypatch):
    """The type registered as its module would register it, its pages where templates live."""
    monkeypatch.setitem(mfa.REGISTRY, PaperCard.type, PaperCard())
    monkeypatch.setattr(app, "jinja_loader", ChoiceLoader([app.jinja_loader, DictLoader(PAGES)]))


def test_a_new_factor_type_needs_only_its_class_and_its_templates(app, world, paper):
    admin = admin_browser(app, world)  # (signed in with backup codes, before the policy changes)
    set_policy(app, world, mode="required", factors=["paper", "backup"])

    # Sign-in: the policy asks for it to be set up (the only method that can be set up first).
    browser = Browser(app.test_client())
    verifier, setup, _ = start(browser, world)
    assert "Set up paper card" in setup.text, setup.text[:800]
    code = CODE.search(setup.text).group(1)
    done = browser.follow(browser.post(f"/t/{world.slug}/login/setup/paper", {
        "csrf_token": field(CSRF, setup.text), "tx": field(TX, setup.text),
        "ceremony": field(CEREMONY, setup.text), "code": code}), world.portal.redirect_uri)
    # (backup codes are offered after a first method: not now)
    done = browser.follow(not_now_to_backup_codes(browser, done), world.portal.redirect_uri)
    claims = tokens_for(browser, world, done, verifier)
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "mfa"

    # The account page lists it; the next sign-in asks for it.
    account = browser.get(f"/t/{world.slug}/account").text
    assert 'data-factor="paper"' in account and "Paper card" in account
    again = Browser(app.test_client())
    verifier, challenge, _ = start(again, world)
    assert 'id="paper-challenge"' in challenge.text, challenge.text[:800]
    done = again.follow(answer_challenge(again, world, challenge, "paper", code=code),
                        world.portal.redirect_uri)
    assert tokens_for(again, world, done, verifier)["acr"] == "mfa"

    # The console shows it: allowed on the policy page, held by Alice in the users list.
    policy = admin.get(f"/t/{world.slug}/admin/policy").text
    assert re.search(r'id="factor-paper"[^>]*checked', policy) and "A card with a code" in policy
    users = admin.get(f"/t/{world.slug}/admin/users").text
    assert 'data-shield="on"' in users and "On: Paper card" in users
