"""Issue 16, defects 1, 3 and 7 through the console as an admin uses it.

1. A tenant that allows only security questions (Klearcom, seed 000) does not lock its admins
   out of the console: the console asks them a question, and the policy page says so — and
   warns before a policy is saved that would make the console ask less than it does now.
3. After "Turn off" on a user's page, the users list, the user's page and the MFA report (and
   its CSV) all show what the next sign-in does; a user a group policy requires shows as
   required everywhere.
7. No command-line syntax is shown to an admin: turning a user on while the organisation has
   two-step verification off says so in plain words, with a link to the Policy page.
"""

from __future__ import annotations

import csv
import html
import io
import re
import time
from types import SimpleNamespace

from idp import admin, db, directory
from idp.journey import session as sso
from tests.support.account import answer_challenge, password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field
from tests.support.questions import ASKED, asked, enroll
from tests.support.signin import set_policy

# A command line a person would read: ``idp user mfa``, `` --flag``, ``SLUG``. A flag follows a
# space (a random id in a link, "…X--ipQ…", is no flag); only what the page shows is read.
_CLI = re.compile(r"idp \w+ \w+|(?:^|\s)--[a-z][a-z-]+|\bSLUG\b")


class CLI_SYNTAX:  # noqa: N801  (read as the pattern it stands for)
    @staticmethod
    def search(page: str):
        return _CLI.search(html.unescape(re.sub(r"<[^>]+>", " ", page)))


def users_url(world, *rest) -> str:
    return "/".join([f"/t/{world.slug}/admin/users", *map(str, rest)])


def user_id(app, world, email) -> int:
    with app.app_context():
        session = db.session()
        return directory.find_user(session, directory.get_tenant(session, world.slug), email).id


def shield(page_text: str, email: str | None = None) -> tuple[str, str]:
    """(state, label) of a user's shield: in the list's row of ``email``, or on a user page."""
    if email is not None:
        page_text = re.search(rf'<tr data-user="{re.escape(email)}">(.*?)</tr>', page_text, re.S).group(1)
    m = re.search(r'data-shield="([a-z]+)"[^>]*>([^<]+)<', page_text)
    return m.group(1), html.unescape(m.group(2))


def act(browser, world, page_text: str, target: int, action: str, back: str):
    return browser.post(users_url(world, target, action),
                        {"csrf_token": field(CSRF, page_text), "back": back})


def report_row(browser, world, email) -> dict:
    r = browser.http.get(f"/t/{world.slug}/admin/report.csv")
    return {row["email"]: row for row in csv.DictReader(io.StringIO(r.get_data(as_text=True)))}[email]


def overall(browser, world) -> dict[str, str]:
    page = browser.get(f"/t/{world.slug}/admin/report").text
    row = re.search(r"<tr data-overall>(.*?)</tr>", page, re.S).group(1)
    return dict(re.findall(r'data-(exempt|optional)="(\d+)"', row))


def signs_in_with_password_only(app, world, email) -> bool:
    page = password_sign_in(Browser(app.test_client()), world, email)
    return page.status == 200 and "/login/" not in (page.location or "") and not ASKED.search(page.text) \
        and 'name="code"' not in page.text


# -- defect 3 ----------------------------------------------------------------------------------

def test_turn_off_on_the_user_page_shows_off_in_the_list_the_page_and_the_report(app, world):
    own = Browser(app.test_client())
    password_sign_in(own, world, world.alice)
    enroll(own, world)
    browser = admin_browser(app, world)
    alice = user_id(app, world, world.alice)
    page = browser.get(users_url(world, alice))
    assert shield(page.text) == ("on", "On: Security questions")

    done = act(browser, world, page.text, alice, "exempt", users_url(world, alice))
    assert done.status == 302
    page = browser.get(done.location).text
    assert shield(page) == ("exempt", "Off (turned off by an administrator)")
    assert "Turn on" in page and ">Turn off<" not in page  # only what would change something
    listed = browser.get(users_url(world)).text
    assert shield(listed, world.alice) == ("exempt", "Off (turned off by an administrator)")
    row = re.search(rf'<tr data-user="{re.escape(world.alice)}">(.*?)</tr>', listed, re.S).group(1)
    assert "Turn on two-step verification for" in row and "Turn off" not in row
    assert report_row(browser, world, world.alice)["state"] == "exempt"
    assert overall(browser, world)["exempt"] == "1"
    # And that is what her next sign-in does: the password only.
    assert signs_in_with_password_only(app, world, world.alice)


def test_a_user_a_group_policy_requires_shows_as_required_everywhere(app, world):
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        admin.create_group(session, tenant, "Sales", "test")
        admin.add_to_group(session, tenant, "Sales", world.bob, "test")
        session.commit()
    browser = admin_browser(app, world)
    set_policy(app, world, mode="required", groups=["Sales"])
    listed = browser.get(users_url(world)).text
    assert shield(listed, world.bob) == ("required", "Required, not set up yet")
    assert shield(listed, world.alice)[0] == "off"  # not in the group: not covered
    assert shield(browser.get(users_url(world, user_id(app, world, world.bob))).text)[0] == "required"
    assert report_row(browser, world, world.bob)["state"] == "required"
    assert report_row(browser, world, world.alice)["state"] == "off"


# -- defect 7 ----------------------------------------------------------------------------------

def test_turning_a_user_on_while_the_organisation_has_it_off_speaks_to_the_admin(app, world):
    browser = admin_browser(app, world)
    set_policy(app, world, mode="disabled")
    page = browser.get(users_url(world)).text
    done = act(browser, world, page, user_id(app, world, world.alice), "enforce", users_url(world))
    after = browser.get(done.location).text
    warning = re.search(r'<p class="notice warning" role="alert">(.*?)</p>', after, re.S)
    assert warning, after[:3000]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", warning.group(1))).split())
    assert "Turn on two-step verification on the Policy page first" in text
    assert f'href="/t/{world.slug}/admin/policy"' in warning.group(1)
    assert not CLI_SYNTAX.search(after), CLI_SYNTAX.search(after)
    assert shield(after, world.alice)[0] == "off"


def test_a_portal_without_a_redirect_uri_is_refused_in_the_consoles_words(app, world):
    browser = admin_browser(app, world)
    form = browser.get(f"/t/{world.slug}/admin/portals").text
    page = browser.post(f"/t/{world.slug}/admin/portals", {
        "csrf_token": field(CSRF, form), "name": "Payroll", "redirect_uris": "",
        "grant_types": ["authorization_code"], "id_token_alg": "RS256"})
    assert page.status == 400 and "needs at least one redirect URI" in page.text
    assert not CLI_SYNTAX.search(page.text)


# -- defect 1 ----------------------------------------------------------------------------------

def klearcom(app, world):
    """Seed 000: admins enforce per user, security questions only, users cannot toggle."""
    set_policy(app, world, mode="optional", factors=["questions"], self_disable=False)


def test_an_admin_of_a_questions_only_tenant_opens_the_console_after_a_question(app, world):
    klearcom(app, world)
    setup = Browser(app.test_client())
    password_sign_in(setup, world, world.admin)
    answers = enroll(setup, world)

    browser = Browser(app.test_client())
    challenge = password_sign_in(browser, world, world.admin)
    assert ASKED.search(challenge.text), challenge.text[:800]
    answer_challenge(browser, world, challenge, "kba", answer=answers[asked(challenge)])
    console = browser.follow(browser.get(users_url(world)), "\0")
    assert console.status == 200, console.text[:800]
    assert "requires level" not in console.text and 'data-user="' in console.text


def test_an_admin_without_questions_sets_them_up_for_the_console(app, world):
    klearcom(app, world)
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.admin)  # optional, nothing set up: password only
    step_up = browser.follow(browser.get(users_url(world)), "\0")
    assert step_up.status == 200, step_up.text[:800]
    assert "Sign-in not possible" not in step_up.text
    # Questions are the only method: straight to their setup (no choice page), no skipping.
    assert "<h1>Set up security questions</h1>" in step_up.text, step_up.text[:1500]
    assert "/login/setup/totp" not in step_up.text and "Not now" not in step_up.text


def test_a_stale_console_session_proves_its_second_step_again(app, world, monkeypatch):
    browser = admin_browser(app, world)
    assert browser.get(users_url(world)).status == 200
    later = time.time() + (sso.CONSOLE_STEP_UP_MINUTES + 1) * 60
    monkeypatch.setattr(sso, "time", SimpleNamespace(time=lambda: later))
    page = browser.get(users_url(world))
    assert page.status == 302 and "/login/verify" in page.location, page.location


def test_the_policy_page_says_what_the_console_asks_and_warns_before_it_asks_less(app, world):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/policy").text
    said = re.search(r'<p id="console-demand" data-level="(\w+)">(.*?)</p>', page, re.S)
    assert said.group(1) == "mfa" and "authenticator app or a passkey" in said.group(2)

    form = {"csrf_token": field(CSRF, page), "mode": "optional", "scope": "everyone",
            "factors": ["questions"], "roles_allowed": ["admin", "member"], "grace_skips": "",
            "captcha_after": "3", "lock_after": "5", "lock_minutes": "60", "users": ""}
    warned = browser.post(f"/t/{world.slug}/admin/policy", form)
    assert warned.status == 200
    box = re.search(r'<div class="notice warning" role="alert" id="console-warning">(.*?)</div>',
                    warned.text, re.S)
    assert box, warned.text[:3000]
    words = " ".join(html.unescape(re.sub(r"<[^>]+>", "", box.group(1))).split())
    assert "Not saved yet" in words and "an answer to one of their security questions" in words
    assert "instead of a second factor, such as an authenticator app or a passkey" in words
    assert not CLI_SYNTAX.search(words) and "acr" not in words
    assert 'name="console_ok"' in box.group(1) and 'form="policy-form"' in box.group(1)
    with app.app_context():
        session = db.session()
        assert admin.policy_dict(session, directory.get_tenant(session, world.slug))["factors"] != ["kba"]

    saved = browser.post(f"/t/{world.slug}/admin/policy", {**form, "console_ok": "1"})
    assert saved.status == 302
    page = browser.follow(browser.get(f"/t/{world.slug}/admin/policy"), "\0").text
    said = re.search(r'<p id="console-demand" data-level="(\w+)">(.*?)</p>', page, re.S)
    assert said, page[:1500]
    assert said.group(1) == "pwd" and "security questions" in said.group(2)
