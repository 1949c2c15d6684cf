"""The pages a person meets when a sign-in cannot go on (issue 21, point 6): each says what
happened in plain words and what to do, in the person's language, keeps the technical detail
small, and keeps its 4xx/5xx status; bad input is never a 500. And the forms' accessibility
conventions: a refused field is marked invalid, described by its message, and focused."""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from urllib.parse import urlencode

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from idp import create_app
from tests.support.journey import CSRF, TX, field
from tests.support.rp import params_for
from tests.support.signin import fail_until_locked, set_policy


def page(client, url, **headers):
    r = client.get(url, headers=headers)
    return r.status_code, r.headers.get("Location"), r.get_data(as_text=True)


def heading(html: str) -> str:
    return re.search(r"<h1>(.*?)</h1>", html, re.S).group(1).strip()


def authorize_url(world, **params):
    return f"/t/{world.slug}/authorize?" + urlencode(params_for(world.portal, **params))


def test_an_unknown_organisation_is_a_404_that_says_so_in_the_browser_language(client):
    status, _, html = page(client, "/t/no-such-organisation/login", **{"Accept-Language": "de"})
    assert status == 404 and '<html lang="de">' in html
    assert heading(html) == "Nicht gefunden"
    assert "Diese Organisation gibt es hier nicht. Prüfen Sie die Adresse." in html
    assert "gehen Sie zurück zur Anwendung" in html  # what to do


def test_a_page_that_is_not_there_speaks_the_chosen_language(client, world):
    status, _, html = page(client, f"/t/{world.slug}/no-such-page?lang=fr")
    assert status == 404 and heading(html) == "Introuvable"
    assert "Cette page n'existe pas ici." in html.replace("&#39;", "'")
    assert "Not Found" not in html and "requested URL" not in html  # not Werkzeug's English


def test_an_unknown_application_is_explained_without_a_redirect_in_ui_locales(client, world):
    status, location, html = page(client, authorize_url(world, client_id="no-such-client",
                                                        ui_locales="de"))
    assert status == 400 and location is None
    assert '<html lang="de">' in html and heading(html) == "Unbekannte Anwendung"
    assert "ist bei dieser Organisation nicht registriert" in html
    assert "Gehen Sie zurück zur Anwendung und versuchen Sie es noch einmal." in html
    message = re.search(r'<p role="alert" id="error-message">(.*?)</p>', html, re.S).group(1)
    assert "invalid_client" not in message and "client_id" not in message  # no OAuth words
    assert 'id="error-detail"' in html  # the detail, small and last, for the app's support


def test_a_redirect_uri_mismatch_stops_here_and_says_why_in_french(client, world):
    status, location, html = page(client, authorize_url(
        world, redirect_uri="https://evil.test/callback", ui_locales="fr-CA fr"))
    assert status == 400 and location is None and "evil.test" not in (location or "")
    text = html.replace("&#39;", "'")
    assert heading(text) == "Ce lien de connexion n'est pas autorisé"
    assert "nous nous sommes arrêtés ici pour vous protéger" in text
    assert "Revenez à l'application et réessayez." in text


def test_a_request_that_cannot_be_read_is_a_friendly_400_in_spanish(client, world):
    url = authorize_url(world, client_id="no-such-client", ui_locales="es") + "&scope=openid"
    status, location, html = page(client, url)
    assert status == 400 and location is None
    assert heading(html) == "Este enlace de inicio de sesión está dañado"
    assert "una solicitud de inicio de sesión que no podemos leer" in html
    assert "Vuelva a la aplicación e inténtelo de nuevo." in html


@pytest.mark.parametrize("lang, title, again", [
    ("en", "This sign-in has expired", "Sign in here instead"),
    ("de", "Diese Anmeldung ist abgelaufen", "Stattdessen hier anmelden"),
])
def test_an_expired_sign_in_offers_a_way_to_start_again(client, world, lang, title, again):
    status, _, html = page(client, f"/t/{world.slug}/authorize/resume?tx=gone&lang={lang}")
    assert status == 400 and heading(html) == title
    link = re.search(r'<a class="button" id="start-again" href="([^"]+)">(.*?)</a>', html)
    assert link and link.group(2) == again
    assert link.group(1).startswith(f"/t/{world.slug}/login")
    assert client.get(link.group(1)).status_code == 200  # the way back works


def test_the_lock_page_is_in_german_with_the_time_written_the_german_way(client, world):
    client.set_cookie("idp_lang", "de")
    locked = fail_until_locked(client, world, world.alice)
    html = locked.get_data(as_text=True)
    assert locked.status_code == 429 and heading(html) == "Konto vorübergehend gesperrt"
    assert re.search(r"deshalb ist dieses Konto bis <time [^>]*data-your-time=\"Ihre Zeit\""
                     r"[^>]*>\d\d:\d\d UTC</time> gesperrt", html)


def test_sign_in_while_the_store_is_down_is_a_translated_503(client, world, monkeypatch):
    from idp.journey import transaction

    def down(*args, **kwargs):
        raise RedisConnectionError("down")

    monkeypatch.setattr(transaction, "pending", down)
    r = client.get(f"/t/{world.slug}/login", headers={"Accept-Language": "es"})
    html = r.get_data(as_text=True)
    assert r.status_code == 503 and r.headers["Retry-After"] == "30"
    assert heading(html) == "El inicio de sesión no está disponible temporalmente"


def test_too_many_failed_sign_ins_from_a_network_is_a_translated_429(settings, world):
    app = create_app(replace(settings, ip_failures_per_10_minutes=3), TESTING=True)
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"
    try:
        for i in range(4):
            login = client.get(f"/t/{world.slug}/login?lang=fr").get_data(as_text=True)
            r = client.post(f"/t/{world.slug}/login", data={
                "csrf_token": field(CSRF, login), "tx": field(TX, login),
                "email": f"nobody{i}@example.com", "password": "wrong password"})
        html = r.get_data(as_text=True).replace("&#39;", "'")
        assert r.status_code == 429 and heading(html) == "Trop de tentatives"
        assert "Il y a eu trop de connexions échouées depuis votre réseau." in html
    finally:
        app.extensions["idp.engine"].dispose()


@pytest.mark.parametrize("query", [
    "ui_locales=" + "de-" * 200,
    "ui_locales=%00de",
    "lang=%3Cscript%3E",
    "lang=de&lang=fr&ui_locales=xx-YY",
    "ui_locales=de&client_id=%F0%9F%92%A5",
])
def test_odd_language_input_is_never_a_500(client, world, query):
    for path in ("/login", "/authorize", "/authorize/resume", "/consent"):
        r = client.get(f"/t/{world.slug}{path}?{query}")
        assert 200 <= r.status_code < 500, (path, query, r.status_code)
        assert b"<script>" not in r.data


# -- focus moves to the error ----------------------------------------------------------------

def test_a_wrong_password_focuses_the_password_and_is_announced(client, world):
    login = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    r = client.post(f"/t/{world.slug}/login", data={
        "csrf_token": field(CSRF, login), "tx": field(TX, login), "email": world.alice,
        "password": "not the password"})
    html = r.get_data(as_text=True)
    assert '<p class="error" role="alert" id="login-error">' in html
    password = re.search(r'<input [^>]*id="password"[^>]*>', html).group(0)
    email = re.search(r'<input [^>]*id="email"[^>]*>', html).group(0)
    assert "autofocus" in password and "autofocus" not in email
    assert 'autocomplete="current-password"' in password and 'autocomplete="username' in email


def test_forgot_password_marks_the_address_that_is_missing(client, world):
    form = client.get(f"/t/{world.slug}/login/forgot").get_data(as_text=True)
    r = client.post(f"/t/{world.slug}/login/forgot", data={"csrf_token": field(CSRF, form),
                                                           "email": ""})
    html = r.get_data(as_text=True)
    email = re.search(r'<input [^>]*id="email"[^>]*>', html).group(0)
    assert r.status_code == 400
    assert 'aria-invalid="true"' in email and 'aria-describedby="forgot-error"' in email
    assert "autofocus" in email and 'id="forgot-error"' in html


def test_sign_up_focuses_the_field_it_refused(client, world, app):
    set_policy(app, world, self_registration=True)
    form = client.get(f"/t/{world.slug}/signup").get_data(as_text=True)
    email = re.search(r'<input [^>]*id="email"[^>]*>', form).group(0)
    assert 'autocomplete="email"' in email  # a new account's address, not a sign-in name
    r = client.post(f"/t/{world.slug}/signup", data={
        "csrf_token": field(CSRF, form), "name": "N", "email": "new@example.com",
        "password": "correct horse battery", "confirm": "correct horse battery!"})
    html = r.get_data(as_text=True)
    confirm = re.search(r'<input [^>]*id="confirm"[^>]*>', html).group(0)
    assert r.status_code == 400 and "The two passwords are not the same." in html
    assert 'aria-invalid="true"' in confirm and "autofocus" in confirm
    assert html.count("autofocus") == 1


def test_lazy_text_on_an_error_page_is_escaped_like_any_text(app, world):
    """A lazily translated message with a value in it (an upstream's name, an address) is
    still escaped: a lazy string would otherwise pass for markup."""
    from flask import g
    from flask_babel import lazy_gettext

    from idp.web import TENANTS, error_page

    with app.test_request_context(f"/t/{world.slug}/login"):
        g.tenant = TENANTS.get(world.slug, lambda: None)
        title = lazy_gettext("Not signed in with %(provider)s", provider="<b>Corp</b>")
        html, status = error_page(400, title, lazy_gettext("No account here"))
    assert status == 400 and "&lt;b&gt;Corp&lt;/b&gt;" in html and "<b>Corp</b>" not in html
