"""Mail speaks the language of the page that caused it (a reset or a lockout asked for from a
German page arrives in German, subject included), English otherwise; its dates are written
the reader's way, always saying UTC."""

from __future__ import annotations

import re
from datetime import datetime, timezone

from sqlalchemy import select

from idp import branding, db, directory
from idp.models import OutboxMessage
from idp.notify import outbox
from tests.support.journey import CSRF, Browser, field
from tests.support.mailbox import mailing_app, smtp_mailbox
from tests.support.account import answer_challenge, password_sign_in
from tests.support.console import sign_in_to_console
from tests.support.signin import fail_until_locked, set_policy


def kept(app, world, to: str, kind: str) -> list[OutboxMessage]:
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        found = db.session().scalars(select(OutboxMessage).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.recipient == to,
            OutboxMessage.kind == kind).order_by(OutboxMessage.id)).all()
        db.session().expunge_all()
        return found


def ask_for_reset(browser: Browser, world, email: str, lang: str | None = None):
    page = browser.get(f"/t/{world.slug}/login/forgot", {"lang": lang} if lang else None)
    return browser.post(f"/t/{world.slug}/login/forgot",
                        {"csrf_token": field(CSRF, page.text), "tx": "", "email": email})


def test_a_reset_asked_for_from_a_german_page_arrives_in_german(app, world):
    ask_for_reset(Browser(app.test_client()), world, world.alice, lang="de")
    [mail] = kept(app, world, world.alice, "reset")
    assert mail.subject == f"Ihr Tenant {world.slug}-Passwort zurücksetzen"
    assert mail.body.startswith("Hallo Alice,")
    assert "öffnen Sie diesen Link innerhalb von 30 Minuten" in mail.body
    assert "Neues Passwort wählen" in mail.html and '<html lang="de">' in mail.html
    assert "/login/reset/" in mail.body  # the link is there, whatever the language


def test_a_reset_asked_for_from_an_english_page_stays_english(app, world):
    ask_for_reset(Browser(app.test_client()), world, world.alice)
    [mail] = kept(app, world, world.alice, "reset")
    assert mail.subject == f"Reset your Tenant {world.slug} password"
    assert mail.body.startswith("Hello Alice,")
    assert "open this link within 30 minutes" in mail.body
    assert "Choose a new password" in mail.html and '<html lang="en">' in mail.html


def test_a_lockout_from_a_german_page_reaches_the_mailbox_in_german(app, settings, world):
    with smtp_mailbox() as box, mailing_app(settings, box.url) as mailing:
        german, english = mailing.test_client(), mailing.test_client()
        german.get(f"/t/{world.slug}/login?lang=de")  # the switcher: remembered in a cookie
        fail_until_locked(german, world, world.alice)
        [mail] = box.wait_for(world.alice, world)
        fail_until_locked(english, world, world.admin)
        [plain] = box.wait_for(world.admin, world)
    assert mail.subject.startswith(f"Ihr Tenant {world.slug}-Konto ist bis ")
    assert mail.subject.endswith(" UTC gesperrt")
    # "3. Dezember 2026, 10:05 UTC": the German way, in UTC and saying so.
    when = re.search(r"bis (\d{1,2}\. \w+ \d{4}, \d\d:\d\d UTC) gesperrt", mail.subject).group(1)
    assert when in mail.text and f"<strong>{when}</strong>" in mail.html
    assert "Es gab zu viele fehlgeschlagene Anmeldeversuche" in mail.text
    assert "Hello" not in mail.text and "locked" not in mail.text
    assert plain.subject.startswith(f"Your Tenant {world.slug} account is locked until ")
    assert re.search(r"locked until \w+ \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M UTC\.", plain.text)


def test_mail_is_composed_in_the_language_it_is_given_and_english_outside_a_request():
    ends = datetime(2026, 12, 3, 10, 5, tzinfo=timezone.utc)
    facts = {**branding.mail_context(None, None, "Acme", None), "name": "Carol",
             "email": "carol@example.com", "ends": ends, "copy": False}
    assert outbox.compose("lockout", **facts).subject == \
        "Your Acme account is locked until December 3, 2026, 10:05 AM UTC"
    assert outbox.compose("lockout", locale="fr", **facts).subject == \
        "Votre compte Acme est bloqué jusqu'au 3 décembre 2026, 10:05 UTC"
    spanish = outbox.compose("lockout", locale="es-MX", **facts)
    assert spanish.subject == "Su cuenta de Acme está bloqueada hasta el 3 de diciembre de 2026, 10:05 UTC"
    assert spanish.text.startswith("Hola, Carol:")
    # A language we do not ship is English.
    assert outbox.compose("lockout", locale="xx", **facts).subject.startswith("Your Acme account")


# -- the recipient's own language (``User.locale``) -------------------------------------------

def locale_of(app, world, email: str) -> str | None:
    with app.app_context():
        return directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug),
                                   email).locale


def set_locale(app, world, email: str, lang: str | None) -> None:
    with app.app_context():
        session = db.session()
        directory.find_user(session, directory.get_tenant(session, world.slug), email).locale = lang
        session.commit()


def console_in(app, world, lang: str, email: str | None = None) -> Browser:
    """A browser whose person chose ``lang`` with the switcher, then signed in to the console."""
    browser = Browser(app.test_client())
    browser.get(f"/t/{world.slug}/login", {"lang": lang})
    return sign_in_to_console(browser, world, email)


def test_who_signed_in_on_a_german_page_gets_german_mail_asked_for_from_an_english_page(app, world):
    assert locale_of(app, world, world.admin) is None
    first = console_in(app, world, "de")
    assert locale_of(app, world, world.admin) == "de"
    ask_for_reset(Browser(app.test_client()), world, world.admin)  # an English page
    [mail] = kept(app, world, world.admin, "reset")
    assert mail.subject == f"Ihr Tenant {world.slug}-Passwort zurücksetzen"
    assert '<html lang="de">' in mail.html
    # Signing in on an English page later: English from then on.
    again = Browser(app.test_client())
    again.get(f"/t/{world.slug}/login", {"lang": "en"})
    page = password_sign_in(again, world, world.admin)
    again.follow(answer_challenge(again, world, page, "backup", code=first.codes[0]), "\0")
    assert locale_of(app, world, world.admin) == "en"
    ask_for_reset(Browser(app.test_client()), world, world.admin, lang="fr")
    assert kept(app, world, world.admin, "reset")[-1].subject == \
        f"Reset your Tenant {world.slug} password"


def test_the_language_chosen_on_the_account_page_is_the_mails(app, world):
    browser = console_in(app, world, "en")
    assert browser.get(f"/t/{world.slug}/account", {"lang": "es"}).status == 200
    assert locale_of(app, world, world.admin) == "es"
    ask_for_reset(Browser(app.test_client()), world, world.admin, lang="de")
    [mail] = kept(app, world, world.admin, "reset")
    assert mail.subject == f"Restablecer su contraseña de Tenant {world.slug}"


def test_each_admin_reads_a_lockout_copy_in_their_own_language_not_the_attackers(app, world):
    set_policy(app, world, lock_email_admins=True)
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        directory.create_user(session, app.extensions["idp.passwords"], tenant,
                              "boss@example.com", "a long admin password", role="admin")
        session.commit()
    set_locale(app, world, world.admin, "fr")
    attacker = app.test_client()
    attacker.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es"
    fail_until_locked(attacker, world, world.alice)
    [own] = kept(app, world, world.alice, "lockout")  # no language of her own yet: the page's
    assert own.subject.startswith(f"Su cuenta de Tenant {world.slug} está bloqueada hasta el ")
    [french] = kept(app, world, world.admin, "lockout")
    assert french.subject.startswith(f"Votre compte Tenant {world.slug} est bloqué jusqu'au ")
    assert '<html lang="fr">' in french.html
    # An admin who never said: English, never the language the failing browser asked for.
    [plain] = kept(app, world, "boss@example.com", "lockout")
    assert plain.subject.startswith(f"Your Tenant {world.slug} account is locked until ")


def test_an_invitation_speaks_the_consoles_language_and_a_resend_the_invitees(app, world, idp):
    browser = console_in(app, world, "de")
    page = browser.get(f"/t/{world.slug}/admin/users")
    browser.post(f"/t/{world.slug}/admin/users/invite",
                 {"csrf_token": field(CSRF, page.text), "email": "dora.new@example.com",
                  "name": "Dora", "role": "member", "groups": ""})
    [german] = kept(app, world, "dora.new@example.com", "invite")  # nobody's language yet
    assert german.subject == f"Sie sind zu Tenant {world.slug} eingeladen"
    set_locale(app, world, "dora.new@example.com", "es")
    code, _, err = idp("user", "invite", world.slug, "dora.new@example.com")
    assert code == 0, err
    spanish = kept(app, world, "dora.new@example.com", "invite")[-1]
    assert spanish.subject == f"Le han invitado a Tenant {world.slug}"
    # From the command line to someone with no language of their own: English.
    code, _, err = idp("user", "invite", world.slug, "erin.new@example.com")
    assert code == 0, err
    [english] = kept(app, world, "erin.new@example.com", "invite")
    assert english.subject == f"You are invited to Tenant {world.slug}"
