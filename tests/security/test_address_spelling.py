"""One address, one spelling: an address typed another way (full-width letters, capitals, spaces
around it) is the same address for the guard, the directory, the console and the CLI, so a
lock or a CAPTCHA never tells whether an account exists.

Peers: Keycloak CVE-2026-4633 (user enumeration: a different answer for existing users), Django
CVE-2019-19844 (an address matched in one Unicode form and used in another). Review finding 5
of issue 15.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support.attempts import answer, try_password
from tests.support.console import admin_browser
from tests.support.journey import Browser
from tests.support.signin import set_policy

GHOST = "ghost@example.com"  # no account behind it


def full_width(text: str) -> str:
    """Every ASCII character in its full-width form (ａｌｉｃｅ＠ｅｘａｍｐｌｅ．ｃｏｍ)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


SPELLINGS = {
    "full-width": full_width,
    "full-width local part": lambda e: full_width(e.split("@")[0].upper()) + "@" + e.split("@")[1],
    "capitals": str.upper,
    "spaces around": lambda e: f"  {e.title()} ",
}


@pytest.mark.parametrize("reached", ["locked", "captcha"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_real_account_and_an_unknown_address_answer_alike_in_every_spelling(
        app, client, world, reached, spelling):
    limits = {"captcha_after": 10, "lock_after": 3} if reached == "locked" else \
        {"captcha_after": 3, "lock_after": 10}
    set_policy(app, world, **limits)
    browser = Browser(client)
    for email in (world.alice, GHOST):
        for _ in range(3):
            try_password(browser, world, email, "a wrong guess")
    spell = SPELLINGS[spelling]
    answers = {email: answer(try_password(browser, world, spell(email), "another guess"))
               for email in (world.alice, GHOST)}
    assert answers == {world.alice: reached, GHOST: reached}


def test_failures_in_different_spellings_add_up_to_one_lock(app, client, world):
    set_policy(app, world, captcha_after=10, lock_after=len(SPELLINGS))
    browser = Browser(client)
    for email in (world.alice, GHOST):
        for spell in SPELLINGS.values():
            assert answer(try_password(browser, world, spell(email), "a wrong guess")) in (
                "incorrect", "locked")
    assert answer(try_password(browser, world, world.alice, world.password)) == "locked"
    assert answer(try_password(browser, world, GHOST, world.password)) == "locked"


def test_the_audit_log_finds_failures_typed_in_any_spelling(app, client, world):
    set_policy(app, world, captcha_after=10, lock_after=10)
    browser = Browser(client)
    for spell in SPELLINGS.values():
        try_password(browser, world, spell(GHOST), "a wrong guess")
    page = admin_browser(app, world).get(f"/t/{world.slug}/admin/audit",
                                         {"user": full_width(GHOST), "action": "user.sign_in_failed"})
    assert page.status == 200
    assert len(re.findall(r'<tr data-event="\d+"', page.text)) == len(SPELLINGS)


def test_the_console_finds_a_user_by_any_spelling_of_the_address(app, world):
    page = admin_browser(app, world).get(f"/t/{world.slug}/admin/users",
                                         {"q": full_width(world.alice.upper())})
    assert f'data-user="{world.alice}"' in page.text and world.bob not in page.text


def test_the_outbox_finds_mail_by_any_spelling_of_the_address(app, client, idp, world):
    set_policy(app, world, captcha_after=10, lock_after=2)
    browser = Browser(client)
    for _ in range(2):  # the lock mails alice
        try_password(browser, world, world.alice, "a wrong guess")
    code, out, err = idp("outbox", "--json", "--to", f" {full_width(world.alice.upper())} ")
    assert code == 0, err
    found = json.loads(out)
    assert found and {m["recipient"] for m in found} == {world.alice}
    assert any("locked" in m["subject"] for m in found)


def test_an_upstreams_email_domains_are_kept_in_the_one_spelling(idp, world):
    code, out, err = idp("upstream", "add", world.slug, "--name", "Corp SSO",
                         "--issuer", "https://sso.corp.test", "--client-id", "abc",
                         "--client-secret-stdin", "--email-domains",
                         f"{full_width('@Corp.TEST')}, Example.com", stdin="s3cret-value\n")
    assert code == 0, err
    assert json.loads(out)["email_domains"] == ["corp.test", "example.com"]
