"""Security questions, the pure parts: normalising answers, and what is stored."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from werkzeug.datastructures import MultiDict

from idp.config import Settings
from idp.mfa.base import NotNow, Proof, Step, WrongAnswer
from idp.mfa.questions import DEFAULTS, SecurityQuestions, normalise
from idp.models import Authenticator

# Cheap argon2 parameters: these tests check behaviour, not cost.
CTX = SimpleNamespace(settings=Settings(argon2_memory_kib=1024, argon2_time_cost=1,
                                        argon2_parallelism=1))
STATE = {"questions": [{"id": 100 + i, "text": t} for i, t in enumerate(DEFAULTS)]}
ANSWERS = ["Metallica 1992", "Elm Street", "Sam Rivers", "The Lion King", "Matilda"]
factor = SecurityQuestions()


def form(questions=(100, 101, 102, 103, 104), answers=ANSWERS, **extra) -> MultiDict:
    data = {f"question_{i}": str(q) for i, q in enumerate(questions, 1)}
    data.update({f"answer_{i}": a for i, a in enumerate(answers, 1)})
    data.update(extra)
    return MultiDict(data)


@pytest.mark.parametrize("typed, enrolled", [
    ("ELM STREET", "Elm Street"),  # case
    ("  elm   street ", "Elm Street"),  # inner and outer spaces
    ("elm street\t\n", "elm street"),  # trailing whitespace
    ("ＥＬＭ　Ｓｔｒｅｅｔ", "Elm Street"),  # full-width letters and ideographic space (NFKC)
    ("Straße", "STRASSE"),  # full case folding, not lower()
    ("ﬁrst", "first"),  # a ligature (NFKC)
])
def test_equivalent_answers_normalise_alike(typed, enrolled):
    assert normalise(typed) == normalise(enrolled)


@pytest.mark.parametrize("typed, enrolled", [
    ("Elm Street", "Elm Streets"),
    ("Elm Street", "ElmStreet"),  # spaces collapse, they do not vanish
    ("Elm St", "Elm Street"),
    ("Metallica 1992", "Metallica 1993"),
])
def test_different_answers_stay_different(typed, enrolled):
    assert normalise(typed) != normalise(enrolled)


def enrolled() -> Authenticator:
    auth = factor.enroll_finish(CTX, STATE, form())
    auth.id = 7
    return auth


def test_only_argon2id_hashes_are_stored_never_the_answer():
    auth = enrolled()
    answers = auth.data["answers"]
    assert [a["question_id"] for a in answers] == [100, 101, 102, 103, 104]
    assert [a["question"] for a in answers] == list(DEFAULTS[:5])
    assert all(a["hash"].startswith("$argon2id$") for a in answers)
    assert len({a["hash"] for a in answers}) == 5
    stored = json.dumps(auth.data).casefold()
    for answer in ANSWERS:
        assert answer.casefold() not in stored and normalise(answer) not in stored
    assert auth.type == "kba" and factor.describe(auth) == "5 questions"


@pytest.mark.parametrize("typed, passes", [
    ("  ELM   street ", True),
    ("ｅｌｍ ｓｔｒｅｅｔ", True),
    ("Elm Street.", False),
    ("Oak Street", False),
])
def test_verify_accepts_the_normalised_answer_only(typed, passes):
    auth = enrolled()
    state = {"authenticator_id": 7, "index": 1, "question_id": 101}
    if passes:
        proof = factor.verify(CTX, [auth], state, MultiDict({"answer": typed}))
        assert isinstance(proof, Proof) and proof.methods == ["kba"] and proof.authenticator is auth
    else:
        with pytest.raises(WrongAnswer):
            factor.verify(CTX, [auth], state, MultiDict({"answer": typed}))


def test_the_right_answer_to_another_question_is_wrong():
    auth = enrolled()
    state = {"authenticator_id": 7, "index": 0, "question_id": 100}
    with pytest.raises(WrongAnswer):
        factor.verify(CTX, [auth], state, MultiDict({"answer": "Elm Street"}))


def test_another_question_moves_in_order_and_wraps():
    auth = enrolled()
    state = {"authenticator_id": 7, "index": 3, "question_id": 103}
    seen = []
    for _ in range(5):
        step = factor.verify(CTX, [auth], state, MultiDict({"another": "1", "answer": "x"}))
        assert isinstance(step, Step)
        state = step.state
        seen.append(step.context["question"])
    assert seen == [DEFAULTS[4], DEFAULTS[0], DEFAULTS[1], DEFAULTS[2], DEFAULTS[3]]


def test_a_challenge_never_puts_an_answer_or_hash_in_the_page():
    auth = enrolled()
    step = factor.challenge_begin(CTX, [auth])
    assert step.context["question"] in DEFAULTS[:5]
    assert "$argon2" not in json.dumps(step.context) + json.dumps(step.state)


def test_an_empty_answer_is_not_a_guess():
    auth = enrolled()
    with pytest.raises(NotNow):
        factor.verify(CTX, [auth], {"authenticator_id": 7, "index": 0, "question_id": 100},
                      MultiDict({"answer": "   "}))


def test_rehashes_when_the_parameters_change():
    auth = enrolled()
    stronger = SimpleNamespace(settings=Settings(argon2_memory_kib=2048, argon2_time_cost=1,
                                                 argon2_parallelism=1))
    before = [a["hash"] for a in auth.data["answers"]]
    factor.verify(stronger, [auth], {"authenticator_id": 7, "index": 2, "question_id": 102},
                  MultiDict({"answer": "sam rivers"}))
    after = [a["hash"] for a in auth.data["answers"]]
    assert "m=1024" in before[2] and "m=2048" in after[2]
    assert after[:2] + after[3:] == before[:2] + before[3:]  # only the answer given is upgraded
    proof = factor.verify(stronger, [auth], {"authenticator_id": 7, "index": 2, "question_id": 102},
                          MultiDict({"answer": "Sam Rivers"}))
    assert isinstance(proof, Proof)


@pytest.mark.parametrize("questions, answers, message", [
    ((100, 101, 102, 103, ""), ANSWERS, "Choose 5 different questions"),
    ((100, 101, 102, 103, 103), ANSWERS, "only once"),
    ((100, 101, 102, 103, 999), ANSWERS, "Choose 5 different questions"),
    ((100, 101, 102, 103, 104), ANSWERS[:4] + ["  "], "Answer all 5"),
    ((100, 101, 102, 103, 104), ANSWERS[:4] + ["x"], "at least 2"),
    ((100, 101, 102, 103, 104), ANSWERS[:4] + ["y" * 101], "at most 100"),
    ((100, 101, 102, 103, 104), ANSWERS[:4] + ["ELM  street"], "different answer"),
])
def test_enrollment_refusals_are_not_guesses(questions, answers, message):
    with pytest.raises(NotNow) as refused:
        factor.enroll_finish(CTX, STATE, form(questions, answers))
    assert message in refused.value.message
