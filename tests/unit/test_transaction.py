"""The stored sign-in (``idp.journey.transaction.Transaction``) as JSON: what this version
stores it reads back whole; anything another version stored, or that is not a transaction,
is gone (the pages say "start again"), never guessed at and never a crash.

The same through the hosted pages: tests/integration/test_journey_outcomes.py."""

from __future__ import annotations

import json

import pytest

from idp.journey.transaction import (VERSION, Challenge, Setup, Transaction, TransactionGone)


def waiting() -> Transaction:
    """A sign-in past its password, an app's code asked for, a setup under way."""
    return Transaction(
        "x" * 32, 7, "b" * 32, {"client_id": "portal", "state": "st-123"}, 1_800_000_000,
        user_id=42, methods=["pwd"], primary="password", next_url="/t/acme/", sid="s" * 43,
        min_acr="mfa", second_step=True, step_up=True, skipped=True,
        challenge=Challenge("totp", {"nonce": "n"}, {"digits": 6, "names": ["Phone"]}),
        setup=Setup("c" * 24, "totp", {"secret": "sealed"}, "sealed page"),
        offer_backup=True, upstream="corp", captcha=True)


def stored(**changes) -> str:
    """``waiting()`` as this version stores it, with ``changes`` to its JSON (None: dropped)."""
    data = {**json.loads(waiting().to_json()), **changes}
    return json.dumps({k: v for k, v in data.items() if v is not None})


def test_what_this_version_stores_it_reads_back_whole():
    tx = waiting()
    assert json.loads(tx.to_json())["v"] == VERSION
    back = Transaction.from_json(tx.to_json())
    assert back == tx
    assert isinstance(back.challenge, Challenge) and isinstance(back.setup, Setup)
    assert Transaction.from_json(Transaction("y", 1, "b", {}, 0).to_json()).challenge is None


def test_finished_is_never_stored():
    tx = waiting()
    tx.finished = True
    assert "finished" not in json.loads(tx.to_json())
    assert Transaction.from_json(tx.to_json()).finished is False


def old_shape() -> str:
    """As the code before the typed transaction stored it: no version, a ``notes`` dict."""
    return json.dumps({
        "id": "x" * 32, "tenant_id": 7, "browser": "b" * 32, "params": {}, "created": 0,
        "authenticated": False, "consented": False, "user_id": 42, "methods": ["pwd"],
        "next_url": None, "sid": None,
        "notes": {"primary": "password", "challenge": {"type": "totp", "state": {},
                                                       "context": {}}}})


@pytest.mark.parametrize("raw", [
    pytest.param(old_shape(), id="before versions (notes, no v)"),
    pytest.param(stored(v=None), id="no v"),
    pytest.param(stored(v=VERSION - 1), id="an older v"),
    pytest.param(stored(v=VERSION + 1), id="a newer v"),
    pytest.param(stored(v=str(VERSION)), id="v as a string"),
    pytest.param(stored(notes={}), id="an unknown field"),
    pytest.param(stored(captcha=None), id="a field missing"),
    pytest.param("[]", id="not an object"),
    pytest.param("null", id="null"),
    pytest.param("{not json", id="not JSON"),
    pytest.param(b"\xff\xfe", id="not text"),
])
def test_anything_else_is_gone(raw):
    with pytest.raises(TransactionGone):
        Transaction.from_json(raw)


@pytest.mark.parametrize("raw", [
    pytest.param(stored(challenge={"type": "totp", "state": {}, "context": {}, "sent_at": 1}),
                 id="a challenge with a field of another version"),
    pytest.param(stored(setup={"id": "c" * 24, "type": "totp", "state": {}}),
                 id="a setup without a field"),
    pytest.param(stored(challenge="totp"), id="a challenge that is no object"),
])
def test_a_challenge_or_setup_of_another_shape_is_gone_too(raw):
    """What ``from_json`` checks of the transaction's own fields holds for the two it
    nests: a later version that changes ``Challenge`` or ``Setup`` without bumping
    ``VERSION`` (or a rollback past it) still gives "start again", not a TypeError (a 500)."""
    with pytest.raises(TransactionGone):
        Transaction.from_json(raw)
