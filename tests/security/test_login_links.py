"""Sign-in links (admin-issued login tokens) for privileged accounts.

Peer class: impersonation / magic-link takeover of privileged accounts. An admin-issued
one-time link signs its holder in without the password (and, with the tenant's
``login_token_bypass``, without the second factor), so a link for an administrator hands over
the tenant's console: one rogue or hijacked admin account, or one leaked link, becomes every
admin account, silently. Identity products that let staff "impersonate" or send magic links
guard the same power with an explicit switch, an audit trail and a notice to the account's
owner.

Issue 15 (adversarial review): links for administrators need an explicit tenant setting, off
by default and for existing tenants; the rule holds when a link is created and again when it
is used; every creation is audited with its creator; the owner of an administrator's link is
mailed (members too, best effort).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select, update

from idp import db, directory, mfa
from idp.models import AuditEvent, LoginToken, OutboxMessage, User
from tests.support.console import admin_browser
from tests.support.databases import scratch_database
from tests.support.journey import CSRF, Browser, field
from tests.support.mailbox import mailing_app as app_mailing_to, smtp_mailbox, tenant_mail
from tests.support.ports import free_port

BOSS = "boss@example.com"  # a second administrator of the tenant, the link's target
REFUSED = "does not allow sign-in links for administrator accounts"


@pytest.fixture
def mailbox():
    with smtp_mailbox() as box:
        yield box


@pytest.fixture
def mailing_app(settings, mailbox):
    """The app with IDP_SMTP_URL pointing at ``mailbox``."""
    with app_mailing_to(settings, mailbox.url) as app:
        yield app


def add_user(app, world, email, role):
    with app.app_context():
        session = db.session()
        user = directory.create_user(session, app.extensions["idp.passwords"],
                                     directory.get_tenant(session, world.slug), email,
                                     "a long password for the test", name="Boss", role=role)
        session.commit()
        return user.id


def set_role(app, user_id, role):
    with app.app_context():
        db.session().get(User, user_id).role = role
        db.session().commit()


@dataclass
class Event:
    actor: str
    user_id: int | None
    data: dict


def events(app, world, action) -> list[Event]:
    """The tenant's audit events of one kind, oldest first."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        return [Event(*row) for row in session.execute(
            select(AuditEvent.actor, AuditEvent.user_id, AuditEvent.data).where(
                AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)
            .order_by(AuditEvent.id))]


def links_of(app, user_id) -> int:
    with app.app_context():
        return db.session().scalar(select(func.count()).select_from(LoginToken)
                                   .where(LoginToken.user_id == user_id))


def cli_link(idp, world, email, **environ):
    """`idp login-token create`: (exit code, the link's path or None, stderr)."""
    code, out, err = idp("login-token", "create", world.slug, email, environ=environ)
    path = re.sub(r"^https?://[^/]+", "", json.loads(out)["url"]) if code == 0 else None
    return code, path, err


def outbox_states(app, world, recipient) -> list[str]:
    """The states of the tenant's messages to ``recipient``, oldest first."""
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        return list(db.session().scalars(select(OutboxMessage.state).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.recipient == recipient)
            .order_by(OutboxMessage.id)))


def send_mail(idp, smtp_url: str) -> dict:
    """`idp mail send`, as a timer would run it: what it did."""
    code, out, err = idp("mail", "send", environ={"IDP_SMTP_URL": smtp_url})
    assert code == 0, err
    return json.loads(out)


def allow_admin_links(idp, world, on: bool):
    code, out, err = idp("policy", "set", world.slug, "--admin-login-links", "on" if on else "off")
    assert code == 0, err
    assert json.loads(out)["admin_login_links"] is on


def console_link(browser, world, user_id):
    """The console's "Create a sign-in link" on a user's page; the page that answers."""
    page = browser.get(f"/t/{world.slug}/admin/users/{user_id}").text
    done = browser.post(f"/t/{world.slug}/admin/users/{user_id}/login-token",
                        {"csrf_token": field(CSRF, page), "back": f"/t/{world.slug}/admin/users/{user_id}"})
    return browser.follow(done, "\0")


def use_link(browser, world, path):
    """Open the link and press its button, as its holder would; the page it ends on."""
    page = browser.get(path)
    csrf = page.text if page.status == 200 else browser.get(f"/t/{world.slug}/login").text
    return browser.follow(browser.post(path, {"csrf_token": field(CSRF, csrf)}), "\0")


# -- creating a link ---------------------------------------------------------------------------

def test_the_command_line_refuses_a_link_for_an_administrator_by_default(app, idp, world):
    boss = add_user(app, world, BOSS, "admin")
    code, path, err = cli_link(idp, world, BOSS)
    assert code == 1 and path is None
    assert len(err.strip().splitlines()) == 1 and "administrator" in err
    assert "--admin-login-links on" in err  # what the operator can do about it
    assert links_of(app, boss) == 0


def test_the_console_refuses_a_link_for_an_administrator_by_default(app, world):
    boss = add_user(app, world, BOSS, "admin")
    browser = admin_browser(app, world)
    page = console_link(browser, world, boss)
    assert page.status == 200 and "/login/token/" not in page.text
    assert "does not allow sign-in links for administrators" in page.text
    assert links_of(app, boss) == 0
    # Nor for the admin's own account (a stolen console session must not mint a lasting way in).
    with app.app_context():
        ada = directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug),
                                  world.admin).id
    assert "/login/token/" not in console_link(browser, world, ada).text


def test_new_tenants_have_the_setting_off(idp, world):
    code, out, _ = idp("tenant", "create", f"{world.slug}-new")
    assert code == 0
    for slug in (world.slug, f"{world.slug}-new"):
        code, out, err = idp("policy", "show", slug)
        assert code == 0, err
        assert json.loads(out)["admin_login_links"] is False


@pytest.fixture
def database_at_0007(backend, tmp_path):
    pg = os.environ.get("IDP_TEST_DATABASE_URL")
    url, drop = (scratch_database(pg, "idp_links") if pg
                 else (f"sqlite:///{tmp_path / 'old.sqlite3'}", lambda: None))
    db.upgrade(url, "0007")
    yield url
    drop()


def test_existing_tenants_have_the_setting_off_after_the_upgrade(database_at_0007):
    engine = db.make_engine(database_at_0007)
    meta = sa.MetaData()
    meta.reflect(engine)
    t = meta.tables
    now = sa.func.now()
    with engine.begin() as c:
        tenant = c.execute(t["tenants"].insert().values(slug="old", name="Old", created_at=now)
                           ).inserted_primary_key[0]
        # A policy written before the setting existed, with sign-in links skipping MFA.
        c.execute(t["tenant_policies"].insert().values(
            tenant_id=tenant, mode="required", everyone=True, groups=[], users=[],
            allowed_factors=["totp"], roles_allowed=["admin", "member"], self_disable=False,
            login_token_bypass=True, federation_jit=False, captcha_after=3, lock_after=5,
            lock_minutes=60, lock_email_admins=False, updated_at=now))
    engine.dispose()
    db.upgrade(database_at_0007)
    engine = db.make_engine(database_at_0007)
    try:
        with engine.connect() as c:
            row = c.execute(sa.text("SELECT admin_login_links, login_token_bypass FROM tenant_policies "
                                    "WHERE tenant_id = :t"), {"t": tenant}).one()
    finally:
        engine.dispose()
    assert (bool(row[0]), bool(row[1])) == (False, True)


# -- using a link ------------------------------------------------------------------------------

def test_a_link_made_for_a_member_who_became_an_administrator_is_refused(app, idp, world):
    boss = add_user(app, world, BOSS, "member")
    code, path, err = cli_link(idp, world, BOSS)
    assert code == 0, err
    holder = Browser(app.test_client())
    button = holder.get(path)
    assert button.status == 200  # still a member: the link would work
    set_role(app, boss, "admin")

    assert holder.get(path).status == 403 and REFUSED in holder.get(path).text
    refused = holder.follow(holder.post(path, {"csrf_token": field(CSRF, button.text)}), "\0")
    assert refused.status == 403 and REFUSED in refused.text
    assert holder.get(f"/t/{world.slug}/account").status == 302  # not signed in
    [event] = events(app, world, "login_token.refused")
    assert event.user_id == boss
    assert events(app, world, "login_token.used") == []
    # The refused link is spent: allowing admin links later does not bring it back.
    allow_admin_links(idp, world, True)
    assert holder.get(path).status == 400


def test_a_link_made_while_allowed_is_refused_once_the_setting_is_off(app, idp, world, mailbox):
    boss = add_user(app, world, BOSS, "admin")
    allow_admin_links(idp, world, True)
    code, path, err = cli_link(idp, world, BOSS, IDP_SMTP_URL=mailbox.url)
    assert code == 0, err
    assert send_mail(idp, mailbox.url)["sent"] >= 1  # the owner is told: the link would work
    allow_admin_links(idp, world, False)
    page = use_link(Browser(app.test_client()), world, path)
    assert page.status == 403 and REFUSED in page.text
    assert [e.user_id for e in events(app, world, "login_token.refused")] == [boss]


# -- allowed: audited, and the owner is told --------------------------------------------------

def test_with_the_setting_on_the_administrator_is_mailed_and_the_creator_audited(
        app, mailing_app, idp, world, mailbox):
    boss = add_user(app, world, BOSS, "admin")
    allow_admin_links(idp, world, True)
    browser = admin_browser(mailing_app, world)
    page = console_link(browser, world, boss)
    link = re.search(r'<code id="login-token-url">([^<]+)</code>', page.text)
    assert link, page.text[-2000:]
    path = re.sub(r"^https?://[^/]+", "", link.group(1))

    assert "starts working once" in page.text  # the mail leaves after this answer
    [mail] = mailbox.wait_for(BOSS, world)  # sent after the request, by the server's own sender
    assert "sign-in link was created" in mail.subject
    assert world.admin in mail.text and "tell your security team" in mail.text
    assert re.search(r"at [A-Z][a-z]+ \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M UTC", mail.text)
    assert path.rsplit("/", 1)[1] not in mail.text  # the notice never carries the link
    [created] = events(app, world, "login_token.created")
    assert (created.actor, created.user_id) == (world.admin, boss)

    home = use_link(Browser(mailing_app.test_client()), world, path)
    assert home.status == 200 and BOSS in home.text
    [used] = events(app, world, "login_token.used")
    assert used.user_id == boss


def test_the_command_line_is_named_as_the_creator(app, idp, world, mailbox):
    boss = add_user(app, world, BOSS, "admin")
    allow_admin_links(idp, world, True)
    code, _, err = cli_link(idp, world, BOSS, IDP_SMTP_URL=mailbox.url)
    assert code == 0, err
    assert tenant_mail(mailbox, world, BOSS) == []  # in the outbox; the command sends nothing
    assert send_mail(idp, mailbox.url)["sent"] >= 1
    [mail] = tenant_mail(mailbox, world, BOSS)
    assert "command line" in mail.text and "tell your security team" in mail.text
    [created] = events(app, world, "login_token.created")
    assert (created.actor, created.user_id) == ("cli", boss)


def test_members_are_mailed_too(app, idp, world, mailbox):
    code, _, err = cli_link(idp, world, world.bob, IDP_SMTP_URL=mailbox.url)
    assert code == 0, err
    send_mail(idp, mailbox.url)
    [mail] = tenant_mail(mailbox, world, world.bob)
    assert "command line" in mail.text and "tell your security team" in mail.text
    assert "tell your security team now" in mail.html and "<p>Hello" in mail.html
    [created] = events(app, world, "login_token.created")
    assert created.actor == "cli"


def test_an_administrators_link_works_only_once_its_owner_was_told(app, idp, world, mailbox):
    boss = add_user(app, world, BOSS, "admin")
    allow_admin_links(idp, world, True)
    nowhere = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there: mail is down
    code, path, err = cli_link(idp, world, BOSS, IDP_SMTP_URL=nowhere)
    assert code == 0 and path, err
    assert send_mail(idp, nowhere)["retrying"] >= 1
    assert outbox_states(app, world, BOSS) == ["pending"]  # to be tried again

    holder = Browser(app.test_client())
    waiting = holder.get(path)
    assert waiting.status == 409 and "does not work yet" in waiting.text
    assert f"once {BOSS} has been told about it" in waiting.text
    pressed = use_link(holder, world, path)  # pressing on anyway spends nothing
    assert pressed.status == 409 and events(app, world, "login_token.used") == []

    # Mail is back and the retry is due: the owner is told, and the same link works.
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        db.session().execute(update(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id,
                                                         OutboxMessage.recipient == BOSS)
                             .values(next_attempt_at=None))
        db.session().commit()
    assert send_mail(idp, mailbox.url)["sent"] >= 1
    assert outbox_states(app, world, BOSS) == ["sent"]
    [mail] = tenant_mail(mailbox, world, BOSS)
    assert "sign-in link was created" in mail.subject
    home = use_link(holder, world, path)
    assert home.status == 200 and BOSS in home.text
    assert [e.user_id for e in events(app, world, "login_token.used")] == [boss]


def test_a_members_link_works_while_mail_is_down(app, idp, world):
    nowhere = f"smtp://127.0.0.1:{free_port()}"
    code, path, err = cli_link(idp, world, world.bob, IDP_SMTP_URL=nowhere)
    assert code == 0 and path, err
    # Recovering a member's access does not wait for mail; the notice still goes out later.
    home = use_link(Browser(app.test_client()), world, path)
    assert home.status == 200 and world.bob in home.text
    assert outbox_states(app, world, world.bob) == ["pending"]


# -- the setting on the console's policy page --------------------------------------------------

def test_the_policy_page_has_the_setting_beside_its_label_and_saves_it(app, world):
    browser = admin_browser(app, world)
    page = browser.get(f"/t/{world.slug}/admin/policy").text
    box = re.search(r'<div class="choice">\s*<input type="checkbox" id="admin_login_links" '
                    r'name="admin_login_links" value="on"([^>]*)>\s*'
                    r'<label for="admin_login_links">([^<]+)</label>\s*'
                    r'<p class="muted" id="admin_login_links-help">([^<]+)</p>', page)
    assert box, "the checkbox is not drawn like the page's others"
    assert "checked" not in box.group(1)
    assert "administrators" in box.group(2)
    assert "without their password" in box.group(3)  # the risk, in plain words

    form = {"csrf_token": field(CSRF, page), "mode": "optional", "scope": "everyone",
            "factors": [f.alias or f.type for f in mfa.ordered()],  # as a new tenant allows
            "roles_allowed": ["admin", "mfa-admin", "member"], "self_disable": "on",
            "login_token_bypass": "on", "grace_skips": "", "grace_days": "",
            "captcha_after": "3", "lock_after": "5", "lock_minutes": "60",
            "admin_login_links": "on"}
    done = browser.post(f"/t/{world.slug}/admin/policy", form)
    assert done.status == 302, done.text[-2000:]
    after = browser.get(done.location).text
    assert "sign-in links for administrators: off → on" in after
    assert re.search(r'id="admin_login_links"[^>]*\schecked', after)
    [changed] = events(app, world, "policy.changed")
    assert changed.actor == world.admin and changed.data["changes"] == {"admin_login_links": True}


def test_the_console_says_an_administrators_link_waits_for_its_mail(app, settings, idp, world):
    boss = add_user(app, world, BOSS, "admin")
    allow_admin_links(idp, world, True)
    with app_mailing_to(settings, f"smtp://127.0.0.1:{free_port()}") as cut_off:
        page = console_link(admin_browser(cut_off, world), world, boss)
        path = re.sub(r"^https?://[^/]+", "",
                      re.search(r'<code id="login-token-url">([^<]+)</code>', page.text).group(1))
        assert use_link(Browser(cut_off.test_client()), world, path).status == 409
    assert page.status == 200 and 'id="login-token-waits"' in page.text
    assert f"starts working once {BOSS} has been mailed about it" in " ".join(page.text.split())
    assert "SMTP" not in page.text and links_of(app, boss) == 1
