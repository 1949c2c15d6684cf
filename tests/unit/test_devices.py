"""A remembered browser is stored in English ("Firefox 133 on Windows 10", for the audit log
and programs) and named in the reader's language on a page (``idp.devices.in_words``)."""

from __future__ import annotations


def test_a_remembered_browser_is_named_in_the_readers_language(app):
    from idp.devices import in_words

    with app.test_request_context("/t/x/account", headers={"Accept-Language": "de"}):
        german = in_words("Unknown browser on unknown system")
        assert german != "Unknown browser on unknown system" and "Unbekannt" in german
        assert in_words("Firefox 133 on Windows 10") != "Firefox 133 on Windows 10"
        assert "Firefox 133" in in_words("Firefox 133 on Windows 10")
        assert in_words("") == "" and in_words("Something odd") == "Something odd"
    with app.test_request_context("/t/x/account", headers={"Accept-Language": "en"}):
        assert in_words("Firefox 133 on Windows 10") == "Firefox 133 on Windows 10"
