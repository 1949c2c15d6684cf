"""The policy's sentences read as English everywhere a program reads them (logs, the CLI, the
admin API, tests), and in the reader's language on a page (``idp.i18n.say``)."""

from __future__ import annotations

import json
import pickle
from datetime import date

from idp import i18n
from idp.policy.words import Said, _, ngettext


def test_a_policy_sentence_is_its_english_text():
    text = _("Two-step verification is not available to the role %(role)s.", role="auditor")
    assert text == "Two-step verification is not available to the role auditor."
    assert json.dumps({"reason": text}) == '{"reason": "Two-step verification is not available to the role auditor."}'
    copied = pickle.loads(pickle.dumps(text))
    assert copied == text and not isinstance(copied, Said)


def test_numbers_and_dates_in_english():
    one = ngettext("wait (until %(date)s, %(num)d more skip)", "wait (until %(date)s, %(num)d more skips)",
                   1, date=date(2026, 12, 10))
    two = ngettext("wait (until %(date)s, %(num)d more skip)", "wait (until %(date)s, %(num)d more skips)",
                   2, date=date(2026, 12, 10))
    assert (one, two) == ("wait (until 2026-12-10, 1 more skip)", "wait (until 2026-12-10, 2 more skips)")


def test_a_page_says_it_in_its_language(app):
    reason = _("Signing in here needs %(need)s. Set one up now to continue.",
               need=_("a passkey or security key"))
    with app.test_request_context("/t/x/login", headers={"Accept-Language": "de"}):
        german = i18n.say(reason)
    with app.test_request_context("/t/x/login", headers={"Accept-Language": "en"}):
        english = i18n.say(reason)
    assert english == "Signing in here needs a passkey or security key. Set one up now to continue."
    assert german != english and "Passkey" in german and not isinstance(german, Said)


def test_a_template_shows_it_in_its_language(app):
    from flask import render_template_string

    reason = _("Two-step verification is off in this organisation.")
    with app.test_request_context("/t/x/login", headers={"Accept-Language": "fr"}):
        assert render_template_string("<p>{{ reason }}</p>", reason=reason) != f"<p>{reason}</p>"
    with app.test_request_context("/t/x/login", headers={"Accept-Language": "en"}):
        assert render_template_string("<p>{{ reason }}</p>", reason=reason) == f"<p>{reason}</p>"

