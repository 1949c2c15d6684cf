"""Security questions through the hosted pages: the catalogue on the setup page, five chosen
and answered, and the one question a sign-in asks."""

from __future__ import annotations

import html
import re

from tests.support.account import start_enrollment, submit_enrollment

OPTION = re.compile(r'<option value="(\d+)"[^>]*>([^<]+)</option>')
ASKED = re.compile(r'id="kba-question">([^<]+)</label>')
# Positions 2, 4, 6, 8, 10 of the catalogue, answered as a user would type them.
ANSWERS = ["Elm Street", "The Lion King", "Mrs Okafor", "Pancakes", "Lisbon"]


def catalogue(page) -> list[tuple[str, str]]:
    """(value, text) of the first of the five selects: every select offers the whole catalogue."""
    first = re.search(r'<select id="question-1".*?</select>', page.text, re.S)
    assert first, page.text[:2000]
    return [(value, html.unescape(text)) for value, text in OPTION.findall(first.group(0))]


def asked(page) -> str:
    m = ASKED.search(page.text)
    assert m, page.text[:2000]
    return html.unescape(m.group(1))


def chosen_form(options, answers=ANSWERS, picks=(1, 3, 5, 7, 9)) -> dict:
    form = {}
    for i, (pick, answer) in enumerate(zip(picks, answers), start=1):
        form[f"question_{i}"] = options[pick][0]
        form[f"answer_{i}"] = answer
    return form


def enroll(browser, world, answers=ANSWERS) -> dict[str, str]:
    """Enroll five questions from a signed-in browser; returns {question text: answer}."""
    page = start_enrollment(browser, world, "kba")
    options = catalogue(page)
    form = chosen_form(options, answers)
    done = submit_enrollment(browser, world, "kba", page, **form)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account"), done.text[:1000]
    return {options[p][1]: a for p, a in zip((1, 3, 5, 7, 9), answers)}
