"""The admin commands: policy, groups, per-user MFA, login tokens, upstreams, client floors."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from idp import db
from idp.models import AuditEvent, Upstream


ACCOUNT_SETTINGS = ("password_min_length", "self_service_reset", "reset_link_minutes",
                    "require_verified_email", "self_registration", "registration_domains")


def run_json(idp, *args, stdin=""):
    code, out, err = idp(*args, stdin=stdin)
    assert code == 0, err
    return json.loads(out)


def test_policy_show_defaults_to_disabled(idp, world):
    shown = run_json(idp, "policy", "show", world.slug)
    # The test tenant is made optional by the fixture; the shape is the contract.
    assert set(shown) >= {"mode", "scope", "groups", "users", "grace_until", "grace_skips", "factors",
                          "roles_allowed", "self_disable", "login_token_bypass"}


def test_policy_set_prints_the_whole_policy_and_is_audited(app, idp, world):
    run_json(idp, "group", "create", world.slug, "Finance")
    policy = run_json(idp, "policy", "set", world.slug, "--mode", "required", "--factors", "totp,questions",
                      "--groups", "Finance", "--users", world.bob, "--grace-days", "14", "--grace-skips", "3",
                      "--roles-allowed", "admin", "--self-disable", "off", "--login-token-bypass", "off")
    assert policy["mode"] == "required" and policy["scope"] == "selected"
    assert policy["factors"] == ["totp", "kba"] and policy["groups"] == ["Finance"]
    assert policy["users"] == [world.bob] and policy["grace_skips"] == 3 and policy["grace_until"]
    assert policy["roles_allowed"] == ["admin"] and policy["self_disable"] is False
    assert policy["login_token_bypass"] is False
    assert run_json(idp, "policy", "show", world.slug) == policy
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "policy.changed")
                                    .order_by(AuditEvent.id.desc()))
        assert event.data["changes"]["mode"] == "required"


def test_account_settings_have_a_new_tenants_defaults(idp, world):
    shown = run_json(idp, "policy", "show", world.slug)
    assert {k: shown[k] for k in ACCOUNT_SETTINGS} == {
        "password_min_length": 8, "self_service_reset": True, "reset_link_minutes": 30,
        "require_verified_email": False, "self_registration": False, "registration_domains": []}


def test_account_settings_are_set_shown_and_audited(app, idp, world):
    policy = run_json(idp, "policy", "set", world.slug, "--password-min-length", "14",
                      "--self-service-reset", "off", "--reset-link-minutes", "90",
                      "--require-verified-email", "on", "--self-registration", "on",
                      "--registration-domains", "Example.COM, @staff.example.org,example.com")
    assert {k: policy[k] for k in ACCOUNT_SETTINGS} == {
        "password_min_length": 14, "self_service_reset": False, "reset_link_minutes": 90,
        "require_verified_email": True, "self_registration": True,
        "registration_domains": ["example.com", "staff.example.org"]}
    assert run_json(idp, "policy", "show", world.slug) == policy
    with app.app_context():
        event = db.session().scalar(select(AuditEvent).where(AuditEvent.action == "policy.changed")
                                    .order_by(AuditEvent.id.desc()))
        assert event.actor == "cli" and event.data["changes"] == {k: policy[k] for k in ACCOUNT_SETTINGS}
    # An empty list lets any domain sign up; what is not named stays as it was.
    policy = run_json(idp, "policy", "set", world.slug, "--registration-domains", "")
    assert policy["registration_domains"] == [] and policy["password_min_length"] == 14


def test_group_add_and_user_mfa_states(idp, world):
    run_json(idp, "group", "create", world.slug, "Sales")
    added = run_json(idp, "group", "add", world.slug, "Sales", world.alice)
    assert added["groups"] == ["Sales"]
    assert run_json(idp, "user", "mfa", world.slug, world.alice, "enforce")["mfa_admin_state"] == "enforced"
    assert run_json(idp, "user", "mfa", world.slug, world.alice, "exempt")["mfa_admin_state"] == "exempt"
    assert run_json(idp, "user", "mfa", world.slug, world.alice, "reset")["must_reenroll"] is True


def test_login_token_create_prints_a_url(idp, world, settings):
    issued = run_json(idp, "login-token", "create", world.slug, world.alice, "--ttl-minutes", "5")
    assert issued["url"].startswith(f"{settings.base_url}/t/{world.slug}/login/token/")


def test_admin_login_links_are_off_until_set_on(idp, world, settings):
    assert run_json(idp, "policy", "show", world.slug)["admin_login_links"] is False
    assert run_json(idp, "policy", "set", world.slug, "--admin-login-links", "on")["admin_login_links"] is True
    issued = run_json(idp, "login-token", "create", world.slug, world.admin)
    assert issued["url"].startswith(f"{settings.base_url}/t/{world.slug}/login/token/")
    assert run_json(idp, "policy", "set", world.slug, "--admin-login-links", "off")["admin_login_links"] is False


def test_upstream_add_keeps_the_secret_encrypted(app, idp, world, settings):
    added = run_json(idp, "upstream", "add", world.slug, "--name", "Corp SSO", "--issuer", "https://sso.corp.test",
                     "--client-id", "abc", "--client-secret-stdin", "--email-domains", "corp.test",
                     "--trust-mfa", "when_upstream_mfa", stdin="s3cret-value\n")
    assert added["upstream"] == "corp-sso"
    assert added["redirect_uri"] == f"{settings.base_url}/t/{world.slug}/login/upstream/corp-sso/callback"
    with app.app_context():
        row = db.session().scalar(select(Upstream).where(Upstream.slug == "corp-sso"))
        assert "s3cret-value" not in row.client_secret_sealed
        assert app.extensions["idp.secretbox"].decrypt(row.client_secret_sealed) == "s3cret-value"


def test_client_create_with_a_minimum_acr(idp, world):
    created = run_json(idp, "client", "create", world.slug, "--name", "Bank", "--redirect-uri",
                       "https://bank.test/cb", "--min-acr", "mfa")
    assert created["min_acr"] == "mfa"


@pytest.mark.parametrize("args,message", [
    (("policy", "set", "{slug}", "--factors", "carrier-pigeon"), "factors"),
    (("policy", "set", "{slug}", "--groups", "Nope"), "no group"),
    (("policy", "set", "{slug}", "--users", "ghost@example.com"), "no user"),
    (("policy", "set", "{slug}", "--grace-days", "-1"), "negative"),
    (("policy", "set", "{slug}", "--password-min-length", "7"), "password-min-length must be from 8 to 64"),
    (("policy", "set", "{slug}", "--password-min-length", "65"), "password-min-length must be from 8 to 64"),
    (("policy", "set", "{slug}", "--reset-link-minutes", "4"), "reset-link-minutes must be from 5 to 1440"),
    (("policy", "set", "{slug}", "--reset-link-minutes", "1441"), "reset-link-minutes must be from 5 to 1440"),
    (("policy", "set", "{slug}", "--registration-domains", "example.com,not a domain"),
     "'not a domain' is not an email domain"),
    (("policy", "set", "{slug}", "--registration-domains", ",".join(f"d{i}.example.com" for i in range(101))),
     "list at most 100 sign-up domains"),
    (("group", "add", "{slug}", "Nope", "alice@example.com"), "no group"),
    (("user", "mfa", "{slug}", "ghost@example.com", "enforce"), "no user"),
    (("login-token", "create", "{slug}", "alice@example.com", "--ttl-minutes", "0"), "1 minute"),
    (("login-token", "create", "{slug}", "ada@example.com"), "sign-in links for administrators are off"),
    (("upstream", "add", "{slug}", "--name", "X", "--issuer", "http://evil.test", "--client-id", "a",
      "--client-secret-stdin"), "https"),
])
def test_admin_errors_are_one_line(idp, world, args, message):
    code, out, err = idp(*[a.format(slug=world.slug) for a in args], stdin="secret\n")
    assert code == 1 and out == "" and message in err and len(err.strip().splitlines()) == 1
