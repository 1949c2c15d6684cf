"""The console's policy page: what it shows, what saving does, bad input, and the
"what happens if…" panel, whose answer must be ``policy.decide()``'s."""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from idp import admin, db, directory, mfa, policy
from idp.journey import facts
from idp.models import AuditEvent
from idp import tenant_policy
from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field
from tests.support.world import make_world


def url(world, query=""):
    return f"/t/{world.slug}/admin/policy{query}"


def tenant_of(world):
    return directory.get_tenant(db.session(), world.slug)


def set_policy(app, world, **kw):
    with app.app_context():
        admin.set_policy(db.session(), tenant_of(world), "test", **kw)
        db.session().commit()


def saved_policy(app, world) -> dict:
    with app.app_context():
        return admin.policy_dict(db.session(), tenant_of(world))


def policy_events(app, world) -> list[tuple[str, dict]]:
    """(actor, data) of each policy.changed event of the tenant, oldest first."""
    with app.app_context():
        return [tuple(row) for row in db.session().execute(
            select(AuditEvent.actor, AuditEvent.data).where(
                AuditEvent.tenant_id == tenant_of(world).id,
                AuditEvent.action == "policy.changed").order_by(AuditEvent.id))]


def input_tag(page: str, element_id: str) -> str:
    match = re.search(rf'<(?:input|textarea|option)[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert match, f"no #{element_id} on the page"
    return match.group(0)


def checked(page: str, element_id: str) -> bool:
    return re.search(r"\schecked\b", input_tag(page, element_id)) is not None


def value(page: str, element_id: str) -> str:
    return html.unescape(re.search(r'value="([^"]*)"', input_tag(page, element_id)).group(1))


def textarea(page: str, element_id: str) -> str:
    return html.unescape(re.search(rf'<textarea[^>]*id="{element_id}"[^>]*>(.*?)</textarea>', page, re.S).group(1))


def form_of(page: str, **changes) -> dict:
    """The policy form as the page shows it, with ``changes`` typed over it."""
    data = {"csrf_token": field(CSRF, page)}
    data["mode"] = next(m for m in ("disabled", "optional", "required") if checked(page, f"mode-{m}"))
    data["scope"] = "selected" if checked(page, "scope-selected") else "everyone"
    groups = re.search(r'<select id="groups".*?</select>', page, re.S)
    data["groups"] = [html.unescape(v) for v in
                      re.findall(r'<option value="([^"]*)" selected>', groups.group(0))] if groups else []
    data["users"] = textarea(page, "users")
    data["grace_days"] = value(page, "grace_days")
    data["grace_skips"] = value(page, "grace_skips")
    data["factors"] = [f.alias or f.type for f in mfa.ordered() if checked(page, f"factor-{f.alias or f.type}")]
    data["roles_allowed"] = [r for r in ("admin", "mfa-admin", "member") if checked(page, f"role-{r}")]
    for name in ("self_disable", "login_token_bypass", "federation_jit", "lock_email_admins",
                 "self_service_reset", "require_verified_email", "self_registration"):
        if checked(page, name):
            data[name] = "on"
    for name in ("captcha_after", "lock_after", "lock_minutes", "password_min_length",
                 "reset_link_minutes"):
        data[name] = value(page, name)
    data["registration_domains"] = textarea(page, "registration_domains")
    data["accounts"] = re.search(r'<input type="hidden" name="accounts" value="([^"]+)">', page).group(1)
    for name, typed in changes.items():
        if typed is None:
            data.pop(name, None)
        else:
            data[name] = typed
    return data


def answer_on(page: str) -> dict:
    """The what-if panel's answer: need, factors, reason."""
    box = re.search(r'<div class="what-if-answer"[^>]*data-need="([a-z]+)" data-factors="([^"]*)"(.*?)</dl>',
                    page, re.S)
    assert box, page[-3000:]
    reason = re.search(r'<dd data-field="reason">(.*?)</dd>', box.group(3), re.S).group(1)
    return {"need": box.group(1), "factors": tuple(box.group(2).split()),
            "reason": html.unescape(reason).strip()}


def decided(app, world, email, client_id=None, acr=""):
    """What ``decide()`` answers for a fresh password sign-in, read the way sign-in reads it."""
    with app.app_context():
        session = db.session()
        tenant = tenant_of(world)
        client = None
        if client_id:
            from idp.models import Client

            client = session.scalar(select(Client).where(Client.client_id == client_id))
        return policy.decide(tenant_policy.tenant_policy(session, tenant),
                             facts.user_facts(session, directory.find_user(session, tenant, email)),
                             facts.requirements({"acr_values": acr}, client), policy.Progress(),
                             datetime.now(timezone.utc))


def test_the_page_shows_the_current_settings(app, world):
    browser = admin_browser(app, world)  # signed in before the policy changes
    set_policy(app, world, mode="required", factors=["totp", "questions"], grace_skips=2,
               captcha_after=4, lock_after=7, lock_minutes=45, self_disable=False,
               federation_jit=True, lock_email_admins=True)
    page = browser.get(url(world))
    assert page.status == 200
    text = page.text
    assert checked(text, "mode-required") and not checked(text, "mode-optional")
    assert checked(text, "factor-totp") and checked(text, "factor-questions")
    assert not checked(text, "factor-webauthn") and not checked(text, "factor-sms")
    assert checked(text, "scope-everyone")
    assert value(text, "grace_skips") == "2"
    assert (value(text, "captcha_after"), value(text, "lock_after"), value(text, "lock_minutes")) == ("4", "7", "45")
    assert not checked(text, "self_disable") and checked(text, "login_token_bypass")
    assert checked(text, "federation_jit") and checked(text, "lock_email_admins")
    # Questions are allowed: the admin is told they never count as MFA.
    assert 'id="knowledge-note"' in text and "never count as two-factor authentication" in text
    assert "portals are told it was not two-factor" in " ".join(text.split())
    assert "acr pwd" not in text
    # Each mode is explained in a sentence.
    for help_id in ("mode-disabled-help", "mode-optional-help", "mode-required-help"):
        assert f'id="{help_id}"' in text


def test_saving_changes_the_policy_and_is_audited_with_the_admin(app, world):
    with app.app_context():
        admin.create_group(db.session(), tenant_of(world), "Finance", "test")
        db.session().commit()
    browser = admin_browser(app, world)
    set_policy(app, world, factors=["webauthn", "totp"])
    page = browser.get(url(world)).text
    assert not checked(page, "factor-questions") and 'id="knowledge-note"' not in page
    data = form_of(page, mode="required", scope="selected", groups=["Finance"], users=f"{world.bob}\n",
                   grace_days="14", grace_skips="3", factors=["webauthn", "totp", "questions"],
                   roles_allowed=["member"], self_disable=None, login_token_bypass=None,
                   federation_jit="on", captcha_after="2", lock_after="4", lock_minutes="30",
                   lock_email_admins="on")
    # Members only: administrators could no longer use a second step, so the page warns
    # before saving that the console would then ask for the password only.
    warned = browser.post(url(world), data)
    assert warned.status == 200 and 'id="console-warning"' in warned.text
    assert saved_policy(app, world)["roles_allowed"] == ["admin", "mfa-admin", "member"]
    done = browser.post(url(world), {**data, "console_ok": "1"})
    assert done.status == 302, done.text[:2000]

    shown = saved_policy(app, world)
    assert shown["mode"] == "required" and shown["scope"] == "selected"
    assert shown["groups"] == ["Finance"] and shown["users"] == [world.bob]
    assert shown["grace_skips"] == 3 and shown["grace_until"] is not None
    assert shown["factors"] == ["webauthn", "totp", "kba"] and shown["roles_allowed"] == ["member"]
    assert shown["self_disable"] is False and shown["login_token_bypass"] is False
    assert shown["federation_jit"] is True and shown["lock_email_admins"] is True
    assert (shown["captcha_after"], shown["lock_after"], shown["lock_minutes"]) == (2, 4, 30)

    actor, data = policy_events(app, world)[-1]
    assert actor == world.admin
    assert data["changes"]["mode"] == "required" and data["changes"]["groups"] == ["Finance"]

    after = browser.get(done.location).text
    notice = html.unescape(re.search(r'<p class="notice" role="status">(.*?)</p>', after, re.S).group(1))
    assert "two-step verification: optional → required" in notice
    assert "lock after: 5 → 4" in notice and "never count as two-factor" in notice
    # The page now shows what was saved, and grace days are not re-applied on the next save.
    assert checked(after, "mode-required") and checked(after, "scope-selected")
    assert textarea(after, "users").strip() == world.bob and value(after, "grace_days") == ""
    again = browser.post(url(world), form_of(after))
    assert again.status == 302 and saved_policy(app, world) == shown
    assert "Nothing changed" in browser.get(again.location).text


@pytest.mark.parametrize("typed, message", [
    ({"scope": "selected", "groups": ["Nope"]}, "no group 'Nope'"),
    ({"grace_days": "-3"}, "grace days cannot be negative"),
    ({"lock_after": "0"}, "“Lock the account after this many failed attempts” must be from 1 to 100"),
    ({"captcha_after": "three"}, "must be a whole number"),
    ({"factors": []}, "Choose at least one allowed method"),
    ({"scope": "selected", "groups": [], "users": ""}, "Choose at least one group or user"),
    ({"scope": "selected", "users": "nobody@example.com"}, "no user nobody@example.com"),
    ({"password_min_length": "7"}, "“Shortest password allowed, in characters” must be from 8 to 64"),
    ({"password_min_length": "65"}, "“Shortest password allowed, in characters” must be from 8 to 64"),
    ({"password_min_length": ""}, "Enter a number for “Shortest password allowed, in characters”"),
    ({"reset_link_minutes": "4"}, "“A reset link works for this many minutes” must be from 5 to 1440"),
    ({"reset_link_minutes": "a day"}, "must be a whole number"),
    ({"registration_domains": "example.com\nexample dot org"}, "'example dot org' is not an email domain"),
])
def test_bad_input_shows_the_form_again_with_the_message_and_nothing_changes(app, world, typed, message):
    browser = admin_browser(app, world)
    before, events = saved_policy(app, world), len(policy_events(app, world))
    page = browser.get(url(world)).text
    # Other fields typed in the same post, which must come back as typed.
    data = form_of(page, **{"mode": "required", "lock_minutes": "90", "users": world.bob, **typed})
    answer = browser.post(url(world), data)
    assert answer.status == 400
    assert message in html.unescape(answer.text)
    assert 'id="policy-error"' in answer.text
    assert checked(answer.text, "mode-required") and value(answer.text, "lock_minutes") == "90"
    for name in ("grace_days", "lock_after", "captcha_after", "password_min_length", "reset_link_minutes"):
        if name in typed:
            assert value(answer.text, name) == typed[name]
    if typed.get("groups"):
        assert re.search(r'<option value="Nope" selected>', answer.text)
    assert world.bob in textarea(answer.text, "users") or "users" in typed
    # Nothing was saved, not even the settings checked before the one refused.
    assert saved_policy(app, world) == before and len(policy_events(app, world)) == events


ACCOUNT_SETTINGS = ("password_min_length", "self_service_reset", "reset_link_minutes",
                    "require_verified_email", "self_registration", "registration_domains")


def accounts_fieldset(page: str) -> str:
    box = re.search(r'<fieldset id="accounts">\s*<legend>Passwords and accounts</legend>(.*?)</fieldset>',
                    page, re.S)
    assert box, "no Passwords and accounts fieldset"
    return box.group(1)


def test_the_passwords_and_accounts_fieldset_shows_the_saved_settings(app, world):
    browser = admin_browser(app, world)
    page = browser.get(url(world)).text
    box = accounts_fieldset(page)
    # A new tenant's settings, each with its label in plain words.
    assert value(box, "password_min_length") == "8" and value(box, "reset_link_minutes") == "30"
    assert checked(box, "self_service_reset")
    assert not checked(box, "require_verified_email") and not checked(box, "self_registration")
    assert textarea(box, "registration_domains") == ""
    for label in ("Shortest password allowed", "People may reset a forgotten password by mail",
                  "Require a verified email address before signing in to a portal",
                  "People may sign themselves up", "Email domains that may sign up (one per line)"):
        assert label in html.unescape(box)
    assert "idp policy" not in box and "--" not in box  # no command-line syntax for admins

    set_policy(app, world, password_min_length=15, self_service_reset=False, reset_link_minutes=120,
               require_verified_email=True, self_registration=True,
               registration_domains=["example.com", "example.org"])
    box = accounts_fieldset(browser.get(url(world)).text)
    assert value(box, "password_min_length") == "15" and value(box, "reset_link_minutes") == "120"
    assert not checked(box, "self_service_reset")
    assert checked(box, "require_verified_email") and checked(box, "self_registration")
    assert textarea(box, "registration_domains") == "example.com\nexample.org"


def test_saving_the_account_settings_is_summarised_and_audited(app, world):
    browser = admin_browser(app, world)
    page = browser.get(url(world)).text
    done = browser.post(url(world), form_of(
        page, password_min_length="12", self_service_reset=None, reset_link_minutes="60",
        require_verified_email="on", self_registration="on",
        registration_domains="example.com\r\n@Staff.Example.org\r\n\r\n"))
    assert done.status == 302, done.text[-2000:]
    shown = saved_policy(app, world)
    assert {k: shown[k] for k in ACCOUNT_SETTINGS} == {
        "password_min_length": 12, "self_service_reset": False, "reset_link_minutes": 60,
        "require_verified_email": True, "self_registration": True,
        "registration_domains": ["example.com", "staff.example.org"]}
    actor, data = policy_events(app, world)[-1]
    assert actor == world.admin and data["changes"] == {k: shown[k] for k in ACCOUNT_SETTINGS}

    after = browser.get(done.location).text
    notice = html.unescape(re.search(r'<p class="notice" role="status">(.*?)</p>', after, re.S).group(1))
    for said in ("shortest password: 8 → 12", "reset by mail: on → off", "reset link minutes: 30 → 60",
                 "verified address required: off → on", "sign-up: off → on",
                 "sign-up domains: any → example.com, staff.example.org"):
        assert said in notice
    # The tenant's snapshot, which the account pages read, has them too.
    with app.test_request_context():
        accounts = tenant_policy.account_settings(db.session(), tenant_of(world))
        assert accounts.password_min_length == 12 and accounts.registration_domains == (
            "example.com", "staff.example.org")


def test_a_form_from_a_page_drawn_before_the_account_settings_keeps_them(app, world):
    """An admin's tab opened before the upgrade posts no account fields: switching them all
    off, and the minimum to nothing, would be the wrong reading of that silence."""
    set_policy(app, world, self_registration=True, password_min_length=10,
               registration_domains=["example.com"])
    browser = admin_browser(app, world)
    before = saved_policy(app, world)
    old_form = {name: typed for name, typed in form_of(browser.get(url(world)).text, lock_after="6").items()
                if name not in ("accounts", *ACCOUNT_SETTINGS)}
    done = browser.post(url(world), old_form)
    assert done.status == 302, done.text[-2000:]
    assert saved_policy(app, world) == {**before, "lock_after": 6}


def test_what_if_required_and_no_factors_means_enroll_with_the_allowed_ones(app, world):
    browser = admin_browser(app, world)
    set_policy(app, world, mode="required", factors=["totp", "webauthn", "questions", "backup"])
    page = browser.get(url(world), {"email": world.alice, "portal": "", "acr": ""})
    assert page.status == 200
    shown, expected = answer_on(page.text), decided(app, world, world.alice)
    assert expected.need is policy.Need.ENROLL
    assert shown == {"need": "enroll", "factors": expected.factors, "reason": expected.reason}
    assert set(shown["factors"]) == {"webauthn", "totp", "kba"}  # backup codes are never the first
    # Each is named as its factor class names it (``Factor.label``).
    assert all(f'data-factor="{f}">{mfa.get(f).label}<' in page.text for f in shown["factors"])
    # The form keeps what was chosen.
    assert value(page.text, "whatif-email") == world.alice


def test_what_if_with_mfa_disabled_says_nothing_is_needed(app, world):
    browser = admin_browser(app, world)
    set_policy(app, world, mode="disabled")
    page = browser.get(url(world), {"email": world.alice, "portal": world.portal.client_id})
    shown, expected = answer_on(page.text), decided(app, world, world.alice, world.portal.client_id)
    assert shown == {"need": "nothing", "factors": (), "reason": expected.reason}
    assert "not available" in shown["reason"]


def test_what_if_a_portal_with_minimum_mfa_names_the_level(app, world):
    with app.app_context():
        strict = directory.create_client(db.session(), tenant_of(world), "Payroll",
                                         ["https://payroll.test/cb"], min_acr="mfa").client.client_id
        db.session().commit()
    browser = admin_browser(app, world)
    page = browser.get(url(world)).text
    assert f'value="{strict}"' in page and "Payroll (minimum: two-factor)" in page
    page = browser.get(url(world), {"email": world.alice, "portal": strict, "acr": ""}).text
    shown, expected = answer_on(page), decided(app, world, world.alice, strict)
    assert shown == {"need": expected.need.value, "factors": expected.factors, "reason": expected.reason}
    assert "a second step, such as an authenticator app" in shown["reason"]
    # Without the portal the same user needs nothing (MFA is optional and she has none).
    page = browser.get(url(world), {"email": world.alice, "portal": ""}).text
    assert answer_on(page)["need"] == decided(app, world, world.alice).need.value == "nothing"


def test_what_if_a_requested_level_phr(app, world):
    browser = admin_browser(app, world)
    page = browser.get(url(world), {"email": world.bob, "portal": world.portal.client_id, "acr": "phr"}).text
    shown, expected = answer_on(page), decided(app, world, world.bob, world.portal.client_id, "phr")
    assert shown == {"need": expected.need.value, "factors": expected.factors, "reason": expected.reason}


def test_what_if_an_unknown_user_or_portal_is_a_clear_400(app, world):
    browser = admin_browser(app, world)
    page = browser.get(url(world), {"email": "nobody@example.com", "portal": ""})
    assert page.status == 400 and "There is no user nobody@example.com" in page.text
    assert value(page.text, "whatif-email") == "nobody@example.com"
    page = browser.get(url(world), {"email": world.alice, "portal": "not-a-client"})
    assert page.status == 400 and "no such portal" in page.text


def test_what_if_never_shows_another_tenants_portal(app, settings, world):
    other = make_world(app, settings)
    browser = admin_browser(app, world)
    page = browser.get(url(world)).text
    assert other.portal.client_id not in page
    assert browser.get(url(world), {"email": world.alice, "portal": other.portal.client_id}).status == 400


def test_a_member_gets_403(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.alice)
    assert browser.get(url(world)).status == 403
    assert browser.get(url(world), {"email": world.alice}).status == 403
    token = field(CSRF, browser.get(f"/t/{world.slug}/account/add/totp").text)
    before = saved_policy(app, world)
    assert browser.post(url(world), {"csrf_token": token, "mode": "disabled"}).status == 403
    assert saved_policy(app, world) == before


def test_the_policy_area_is_in_the_console_navigation(app, world):
    page = admin_browser(app, world).get(f"/t/{world.slug}/admin/users").text
    assert f'href="/t/{world.slug}/admin/policy"' in page and f'href="/t/{world.slug}/admin/groups"' in page
