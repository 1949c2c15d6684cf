"""Pwned Passwords' range API, against a local server in its shape: a hit is refused, padding
is no hit, only a five-digit hash prefix leaves us, and a service that cannot answer lets the
password through with a warning (fail open) that gives nothing away."""

from __future__ import annotations

import logging

import pytest

from idp import pwned_passwords
from idp.password_policy import BREACHED, COMMON, problem
from tests.support.ports import free_port
from tests.support.pwned import FakePwnedPasswords, sha1_hex

LEAKED = "violet-tandem-quorum-51"  # not on the shipped list; the fake says it leaked


@pytest.fixture
def service():
    with FakePwnedPasswords({LEAKED: 3}) as fake:
        yield fake


def test_a_password_the_service_has_seen_is_refused(service):
    assert pwned_passwords.times_seen(service.url, LEAKED) == 3
    assert problem(LEAKED, pwned_url=service.url) == BREACHED
    assert "data breach" in BREACHED and "Choose another" in BREACHED


def test_only_the_five_digit_prefix_is_sent_and_padding_is_asked_for(service):
    problem(LEAKED, pwned_url=service.url)
    [sent] = service.requests
    digest = sha1_hex(LEAKED)
    assert sent["path"] == f"/range/{digest[:5]}"
    assert sent["headers"]["Add-Padding"] == "true"
    assert digest[5:] not in str(sent) and LEAKED not in str(sent)


def test_a_password_it_has_not_seen_is_accepted_among_padding_lines(service):
    assert service.padding > 0
    assert pwned_passwords.times_seen(service.url, "ochre glacier fjord 1987") == 0
    assert problem("ochre glacier fjord 1987", pwned_url=service.url) is None


def test_a_padding_line_with_the_passwords_own_suffix_is_no_hit(service):
    suffix = sha1_hex(LEAKED)[5:]
    service.body = f"{'A' * 35}:12\r\n{suffix}:0\r\n{'B' * 35}:0".encode()
    assert pwned_passwords.times_seen(service.url, LEAKED) == 0
    assert problem(LEAKED, pwned_url=service.url) is None


def test_the_shipped_list_is_asked_first_and_a_refused_password_is_never_sent(service):
    assert problem("password1", pwned_url=service.url) == COMMON
    assert problem("short", pwned_url=service.url) == "Use at least 8 characters."
    assert service.requests == []


def test_a_trailing_slash_on_the_setting_changes_nothing(service):
    assert problem(LEAKED, pwned_url=service.url + "/") == BREACHED
    assert service.requests[0]["path"].startswith("/range/")


def broken(service, status=200, answer=None):
    service.status = status
    service.body = answer


@pytest.mark.parametrize("status, answer, reason", [
    (503, b"", "answered HTTP 503"),
    (302, b"", "answered HTTP 302"),  # a redirect is not followed
    (200, b"<html>maintenance</html>", "not SUFFIX:COUNT"),
    (200, "\u00e9t\u00e9".encode(), "not plain text"),
    (200, b"A" * (pwned_passwords.MAX_ANSWER + 1), "too long"),
])
def test_an_answer_it_cannot_read_lets_the_password_through_with_a_warning(
        service, caplog, status, answer, reason):
    broken(service, status, answer)
    with pytest.raises(pwned_passwords.Unavailable, match=reason):
        pwned_passwords.times_seen(service.url, LEAKED)
    with caplog.at_level(logging.WARNING, logger="idp.password_policy"):
        assert problem(LEAKED, pwned_url=service.url) is None  # fail open
    [warning] = [r for r in caplog.records if r.name == "idp.password_policy"]
    assert reason in warning.getMessage()
    assert_nothing_given_away(warning.getMessage())


def test_a_service_that_is_down_lets_the_password_through_with_a_warning(caplog):
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(pwned_passwords.Unavailable, match="could not be reached"):
        pwned_passwords.times_seen(nobody, LEAKED)
    with caplog.at_level(logging.WARNING, logger="idp.password_policy"):
        assert problem(LEAKED, pwned_url=nobody) is None
    [warning] = [r for r in caplog.records if r.name == "idp.password_policy"]
    assert "could not be reached" in warning.getMessage()
    assert_nothing_given_away(warning.getMessage())


def assert_nothing_given_away(line: str) -> None:
    digest = sha1_hex(LEAKED)
    assert LEAKED not in line and digest[:5] not in line and digest[5:] not in line
