"""Security questions (``kba``): the user answers five of the tenant's ten questions.

Answers are knowledge, like the password: NIST SP 800-63B 5.1.1 does not accept
knowledge-based authentication as an authenticator at all, and OWASP ASVS 5 counts two
things one knows as one factor. So a passed challenge proves ``kba`` only; ``claims.py``
never turns ``pwd`` + ``kba`` into ``mfa`` (DESIGN.md, "Claims").

The catalogue is per tenant (``SecurityQuestion``), seeded from ``DEFAULTS`` the first time a
tenant needs it. Answers are normalised (Unicode NFKC, case-folded, whitespace collapsed)
and kept only as argon2id hashes with the app's password parameters: answers are
low-entropy, so only a slow, salted hash makes a stolen database expensive to search
(OWASP Password Storage Cheat Sheet). The question text is kept beside its hash so that a
later edit of the catalogue never changes what a user is asked.

At sign-in one question is asked at random; "Try another question" moves through the
user's five in order. Which question is asked lives in the challenge state (Redis), never
in the form, so a client cannot choose the question it knows. Switching is not a guess
(the flow refunds the guard for a new ``Step``); every wrong answer counts, whatever the
question.
"""

from __future__ import annotations

import secrets
import unicodedata
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from idp.config import Settings
from idp.password import hashing
from idp.mfa import register
from idp.mfa.base import Factor, FactorContext, NotNow, Proof, Step, WrongAnswer
from idp.models import Authenticator, SecurityQuestion

def N_(text: str) -> str:
    """Marks ``text`` for the catalogs (``make messages``) without translating it."""
    return text


# Chosen to be stable over a lifetime, not found on a social profile, and not about health,
# family names or other sensitive data ("mother's maiden name" is all three, and public).
# Stored in English (``N_`` only marks them for the catalogs); a person reads them in their
# own language (``asked``), a tenant's own questions as the tenant wrote them.
DEFAULTS = (
    N_("What was the first concert you attended?"),
    N_("What is the name of the street you lived on in third grade?"),
    N_("What was the name of your childhood best friend?"),
    N_("What was the first film you saw in a cinema?"),
    N_("What is the title of the first book you remember reading on your own?"),
    N_("What was the name of your favourite teacher in primary school?"),
    N_("What was the first dish you learned to cook?"),
    N_("Where did you go on your first holiday without your family?"),
    N_("What was the name of your first stuffed animal or favourite toy?"),
    N_("In what town or city did you have your first job?"),
)
CHOSEN = 5  # questions each user answers
MIN_ANSWER = 2
MAX_ANSWER = 100  # bounds the work one form can ask of argon2 and of the page



def asked(text: str) -> str:
    """A question as the reader reads it: one of ``DEFAULTS`` in their language."""
    return _(text) if text in DEFAULTS else text


def _pick_five() -> str:
    return _("Choose %(count)d different questions from the list.", count=CHOSEN)


def normalise(answer: str | None) -> str:
    """One spelling per answer: NFKC (full-width letters, ligatures), case-folded (ß = ss),
    inner whitespace collapsed to one space, trimmed."""
    text = unicodedata.normalize("NFKC", answer or "")
    return " ".join(text.casefold().split())


@lru_cache(maxsize=4)
def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    # argon2-cffi's PasswordHasher is argon2id (RFC 9106) with a random salt per hash.
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(settings.argon2_memory_kib, settings.argon2_time_cost,
                   settings.argon2_parallelism)


def catalogue(ctx: FactorContext) -> list[SecurityQuestion]:
    """The tenant's questions by position; seeded from ``DEFAULTS`` on first use."""
    rows = _questions(ctx)
    if rows:
        return rows
    # Two first requests may race to seed: the loser's savepoint hits the unique
    # (tenant_id, position) constraint, is rolled back alone, and it reads the winner's rows.
    try:
        with ctx.db.begin_nested():
            ctx.db.add_all(SecurityQuestion(tenant_id=ctx.tenant.id, position=i, text=text)
                           for i, text in enumerate(DEFAULTS, start=1))
    except IntegrityError:
        pass
    return _questions(ctx)


def _questions(ctx: FactorContext) -> list[SecurityQuestion]:
    return list(ctx.db.scalars(select(SecurityQuestion)
                               .where(SecurityQuestion.tenant_id == ctx.tenant.id)
                               .order_by(SecurityQuestion.position)))


def _choices(state: dict, form: MultiDict) -> list[tuple[dict, str]]:
    """The five (question, normalised answer) pairs of the form, or ``NotNow`` saying why not.

    These refusals are not guesses at a secret, so they are ``NotNow`` (not counted)."""
    offered = {str(q["id"]): q for q in state.get("questions", [])}
    picked = [(form.get(f"question_{i}") or "").strip() for i in range(1, CHOSEN + 1)]
    if any(not p for p in picked):
        raise NotNow(_pick_five())
    if any(p not in offered for p in picked):
        raise NotNow(_pick_five())
    if len(set(picked)) != CHOSEN:
        raise NotNow(_pick_five() + " " + _("Each question can be used only once."))
    answers = [normalise(form.get(f"answer_{i}")) for i in range(1, CHOSEN + 1)]
    if any(not a for a in answers):
        raise NotNow(_("Answer all %(count)d questions.", count=CHOSEN))
    if any(len(a) < MIN_ANSWER for a in answers):
        raise NotNow(_("Each answer needs at least %(count)d characters.", count=MIN_ANSWER))
    if any(len(a) > MAX_ANSWER for a in answers):
        raise NotNow(_("An answer can have at most %(count)d characters.", count=MAX_ANSWER))
    if len(set(answers)) != CHOSEN:
        # One answer for several questions would make them one secret, not five.
        raise NotNow(_("Give a different answer to each question."))
    return [(offered[p], a) for p, a in zip(picked, answers)]


@register
class SecurityQuestions(Factor):
    type = "kba"
    label = _l("Security questions")
    in_sentence = _l("security questions")
    policy_help = _l("Answers only the user should know. These are knowledge, like the password: "
                     "they never count as two-factor authentication, and portals are told so.")
    alias = "questions"
    amr = "kba"  # RFC 8176 2: knowledge-based authentication
    rank = 40
    several = False  # enrolling again replaces the set

    def enroll_begin(self, ctx: FactorContext) -> Step:
        questions = [{"id": q.id, "text": q.text} for q in catalogue(ctx)]
        shown = [{"id": q["id"], "text": asked(q["text"])} for q in questions]
        return Step(context={"questions": shown, "count": CHOSEN,
                             "min_answer": MIN_ANSWER, "max_answer": MAX_ANSWER},
                    state={"questions": questions})

    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator:
        chosen = _choices(state, form)
        ph = hasher(ctx.settings)
        # In the worker's argon2 threads, as password checks: argon2 is the costly part.
        answers = [{"question_id": q["id"], "question": q["text"], "hash": hashing.run(ph.hash, a)}
                   for q, a in chosen]
        return Authenticator(type=self.type, name=str(self.label), data={"answers": answers})

    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        authenticator = self._current(factors)
        index = secrets.choice(range(len(self._answers(authenticator))))
        return self._ask(authenticator, index)

    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof | Step:
        authenticator = self._current(factors)
        answers = self._answers(authenticator)
        index = state.get("index")
        if (state.get("authenticator_id") != authenticator.id or not isinstance(index, int)
                or not 0 <= index < len(answers)
                or answers[index].get("question_id") != state.get("question_id")):
            # The set was replaced since this page was shown (another tab): ask afresh,
            # checking nothing, so nothing is counted.
            step = self._ask(authenticator, secrets.choice(range(len(answers))))
            step.context["notice"] = _("Your security questions changed. Answer this one instead.")
            return step
        if "another" in form:
            return self._ask(authenticator, (index + 1) % len(answers))
        raw = form.get("answer") or ""
        if not raw.strip():
            raise NotNow(_("Type your answer to the question."))
        answer = normalise(raw)
        if len(answer) > MAX_ANSWER:
            raise WrongAnswer(_("That answer is not right. Try again."))
        stored = answers[index]["hash"]
        ph = hasher(ctx.settings)
        try:
            hashing.run(ph.verify, stored, answer)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            raise WrongAnswer(_("That answer is not right. Try again.")) from None
        new_hash = hashing.run(ph.hash, answer) if ph.check_needs_rehash(stored) else None
        if new_hash:
            # The app's argon2 parameters changed: upgrade this hash while the answer is at
            # hand. A new list, so SQLAlchemy sees the JSON column change.
            updated = [dict(a) for a in answers]
            updated[index]["hash"] = new_hash
            authenticator.data = {**authenticator.data, "answers": updated}
        return Proof(authenticator, [self.amr])

    def usable(self, authenticator: Authenticator) -> bool:
        return bool(self._answers(authenticator))

    def describe(self, authenticator: Authenticator) -> str:
        n = len(self._answers(authenticator))
        return ngettext("%(num)d question", "%(num)d questions", n)

    @staticmethod
    def _answers(authenticator: Authenticator) -> list[dict]:
        return list((authenticator.data or {}).get("answers") or [])

    def _current(self, factors: list[Authenticator]) -> Authenticator:
        # ``several`` is False, so there is one set; should a replaced one linger, the newest
        # is the one the user last chose.
        usable = [a for a in factors if self.usable(a)]
        if not usable:
            raise NotNow(_("No security questions are set up for this account."))
        return max(usable, key=lambda a: a.id or 0)

    def _ask(self, authenticator: Authenticator, index: int) -> Step:
        answers = self._answers(authenticator)
        return Step(context={"question": asked(answers[index]["question"]), "max_answer": MAX_ANSWER},
                    state={"authenticator_id": authenticator.id, "index": index,
                           "question_id": answers[index].get("question_id")})
