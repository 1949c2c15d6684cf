"""Passwords: argon2id at the configured cost, length rules, unknown users cost the same."""

import pytest

from idp.addresses import normalise_email
from idp.password import Passwords, WeakPassword

FAST = dict(memory_kib=1024, time_cost=1, parallelism=1)


def test_hash_is_argon2id_and_verifies():
    p = Passwords(**FAST)
    stored = p.hash("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert p.verify(stored, "correct horse battery").ok
    assert not p.verify(stored, "correct horse batterz").ok


def test_unknown_user_is_checked_against_a_dummy_hash_and_fails(monkeypatch):
    p = Passwords(**FAST)
    calls = []

    class Spy:
        def __init__(self, real):
            self.real = real

        def verify(self, stored, password):
            calls.append(stored)
            return self.real.verify(stored, password)

    p.hasher = Spy(p.hasher)
    assert not p.verify(None, "anything at all").ok
    assert calls == [p._dummy]  # the same argon2 work as for a real account


def test_changed_parameters_ask_for_a_rehash():
    old = Passwords(**FAST).hash("correct horse battery")
    newer = Passwords(memory_kib=2048, time_cost=2, parallelism=1)
    check = newer.verify(old, "correct horse battery")
    assert check.ok and check.new_hash and ",t=2," in check.new_hash


@pytest.mark.parametrize("password", ["short", "x" * 1025])
def test_length_rules(password):
    with pytest.raises(WeakPassword):
        Passwords(**FAST).hash(password)


def test_oversized_or_non_text_input_never_verifies():
    p = Passwords(**FAST)
    stored = p.hash("correct horse battery")
    assert not p.verify(stored, "x" * 5000).ok
    assert not p.verify(stored, None).ok


def test_emails_have_one_spelling():
    assert normalise_email("  Alice@EXAMPLE.com ") == "alice@example.com"
    assert normalise_email("ａｌｉｃｅ@example.com") == "alice@example.com"  # NFKC folds full-width
