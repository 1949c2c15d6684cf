"""Security questions through the hosted pages: the catalogue, enrollment and its refusals,
sign-in with one question, "Try another question", the guard, the claims, removal."""

from __future__ import annotations

import html
import json
import re
from types import SimpleNamespace

from sqlalchemy import func, select

from idp import db
from idp.guard import account_key
from idp.mfa import questions
from idp.models import AuditEvent, Authenticator, SecurityQuestion, Tenant, User
from tests.support.account import (answer_challenge, password_sign_in, start_enrollment,
                                   submit_enrollment)
from tests.support.journey import CSRF, Browser, field, query
from tests.support.questions import ANSWERS, ASKED, asked, catalogue, chosen_form, enroll
from tests.support.rp import jwt_claims, redeem
from tests.support.signin import challenge_page


def enrolled_alice(app, world) -> tuple[Browser, dict[str, str]]:
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    return browser, enroll(browser, world)


def at_question(app, world):
    """A new browser past the password for an authorization request, at the question."""
    browser, verifier, page = challenge_page(app, world)
    assert page.status == 200 and ASKED.search(page.text), (page.status, page.location)
    return browser, verifier, page


def answer(browser, world, page, text: str):
    return answer_challenge(browser, world, page, "kba", answer=text)


def another(browser, world, page):
    return answer_challenge(browser, world, page, "kba", answer="", another="1")


def alice_row(world):
    session = db.session()
    tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
    user = session.scalar(select(User).where(User.tenant_id == tenant.id, User.email == world.alice))
    return tenant, user


def kba_sets(app, world) -> list[SimpleNamespace]:
    """Alice's security-question sets as stored (id and data), read in a fresh session."""
    with app.app_context():
        tenant, user = alice_row(world)
        return [SimpleNamespace(id=a.id, data=a.data) for a in db.session().scalars(
            select(Authenticator).where(Authenticator.user_id == user.id,
                                        Authenticator.type == "kba"))]


def actions(app, world, prefix="mfa.") -> list[tuple[str, dict]]:
    with app.app_context():
        tenant, _ = alice_row(world)
        return [(e.action, e.data) for e in db.session().scalars(
            select(AuditEvent).where(AuditEvent.tenant_id == tenant.id,
                                     AuditEvent.action.like(f"{prefix}%")).order_by(AuditEvent.id))]


def failures(app, world) -> int:
    with app.app_context():
        tenant, user = alice_row(world)
        return app.extensions["idp.guard"].failures(account_key(tenant.id, user.id, user.email))


def test_a_new_tenant_gets_ten_questions_once(app, world):
    with app.app_context():
        tenant_id = alice_row(world)[0].id
        count = select(func.count()).select_from(SecurityQuestion).where(
            SecurityQuestion.tenant_id == tenant_id)
        assert db.session().scalar(count) == 0  # seeded when first needed, not before
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    first = catalogue(start_enrollment(browser, world, "kba"))
    assert [text for _, text in first] == list(questions.DEFAULTS) and len(first) == 10
    again = catalogue(start_enrollment(browser, world, "kba"))
    assert again == first  # the same rows, not a second seeding
    with app.app_context():
        rows = db.session().scalars(select(SecurityQuestion).where(
            SecurityQuestion.tenant_id == tenant_id).order_by(SecurityQuestion.position)).all()
        assert [r.position for r in rows] == list(range(1, 11))


def test_seeding_that_loses_a_race_keeps_the_winners_rows(app, world, monkeypatch):
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    seeded = catalogue(start_enrollment(browser, world, "kba"))  # the "other request" won
    real = questions._questions
    calls = []

    def stale_first_read(ctx):
        calls.append(1)
        return [] if len(calls) == 1 else real(ctx)

    monkeypatch.setattr(questions, "_questions", stale_first_read)
    with app.app_context():
        session = db.session()
        tenant, user = alice_row(world)
        ctx = type("Ctx", (), {"db": session, "tenant": tenant})()
        rows = questions.catalogue(ctx)  # inserts, hits the unique constraint, rolls back the savepoint
        assert [(str(r.id), r.text) for r in rows] == seeded
        user.name = "Alice still saves"  # the outer transaction survived the savepoint's failure
        session.commit()
    with app.app_context():
        assert alice_row(world)[1].name == "Alice still saves"


def test_enrollment_refuses_bad_choices_and_keeps_what_was_typed(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world)
    page = start_enrollment(browser, world, "kba")
    options = catalogue(page)
    assert 'for="question-1"' in page.text and 'for="answer-1"' in page.text  # labelled fields
    good = chosen_form(options)
    refusals = [
        ({**good, "question_5": ""}, "Choose 5 different questions"),  # four chosen
        ({**good, "question_5": good["question_4"]}, "only once"),  # the same question twice
        ({**good, "answer_3": "   "}, "Answer all 5 questions"),  # an empty answer
        ({**good, "answer_3": "x"}, "at least 2 characters"),
        ({**good, "answer_3": " elm  STREET "}, "different answer"),  # same as answer 1
    ]
    for form, message in refusals:
        refused = submit_enrollment(browser, world, "kba", page, **form)
        assert refused.status == 400 and message in html.unescape(refused.text), message
        # Nothing lost: the questions picked and the answers typed are still there.
        assert re.search(rf'<option value="{good["question_2"]}" selected>', refused.text)
        assert 'value="The Lion King"' in refused.text
        page = refused
    assert kba_sets(app, world) == []
    assert failures(app, world) == 0  # a refused form is not a guess
    done = submit_enrollment(browser, world, "kba", page, **good)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account")
    account = browser.get(f"/t/{world.slug}/account").text
    assert "Security questions" in account and "5 questions" in account
    [kba] = kba_sets(app, world)
    stored = json.dumps(kba.data)
    assert [a["question"] for a in kba.data["answers"]] == [options[p][1] for p in (1, 3, 5, 7, 9)]
    assert all(a["hash"].startswith("$argon2id$") for a in kba.data["answers"])
    assert not any(a.lower() in stored.lower() for a in ANSWERS)
    assert ("mfa.enrolled", {"factor": "kba", "authenticator_id": kba.id,
                             "name": "Security questions"}) in actions(app, world)


def test_a_right_answer_signs_in_with_kba_but_never_mfa(app, world):
    _, chosen = enrolled_alice(app, world)
    browser, verifier, page = at_question(app, world)
    question = asked(page)
    assert question in chosen and "code=" not in (page.location or "")
    typed = "  " + chosen[question].upper().replace(" ", "   ") + " "
    done = browser.follow(answer(browser, world, page, typed), world.portal.redirect_uri)
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri)
    tokens = redeem(browser.http, world, world.portal, query(done.location)["code"], verifier)
    claims = jwt_claims(tokens.get_json()["id_token"])
    assert claims["amr"] == ["pwd", "kba"] and claims["acr"] == "pwd"
    assert "mfa" not in claims["amr"]
    assert ("mfa.challenge_passed", {"factor": "kba", "authenticator_id": kba_sets(app, world)[0].id,
                                     "methods": ["kba"]}) in actions(app, world)


def test_a_wrong_answer_is_refused_counted_and_audited(app, world):
    _, chosen = enrolled_alice(app, world)
    browser, _, page = at_question(app, world)
    question = asked(page)
    other_answer = next(a for q, a in chosen.items() if q != question)
    wrong = answer(browser, world, page, other_answer)  # right for another question only
    assert wrong.status == 400 and "not right" in wrong.text
    assert asked(wrong) == question  # the same question again, no code
    assert failures(app, world) == 1
    assert ("mfa.challenge_failed", {"factor": "kba"}) in actions(app, world)
    done = browser.follow(answer(browser, world, wrong, chosen[question]), world.portal.redirect_uri)
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri)
    assert failures(app, world) == 0  # a full sign-in clears the count


def test_try_another_question_cycles_and_never_resets_the_count(app, world):
    _, chosen = enrolled_alice(app, world)
    browser, _, page = at_question(app, world)
    first = asked(page)
    page = answer(browser, world, page, "not it")
    assert page.status == 400 and failures(app, world) == 1
    seen = [first]
    for _ in range(5):
        page = another(browser, world, page)
        assert page.status == 200 and "Try another question" in page.text
        seen.append(asked(page))
        assert failures(app, world) == 1  # switching is not a guess, and forgets no guess
    assert seen[5] == first  # five presses: back at the first
    assert len(set(seen[:5])) == 5 and set(seen[:5]) == set(chosen)
    page = another(browser, world, page)
    assert asked(page) == seen[1] != first
    page = answer(browser, world, page, chosen[first])  # the answer to the question not asked
    assert page.status == 400 and failures(app, world) == 2
    done = browser.follow(answer(browser, world, page, chosen[seen[1]].lower()),
                          world.portal.redirect_uri)
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri)


def test_enrolling_again_replaces_the_set(app, world):
    _, old = enrolled_alice(app, world)
    # Changing them takes a sign-in that answered one (a password alone changes no factor of
    # an account that has one: tests/security/test_sign_in_binding.py).
    browser = Browser(app.test_client())
    page = password_sign_in(browser, world)
    assert browser.follow(answer(browser, world, page, old[asked(page)]), "\0").status == 200
    new = enroll(browser, world, answers=["Oak Avenue", "Up", "Mr Lee", "Omelette", "Porto"])
    assert len(kba_sets(app, world)) == 1
    b2, _, page = at_question(app, world)
    question = asked(page)
    assert answer(b2, world, page, old[question]).status == 400
    done = b2.follow(answer(b2, world, page, new[question]), world.portal.redirect_uri)
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri)


def test_a_password_and_question_session_may_remove_the_questions(app, world):
    _, chosen = enrolled_alice(app, world)
    # A fresh sign-in: the password, then (since alice has questions) one question.
    browser = Browser(app.test_client())
    page = password_sign_in(browser, world)
    question = asked(page)
    home = browser.follow(answer(browser, world, page, chosen[question]), "\0")
    assert home.status == 200
    # Questions are knowledge: this session is at acr "pwd", which is all a kba-only user can
    # reach, so it may change factors (idp/account/views.py, _level_needed).
    account = browser.get(f"/t/{world.slug}/account")
    [kba] = kba_sets(app, world)
    action = f"/t/{world.slug}/account/factors/{kba.id}/remove"
    assert action in account.text
    removed = browser.post(action, {"csrf_token": field(CSRF, account.text)})
    assert removed.status == 302 and removed.location.endswith(f"/t/{world.slug}/account")
    assert kba_sets(app, world) == []
    assert ("mfa.removed", {"factor": "kba", "authenticator_id": kba.id,
                            "name": "Security questions"}) in actions(app, world)
    # The password alone signs in again.
    after = password_sign_in(Browser(app.test_client()), world)
    assert after.status == 200 and not ASKED.search(after.text)

