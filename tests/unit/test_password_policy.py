"""Which new passwords may be set (NIST SP 800-63B 5.1.1.2): length, the shipped list of common
and leaked passwords, the person's own address and the organisation's name, and the page's
words for each refusal."""

from __future__ import annotations

import fnmatch
import gzip
import secrets
import threading
import tomllib
from types import SimpleNamespace

import pytest

from idp import password_policy
from idp.password import Passwords
from idp.password_policy import COMMON, CONTROL, EMAIL, ORGANISATION, TOO_LONG, problem
from tests.support.paths import ROOT

ACME = SimpleNamespace(name="Acme Widgets", slug="acme")


def test_the_shipped_list_holds_at_least_100000_passwords():
    with gzip.open(password_policy.COMMON_LIST, "rt", encoding="utf-8") as lines:
        entries = {line.rstrip("\n") for line in lines} - {""}
    assert len(entries) >= 100_000
    # What is kept in memory: every entry a password of the minimum length could match.
    kept = password_policy.common_passwords()
    assert all(len(word) >= password_policy.MIN_LENGTH for word in kept)
    assert {password_policy.fold(e) for e in entries if len(e) >= 8} <= kept


@pytest.mark.parametrize("min_length, password, answer", [
    (8, "k3#Vq9z", "Use at least 8 characters."),
    (8, "k3#Vq9zP", None),
    (12, "k3#Vq9zPw7!", "Use at least 12 characters."),
    (12, "k3#Vq9zPw7!m", None),
    (4, "k3#Vq9z", "Use at least 8 characters."),  # never under NIST's 8, whatever is asked
])
def test_the_tenant_minimum_length_with_a_floor_of_8(min_length, password, answer):
    assert problem(password, min_length=min_length) == answer


def test_long_passwords_up_to_256_characters_and_no_more():
    assert problem(secrets.token_urlsafe(48)) is None  # 64 characters: NIST says allow them
    assert problem("ab" * 128) is None
    assert problem("ab" * 128 + "c") == TOO_LONG == "Use at most 256 characters."
    # Each code point counts once: 8 emoji are 8 characters (32 bytes), enough.
    assert problem("🦊🐝🌵🍋🚲🎈🧭🪁") is None


def test_a_long_random_passphrase_is_accepted_spaces_and_unicode_included():
    words = ["ochre", "tandem", "glacier", "müsli", "lantern", "quorum", "fjord", "kiwi"]
    passphrase = " ".join(secrets.choice(words) + str(secrets.randbelow(100)) for _ in range(6))
    assert problem(passphrase, min_length=20, email="alice@example.com", tenant=ACME) is None
    assert problem("Ünïcode çafé ☕ ist gut", email="alice@example.com", tenant=ACME) is None


@pytest.mark.parametrize("password", [
    "password1", "PASSWORD1", "PassWord1", "iloveyou", "1qaz2wsx3edc",
    "ｐａｓｓｗｏｒｄ１",  # full-width: NFKC makes it password1
    " password1 ",  # spaces around it change nothing
    "1qazxsw23",  # from the list's last thousand
])
def test_common_and_leaked_passwords_are_refused_whatever_their_case(password):
    assert problem(password) == COMMON
    assert COMMON == ("This password is too common: it appears in lists of leaked passwords. "
                      "Choose another.")


@pytest.mark.parametrize("password", [
    "alice.smith@example.com", "Alice.Smith@EXAMPLE.com", "alice.smith", "ALICE.SMITH"])
def test_the_persons_own_address_or_its_local_part_is_refused(password):
    assert problem(password, email="Alice.Smith@Example.com") == EMAIL
    # Someone else's address is only a password like another.
    assert problem(password, email="bob.jones@example.com") is None


@pytest.mark.parametrize("password", ["Acme Widgets", "acmewidgets", "ACME WIDGETS"])
def test_the_organisations_name_is_refused(password):
    assert problem(password, tenant=ACME) == ORGANISATION
    assert problem(password, tenant=SimpleNamespace(name="Globex Ltd", slug="globex")) is None


def test_the_organisations_slug_is_refused():
    long_slug = SimpleNamespace(name="Acme", slug="acme-widgets-eu")
    assert problem("Acme-Widgets-EU", tenant=long_slug) == ORGANISATION


@pytest.mark.parametrize("password", [
    "nul\x00inside", "tab\tinside!", "line\nbreak!", "carriage\rret", "del\x7finside",
    "next\x85line!", "surrogate\ud800!"])
def test_control_characters_and_lone_surrogates_are_refused(password):
    assert problem(password) == CONTROL


def test_the_first_rule_broken_is_the_one_said():
    assert problem("pass", email="pass@example.com") == "Use at least 8 characters."
    assert problem("password\x00") == CONTROL


def test_a_password_is_hashed_as_typed_not_normalised():
    """The policy compares NFKC forms; the hash is of what was typed, as it always was."""
    hasher = Passwords(memory_kib=1024, time_cost=1, parallelism=1)
    typed = "ﬁnancial ﬂows 2026"  # ligatures, which NFKC turns into "fi" and "fl"
    stored = hasher.hash(typed)
    assert hasher.verify(stored, typed).ok
    assert not hasher.verify(stored, "financial flows 2026").ok


def test_the_list_is_read_once_by_a_worker_whatever_its_threads_do(monkeypatch):
    reads = []
    real = password_policy._read

    def counted(path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(password_policy, "_read", counted)
    monkeypatch.setattr(password_policy, "_loaded", None)
    start = threading.Barrier(8)
    seen = []

    def first_use():
        start.wait()
        seen.append(password_policy.common_passwords())

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(reads) == 1 and all(s is seen[0] for s in seen) and "password1" in seen[0]


def test_the_list_is_package_data_so_an_installed_idp_has_it():
    """A wheel or ``pip install`` carries only what pyproject's package data names."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["idp"]
    shipped = password_policy.COMMON_LIST.relative_to(ROOT / "idp").as_posix()
    assert any(fnmatch.fnmatch(shipped, pattern) for pattern in patterns)
