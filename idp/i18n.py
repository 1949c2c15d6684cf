"""The language of what a person reads: hosted pages, the console and mail (Flask-Babel).

- ``LANGUAGES``: what we ship. English is the source language (the text in the code); each
  other language has complete catalogs in ``idp/translations/<lang>/LC_MESSAGES/``, one per
  area (``DOMAINS``: the sign-in pages, the console, the account page and mail), extracted by
  the mapping files in ``babel/`` (``make messages``, docs/translations.md).
- Which language a page speaks (``choose``): the person's own choice on the language switcher
  (the ``idp_lang`` cookie, set by ``?lang=``), then the ``ui_locales`` of the portal's
  authorization request (OIDC Core 3.1.2.1), then the browser's ``Accept-Language``, then
  English. Machine answers (OAuth errors, the admin API, SCIM, client registration) stay
  English.
- Mail is composed outside Flask's request handling, in the language it is given
  (``translations(locale)``, ``mail_locale``).
- ``.mo`` files are built from the ``.po`` files (``compile_catalogs``) when the app starts and
  whenever a ``.po`` is newer: they are never committed, so they can never be stale.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import tempfile
from datetime import date, timezone
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from flask import Flask, current_app, g, has_request_context, request

from idp.policy.words import Said

log = logging.getLogger(__name__)

SOURCE = "en"
LANGUAGES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español"}
DOMAINS = ("hosted", "console", "account")
CATALOGS = Path(__file__).resolve().parent / "translations"
COOKIE = "idp_lang"
# The admin API, SCIM and dynamic client registration (RFC 7591/7592, whose refusals are
# OAuth error descriptions: US-ASCII): programs read them, in English (a tenant may be called
# "api").
MACHINE_PATH = re.compile(r"^/t/[^/]+/(api/|scim/|register(/|$))")
COOKIE_AGE = 365 * 24 * 3600


def supported(tag: str | None) -> str | None:
    """The language we ship for a BCP 47 tag (``de-AT`` -> ``de``), or None."""
    if not tag or not isinstance(tag, str) or len(tag) > 35:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return primary if primary in LANGUAGES else None


def first_supported(tags: str | None) -> str | None:
    """The first language we ship of a space-separated preference list (``ui_locales``)."""
    for tag in (tags or "")[:200].split():
        if lang := supported(tag):
            return lang
    return None


def choose() -> str:
    """The language of this request's page (Flask-Babel's locale selector). Outside a request
    (the CLI, a timer, a worker inside an app context) English: text for programs and logs."""
    if not has_request_context():
        return SOURCE
    if MACHINE_PATH.match(request.path):  # read by programs, not people
        return SOURCE
    chosen = supported(g.get("idp_lang_chosen")) or supported(request.cookies.get(COOKIE))
    if chosen:
        return chosen
    asked = first_supported(g.get("ui_locales")) or first_supported(request.args.get("ui_locales"))
    if asked:
        return asked
    return request.accept_languages.best_match(list(LANGUAGES), default=SOURCE)


def remember_choice() -> None:
    """``?lang=xx`` on any page: the switcher's links. Kept in ``g`` for this page and in a
    cookie (``remember_cookie``) for the next ones."""
    lang = supported(request.args.get("lang"))
    if lang:
        g.idp_lang_chosen = lang


def remember_cookie(response):
    lang = g.get("idp_lang_chosen")
    # Only on a page: never on a stylesheet or an image a cache may keep and hand to others.
    if lang and request.cookies.get(COOKIE) != lang and response.mimetype == "text/html":
        response.set_cookie(COOKIE, lang, max_age=COOKIE_AGE, path="/", httponly=True,
                            samesite="Lax", secure=current_app.config["IDP"].secure_cookies)
    return response


def asked_for(ui_locales: str | None) -> None:
    """The portal's ``ui_locales``, once the sign-in that carries it is loaded: the page speaks
    it unless the person chose a language themselves."""
    if ui_locales and g.get("ui_locales") != ui_locales:
        g.ui_locales = ui_locales
        from flask_babel import refresh
        refresh()


def switcher() -> list[dict]:
    """The language switcher's links: this page in each language we ship."""
    from flask_babel import get_locale

    current = str(get_locale() or SOURCE)
    args = request.args.to_dict(flat=False)
    links = []
    for code, name in LANGUAGES.items():
        query = {**args, "lang": [code]}
        links.append({"code": code, "name": name, "current": code == current,
                      "href": "?" + _query(query)})  # this page: never another site's
    return links


def _query(args: dict[str, list[str]]) -> str:
    from urllib.parse import urlencode

    return urlencode([(k, v) for k, values in args.items() for v in values])


def html_lang() -> str:
    from flask_babel import get_locale

    return str(get_locale() or SOURCE)


# -- catalogs ----------------------------------------------------------------------------------

def compile_catalogs(source: Path = CATALOGS) -> Path:
    """Build each ``.mo`` missing or older than its ``.po``; the folder Flask-Babel reads.
    Where the package is read-only, they are built in a folder of their own instead."""
    try:
        _compile_into(source, source)
        return source
    except OSError:
        target = Path(tempfile.gettempdir()) / f"idp-translations-{os.getuid()}"
        _compile_into(source, target)
        return target


def _compile_into(source: Path, target: Path) -> None:
    for po in sorted(source.glob("*/LC_MESSAGES/*.po")):
        mo = target / po.relative_to(source).with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            _write_mo(po, mo)


def _write_mo(po: Path, mo: Path) -> None:
    with po.open("rb") as f:
        catalog = read_po(f, locale=po.parent.parent.name, domain=po.stem)
    mo.parent.mkdir(parents=True, exist_ok=True)
    partial = mo.with_suffix(f".mo.{os.getpid()}")
    with partial.open("wb") as f:
        write_mo(f, catalog, use_fuzzy=False)
    os.replace(partial, mo)  # a worker reading it meanwhile sees the old one or the new one


@functools.lru_cache(maxsize=len(LANGUAGES) + 1)
def translations(locale: str) -> NullTranslations:
    """All of ``locale``'s catalogs merged (for mail, composed outside Flask-Babel)."""
    if supported(locale) in (None, SOURCE):
        return NullTranslations()
    folder = compile_catalogs()
    merged = Translations()
    for domain in DOMAINS:
        merged.merge(Translations.load(str(folder), [locale], domain))
    return merged


def say(value):
    """What a page shows of ``value``: a policy sentence (``idp.policy.words.Said``) in the
    page's language, anything else as it is. Every template output goes through it (Jinja's
    ``finalize``), so a decision's reason reads in German on a German page."""
    if not isinstance(value, Said) or html_lang() == SOURCE:
        return value
    from flask_babel import format_date, gettext, ngettext

    values = {}
    for key, v in value.values.items():
        values[key] = format_date(v, "medium") if isinstance(v, date) else say(v)
    if value.plural is not None:
        return ngettext(value.msgid, value.plural, value.n, **values)
    return gettext(value.msgid, **values)


def plain(value) -> str:
    """Text as a page shows it, plain (never markup): lazy text resolved, a policy sentence
    in the page's language. Jinja takes a lazy string for markup (it has ``__html__``) and
    would leave what was put into it, an address for one, unescaped."""
    return str(say(value))


def when(moment, part: str = "datetime") -> str:
    """A moment (UTC) as the page's language writes it: ``2026-12-03 12:44`` in English (the
    unambiguous form), ``03.12.2026, 12:44`` in German (Babel). ``part``: ``date``,
    ``datetime``, ``seconds`` or ``time`` (the hour alone)."""
    if moment is None:
        return ""
    lang = html_lang()
    if lang == SOURCE:
        return moment.strftime({"date": "%Y-%m-%d", "seconds": "%Y-%m-%d %H:%M:%S",
                                "time": "%H:%M"}.get(part, "%Y-%m-%d %H:%M"))
    from babel.dates import format_date, format_datetime as babel_datetime, format_time

    locale = Locale.parse(lang)
    if part == "date":
        return format_date(moment, "medium", locale=locale)
    if part == "time":
        return format_time(moment, "short", tzinfo=timezone.utc, locale=locale)
    if part == "seconds":
        return babel_datetime(moment, "medium", tzinfo=timezone.utc, locale=locale)
    pattern = locale.datetime_formats["short"].format(locale.time_formats["short"].pattern,
                                                      locale.date_formats["medium"].pattern)
    return babel_datetime(moment, pattern, tzinfo=timezone.utc, locale=locale)


def format_datetime(value, locale: str, fmt: str = "medium") -> str:
    """``value`` (an aware datetime) as a person of ``locale`` writes it, in UTC."""
    from babel.dates import format_datetime as babel_format

    return babel_format(value, fmt, tzinfo=None, locale=Locale.parse(supported(locale) or SOURCE))


def init_app(app: Flask) -> None:
    from flask_babel import Babel

    folder = compile_catalogs()
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", ";".join([str(folder)] * len(DOMAINS)))
    app.config.setdefault("BABEL_DOMAIN", ";".join(DOMAINS))
    Babel(app, locale_selector=choose)
    app.before_request(remember_choice)
    app.after_request(remember_cookie)
    app.jinja_env.globals.update(languages=switcher, html_lang=html_lang)
    app.jinja_env.finalize = say
