"""Every message a person can read is translated into every language we ship (issue 21): the
English text is extracted from the code and templates exactly as ``make messages`` does
(``babel/<area>.cfg``), and each language's catalog for that area must hold every one of
them, translated, not marked fuzzy, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from idp import i18n

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None,
            "lazy_ngettext": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%[sd]")


def _extracted(area: str) -> dict[str, tuple]:
    with (ROOT / "babel" / f"{area}.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        key = message[0] if isinstance(message, tuple) else message
        found[key] = (filename, message)
    found.pop("", None)
    return found


@pytest.fixture(scope="module", params=i18n.DOMAINS)
def area(request):
    return request.param, _extracted(request.param)


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != i18n.SOURCE])
def test_every_message_is_translated(area, lang):
    name, extracted = area
    with (i18n.CATALOGS / lang / "LC_MESSAGES" / f"{name}.po").open("rb") as f:
        catalog = read_po(f, locale=lang)
    missing, fuzzy, empty, placeholders = [], [], [], []
    for msgid, (filename, message) in sorted(extracted.items()):
        entry = catalog.get(message if isinstance(message, str) else message[0])
        if entry is None:
            missing.append(f"{filename}: {msgid!r}")
            continue
        if entry.fuzzy:
            fuzzy.append(msgid)
        strings = entry.string if isinstance(entry.string, (list, tuple)) else [entry.string]
        if not all(s.strip() for s in strings):
            empty.append(msgid)
            continue
        wanted = sorted(PLACEHOLDER.findall(msgid))
        for s in strings:
            if sorted(PLACEHOLDER.findall(s)) != wanted:
                placeholders.append(f"{msgid!r} -> {s!r}")
    assert not missing, f"{lang}/{name}.po lacks (run `make messages`): " + "; ".join(missing[:20])
    assert not empty, f"{lang}/{name}.po has no translation for: " + "; ".join(empty[:20])
    assert not fuzzy, f"{lang}/{name}.po marks as fuzzy: " + "; ".join(fuzzy[:20])
    assert not placeholders, f"{lang}/{name}.po changes placeholders: " + "; ".join(placeholders[:20])


def test_a_language_the_browser_prefers_is_spoken(app, client, world):
    page = client.get(f"/t/{world.slug}/login", headers={"Accept-Language": "de-AT,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in page.get_data(as_text=True)


def test_the_switcher_choice_outlasts_the_browser_preference(app, client, world):
    chosen = client.get(f"/t/{world.slug}/login?lang=fr", headers={"Accept-Language": "de"})
    assert '<html lang="fr">' in chosen.get_data(as_text=True)
    assert any(c.startswith("idp_lang=fr;") for c in chosen.headers.getlist("Set-Cookie"))
    later = client.get(f"/t/{world.slug}/login", headers={"Accept-Language": "de"})
    assert '<html lang="fr">' in later.get_data(as_text=True)


def test_an_unknown_language_falls_back_to_english(app, client, world):
    page = client.get(f"/t/{world.slug}/login?lang=xx", headers={"Accept-Language": "ja"})
    assert '<html lang="en">' in page.get_data(as_text=True)
    assert "idp_lang" not in page.headers.get("Set-Cookie", "")


@pytest.mark.parametrize("lang", [code for code in i18n.LANGUAGES if code != i18n.SOURCE])
def test_a_message_of_two_areas_reads_the_same_in_both(lang):
    """The areas' catalogs are merged into one at run time: a message both hold must say the
    same, or which one a page shows would depend on the merge order."""
    seen, differ = {}, []
    for name in i18n.DOMAINS:
        with (i18n.CATALOGS / lang / "LC_MESSAGES" / f"{name}.po").open("rb") as f:
            for message in read_po(f, locale=lang):
                if not message.id or not message.string:
                    continue
                key = message.id if isinstance(message.id, str) else tuple(message.id)
                text = message.string if isinstance(message.string, str) else tuple(message.string)
                if key in seen and seen[key][1] != text:
                    differ.append(f"{key!r}: {seen[key][0]} {seen[key][1]!r}, {name} {text!r}")
                seen.setdefault(key, (name, text))
    assert not differ, f"{lang}: " + "; ".join(differ[:10])


def test_the_switcher_links_stay_on_this_page(app, client):
    """A path that a browser would read as another site's (``/\\evil.example``) never becomes
    a language link: each link is this page with another ``lang``."""
    html = client.get("/%5Cevil.example/x?a=1", headers={"Accept-Language": "de"}).get_data(as_text=True)
    links = re.findall(r'<a href="([^"]*)"[^>]*hreflang=', html)
    assert links and all(link.startswith("?") and "evil" not in link for link in links), links
    assert "?a=1&amp;lang=fr" in html


def test_programs_read_english_and_a_tenant_called_api_reads_its_language(app):
    for path, lang in [("/t/api/login", "de"), ("/t/scim/account", "de"),
                       ("/t/acme/api/v1/users", "en"), ("/t/acme/scim/v2/Users", "en")]:
        with app.test_request_context(path, headers={"Accept-Language": "de"}):
            assert i18n.choose() == lang, path


def test_the_choice_is_remembered_only_by_a_page(app, client, world):
    css = client.get(f"/t/{world.slug}/branding.css?lang=de")
    assert not any(c.startswith("idp_lang=") for c in css.headers.getlist("Set-Cookie"))
