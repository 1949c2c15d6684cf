"""The console speaks the admin's language (issue 21): German from the browser's
Accept-Language or from the language switcher (``?lang=de``, remembered), with German
navigation, headings, confirmations, flash messages and dates; English stays the default."""

from __future__ import annotations

import html
import json
import re

from joserfc.jwk import ECKey, OctKey

from tests.integration.test_console_policy import form_of, url
from tests.support.console import admin_browser, user_id_of
from tests.support.journey import CSRF, field


def german(browser) -> None:
    """From here on the browser asks for German pages, as a German Chromium does."""
    browser.http.environ_base["HTTP_ACCEPT_LANGUAGE"] = "de-DE,de;q=0.9,en;q=0.5"


def nav(page_text: str) -> list[str]:
    block = re.search(r'<nav aria-label="[^"]*">\s*<ul>(.*?)</ul>', page_text, re.S).group(1)
    return re.findall(r">([^<]+)</a>", block)


def test_the_users_list_policy_and_user_pages_speak_german(app, world):
    browser = admin_browser(app, world)
    german(browser)

    users = browser.get(f"/t/{world.slug}/admin/users")
    assert users.status == 200
    assert '<html lang="de">' in users.text
    assert "<h1>Benutzer</h1>" in users.text
    assert nav(users.text)[:3] == ["Benutzer", "Richtlinie", "Gruppen"]
    assert "Audit-Protokoll" in nav(users.text)
    assert "Bestätigung in zwei Schritten" in users.text  # the column and the filter
    assert "Jemanden einladen" in users.text
    # The confirmation dialog's buttons and an action's question, for console.js to show.
    assert ">Bestätigen</button>" in users.text and ">Abbrechen</button>" in users.text
    assert "Users" not in re.sub(r"<[^>]+>", " ", users.text).split()  # no English heading left

    policy = browser.get(f"/t/{world.slug}/admin/policy")
    assert policy.status == 200 and '<html lang="de">' in policy.text
    assert "<h1>Anmelderichtlinie</h1>" in policy.text
    assert "<legend>Für wen die Richtlinie gilt</legend>" in policy.text
    assert "Richtlinie speichern" in policy.text
    assert 'aria-current="page">Richtlinie</a>' in policy.text

    user_id = user_id_of(browser, world, world.alice)
    user = browser.get(f"/t/{world.slug}/admin/users/{user_id}")
    assert user.status == 200
    assert "<h2>Anmeldemethoden</h2>" in user.text
    assert "Letzte Anmeldungen, Sperren und Kontoänderungen" in user.text
    assert ("Bestätigung in zwei Schritten für " + world.alice + " einschalten? Die Person richtet "
            "sie bei der nächsten Anmeldung ein und kann sie nicht ausschalten.") in user.text


def test_an_action_is_confirmed_by_a_german_flash_message(app, world):
    browser = admin_browser(app, world)
    german(browser)
    user_id = user_id_of(browser, world, world.alice)
    page = browser.get(f"/t/{world.slug}/admin/users/{user_id}")
    back = f"/t/{world.slug}/admin/users/{user_id}"
    done = browser.post(f"/t/{world.slug}/admin/users/{user_id}/enforce",
                        {"csrf_token": field(CSRF, page.text), "back": back})
    assert done.status == 302
    shown = browser.get(back)
    assert (f'<p class="notice" role="status">Die Bestätigung in zwei Schritten ist für '
            f'{world.alice} eingeschaltet.</p>') in shown.text
    # The admin's own sign-ins are listed with times as Germans write them (03.12.2026, 14:05).
    own = browser.get(f"/t/{world.slug}/admin/users/{user_id_of(browser, world, world.admin)}")
    assert re.search(r"<time [^>]*>\d{2}\.\d{2}\.\d{4}, \d{2}:\d{2}</time> user.signed_in", own.text)


def test_a_policy_error_is_german(app, world):
    browser = admin_browser(app, world)
    german(browser)
    page = browser.get(f"/t/{world.slug}/admin/policy")
    refused = browser.post(f"/t/{world.slug}/admin/policy", {
        "csrf_token": field(CSRF, page.text), "mode": "optional", "scope": "everyone",
        "captcha_after": "5", "lock_after": "10", "lock_minutes": "15"})
    assert refused.status == 400
    assert "Nicht gespeichert: Wählen Sie mindestens eine erlaubte Methode." in refused.text


def test_the_language_switcher_is_remembered_and_english_stays_the_default(app, world):
    browser = admin_browser(app, world)
    english = browser.get(f"/t/{world.slug}/admin/users")
    assert '<html lang="en">' in english.text and "<h1>Users</h1>" in english.text

    chosen = browser.get(f"/t/{world.slug}/admin/policy?lang=de")
    assert "<h1>Anmelderichtlinie</h1>" in chosen.text
    later = browser.get(f"/t/{world.slug}/admin/groups")  # no ?lang: the cookie remembers
    assert '<html lang="de">' in later.text and "<h1>Gruppen</h1>" in later.text


def test_the_saved_summary_names_modes_whom_and_dates_in_german(app, world):
    """"Gespeichert." says what changed in the admin's words: the mode's German name, whom it
    covers, never the stored values (optional, selected, mfa-admin)."""
    browser = admin_browser(app, world)
    german(browser)
    page = browser.get(url(world)).text
    data = form_of(page, mode="required", scope="everyone", grace_days="14",
                   factors=["webauthn", "totp"], roles_allowed=["admin", "mfa-admin", "member"])
    done = browser.post(url(world), data)
    assert done.status == 302, done.text[:2000]
    after = browser.get(done.location).text
    notice = html.unescape(re.search(r'<p class="notice" role="status">(.*?)</p>', after, re.S).group(1))
    assert "Optional → Verlangt" in notice, notice
    assert "optional" not in notice.replace("Optional", "") and "required" not in notice


def test_why_public_keys_are_refused_is_said_in_german(app, world):
    """The reason (``idp.jwks``) is part of the console's German sentence, not English in it."""
    browser = admin_browser(app, world)
    german(browser)
    portal = f"/t/{world.slug}/admin/portals/{world.service.client_id}"

    def save_keys(document: dict):
        page = browser.get(portal).text
        return browser.post(portal, {"csrf_token": field(CSRF, page), "name": "Service",
                                  "redirect_uris": "", "post_logout_redirect_uris": "",
                                  "min_acr": "", "proof": "key", "jwks": json.dumps(document),
                                  "jwks_uri": ""})

    refused = save_keys({"keys": [OctKey.generate_key(256).as_dict()]})
    assert refused.status == 400 and '<html lang="de">' in refused.text
    assert ("Die öffentlichen Schlüssel werden abgelehnt: Schlüssel 1 ist ein symmetrischer "
            "Schlüssel (kty oct): geben Sie nur öffentliche Schlüssel an") in html.unescape(refused.text)
    private = ECKey.generate_key("P-256", parameters={"kid": "k1"}).as_dict(private=True)
    refused = save_keys({"keys": [private]})
    assert refused.status == 400
    assert ("Die öffentlichen Schlüssel werden abgelehnt: Schlüssel 1 ('k1') enthält einen "
            "privaten Teil (d): geben Sie nur die öffentlichen Schlüssel an und erzeugen Sie ein "
            "neues Schlüsselpaar") in html.unescape(refused.text)
