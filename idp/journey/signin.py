"""The sign-in, start to end: every step of it, and what each step leads to.

A sign-in is a login transaction (``idp.journey.transaction``) that moves through its steps:

    pending ──first step──▶ proved ──(policy)──▶ challenge ⇄ answer ──▶ signed in
     (sealed)  password      (who)       │                                  ▲
               login link                └──▶ setup ⇄ answer / skip ────────┘
               upstream                  └──▶ refused

Each function here is one step. It reads the transaction and the user, asks the policy once
(``policy.decide``) what the sign-in still needs, with the user's factors as they are now,
does the step's work (the guard, the factor's check, the SSO session), and returns an
*outcome*: a typed value saying what happens next. The hosted pages (``idp.login.views``),
``/authorize`` and the console only turn outcomes into responses; none of them decides a step.

Nothing here renders a page or knows a URL.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone

from flask import g
from flask_babel import get_locale, lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp import (audit, db, directory, i18n, lockout, metrics, mfa, policy, store, tenant_policy,
                 user_status)
from idp.clients import ClientRef, client_ref
from idp.guard import CaptchaNeeded, Locked, account_key
from idp.journey import facts, remembered, transaction, verification
from idp.journey import session as sso
from idp.journey.outcomes import (AccountClosed, AskFactor, AskSetup, ChallengePage, LockedOut,
                                  Outcome, PasswordFirst, Refused, SetupChoice, SetupPage,
                                  SignedIn, WrongPassword)
from idp.journey.transaction import (Challenge, Setup, Transaction, TransactionGone,
                                     password_stamp)
from idp.mfa import flow
from idp.mfa.base import Factor, NotNow, Proof, Step, WrongAnswer
from idp.models import Authenticator, User
from idp.password import Passwords
from idp.policy import Decision, Need, Primary, Progress, amr_and_acr


INCORRECT = _l("Incorrect email or password.")


@contextmanager
def _writes():
    """A step's Redis writes (the transaction, the session, attempts given back), sent
    together when the step ends: one round trip, not one each. The SSO session's last use
    goes with them when one is due."""
    pipe = store.get().pipeline(transaction=False)
    yield pipe
    if len(pipe):
        sso.seen_with(pipe)
        pipe.execute()


# -- what the sign-in needs -------------------------------------------------------------------

def client_of(tx: Transaction) -> ClientRef | None:
    """The portal this sign-in is for (the per-worker snapshot), if a portal asked for it."""
    return client_ref(g.tenant.id, tx.params.get("client_id")) if tx.params else None


def decision_for(tx: Transaction, user: User,
                 authenticators: list[Authenticator] | None = None) -> Decision:
    """What the policy says this sign-in still needs (``authenticators``: all of the user's,
    when the request has read them already). The one place the journey asks it."""
    session = db.session()
    try:
        requirements = facts.requirements(tx.params, client_of(tx), tx.reauthenticate)
    except facts.BadClaimsParameter as e:
        return Decision(Need.REFUSE, str(e), error="invalid_request")
    if tx.min_acr:  # our own pages' floor (the console's step-up)
        requirements = replace(requirements, client_min_acr=tx.min_acr)
    if tx.second_step:  # the console's step-up: a second step, whatever the policy's scope
        requirements = replace(requirements, second_step=True)
    progress = Progress(primary=Primary(tx.primary), methods=tuple(tx.methods),
                        enrollment_skipped=tx.skipped,
                        remembered=tx.remembered_device is not None,
                        mailbox_proved=tx.via_mailbox)
    # No autoflush: what the journey has pending (audit events, a factor's last use) is no
    # group or factor it reads here, and goes with the request's next write.
    with session.no_autoflush:
        known = facts.user_facts(session, user, authenticators)
    return policy.decide(tenant_policy.tenant_policy(session, g.tenant), known, requirements,
                         progress, datetime.now(timezone.utc))


def advance(tx: Transaction, user: User, authenticators: list[Authenticator] | None = None,
            decision: Decision | None = None, writes=None) -> Outcome:
    """Go where the policy sends this sign-in now (``decision``: asked already for exactly
    this state; ``writes``: the step's pipeline, else the writes go at once)."""
    if writes is None:
        with _writes() as writes:
            return advance(tx, user, authenticators, decision, writes)
    if not user_status.may_sign_in(user.status):
        return _closed(tx, user, writes)
    decision = decision or decision_for(tx, user, authenticators)
    if decision.need is Need.NOTHING:
        return _signed_in(tx, user, writes, decision)
    if decision.need is Need.REFUSE:
        transaction.finish(tx, writes)
        audit.record(db.session(), g.tenant.id, "user.sign_in_refused", user_id=user.id,
                     actor=user.email, reason=decision.reason)
        return Refused(tx, decision)
    if decision.need is Need.PASSWORD:
        return password_first(tx, decision.reason_for_you, user.email, writes)
    transaction.save(tx, writes)
    return AskSetup(tx) if decision.need is Need.ENROLL else AskFactor(tx)


SESSION_ENDED = _l("You were signed out while this page was open. Sign in again.")

def _outdated(tx: Transaction, user: User) -> bool:
    """Was the account's password changed (a reset, an administrator, removed) since this
    sign-in's first step? Then what it proved is void, like every session the change ended:
    a sign-in racing a reset must not come out of it with a session of its own, nor leave a
    factor behind. Compared as the database has it, not by any host's clock."""
    return tx.password_seen is not None and tx.password_seen != password_stamp(user)


def password_first(tx: Transaction, message: str, email: str = "", writes=None) -> PasswordFirst:
    """Back to the sign-in page for the password: nothing proved so far carries over (the
    request does, in a sign-in that stores nothing until the password is right)."""
    transaction.finish(tx, writes)
    fresh = tx if transaction.is_pending(tx) else \
        transaction.pending(tx.tenant_id, tx.params, next_url=tx.next_url,
                            reauthenticate=tx.reauthenticate)
    return PasswordFirst(fresh, message, email, refused=False)


def _closed(tx: Transaction, user: User, writes) -> AccountClosed:
    """The account may not sign in (``idp.user_status``): the sign-in ends here, whatever step
    it reached, and the person is told why — only ever after proving who they are."""
    transaction.finish(tx, writes)
    audit.record(db.session(), g.tenant.id, "user.sign_in_refused", user_id=user.id,
                 actor=user.email, reason=f"account {user.status}")
    return AccountClosed(*user_status.refusal(user.status))


def _signed_in(tx: Transaction, user: User, writes,
               decision: Decision) -> SignedIn | PasswordFirst:
    """Every step is done: the SSO session starts, or a step-up extends it (a new sid either
    way), and the pending authorization is bound to it. The browser is remembered when its
    person asked for it with the second step they proved in this sign-in."""
    amr, acr = amr_and_acr(tx.methods)
    current = sso.current(g.tenant.id)
    stood_in = tx.remembered_device if decision.remembered else None
    if tx.step_up and (current is None or current.user_id != user.id):
        # The session it stepped up ended meanwhile: what it proved belonged to that session.
        return password_first(tx, SESSION_ENDED, user.email, writes)
    if tx.step_up:
        session = sso.step_up(g.tenant.id, amr, acr, writes)
    else:
        session = sso.start(g.tenant.id, user.id, amr, acr, Primary(tx.primary), writes,
                            subject=user.subject, remembered_device=stood_in)
        if stood_in is not None:
            remembered.used(db.session(), g.tenant.id, user, stood_in)
    reads_in(user)
    issued = _remember(tx, user)
    flow.guard().clear(account_key(g.tenant.id, user.id, user.email), writes)
    client = client_of(tx)
    audit.record(db.session(), g.tenant.id, "user.signed_in", user_id=user.id, actor=user.email,
                 client_id=client.client_id if client else None, amr=amr, acr=acr)
    offer = recovery_to_offer(user) if tx.offer_backup else None
    tx.offer_backup, tx.challenge, tx.setup, tx.remember = False, None, None, False
    # What completed it: the pending authorization is good for this session only (consent and
    # /authorize/resume check it), never for whoever signs in later in the same browser.
    tx.authenticated, tx.sid = True, session.sid
    if offer is not None and tx.params:
        transaction.save(tx, writes)  # the offer's "Not now" resumes the authorization
    else:
        # Done: the authorization, if any, is answered in this response (consent, if asked
        # for, keeps it again).
        transaction.finish(tx, writes)
    return SignedIn(tx, user, offer, issued)


def reads_in(user: User) -> None:
    """Keep the language of this page as the one ``user`` reads: their mail speaks it
    (``idp.notify.outbox``). Written only when it changed: a sign-in in the same language
    as the last costs no statement."""
    lang = i18n.supported(str(get_locale() or ""))
    if lang and user.locale != lang:
        user.locale = lang


def _remember(tx: Transaction, user: User) -> remembered.Issued | None:
    """A remembered device for this browser, when "don't ask again" was ticked on a challenge
    that offered it and answered in this sign-in (``tx.remember`` is set nowhere else), and the
    tenant still remembers browsers."""
    if not tx.remember:
        return None
    days = tenant_policy.tenant_policy(db.session(), g.tenant).remember_days
    return remembered.issue(db.session(), g.tenant.id, user, days) if days > 0 else None


def remember_offer(decision: Decision) -> int:
    """For how many days the challenge page offers to remember this browser (0: it does not)."""
    if not decision.rememberable:
        return 0
    return tenant_policy.tenant_policy(db.session(), g.tenant).remember_days


def recovery_to_offer(user: User) -> Factor | None:
    """The recovery factor to offer once a first factor is set up: one the tenant allows and
    the user holds none of (the registry says which factors recover an account)."""
    allowed = tenant_policy.tenant_policy(db.session(), g.tenant).allowed_factors
    held = {a.type for a in flow.enrolled(user)}
    return next((f for f in mfa.recovery() if f.type in allowed and f.type not in held), None)


# -- first steps: who signs in ----------------------------------------------------------------

def with_password(tx: Transaction, email: str, password: str,
                  passwords: Passwords) -> Outcome | WrongPassword:
    """The password step. Counted before it is checked (per account and per network); the same
    work and the same answer whether or not the account exists."""
    user = directory.find_user(db.session(), g.tenant, email, with_groups=True)
    # Wrong passwords for an account that has none are counted like an unknown address's:
    # they must not lock its owner out of the passkey they sign in with.
    counted = user if user is not None and user.password_hash else None
    key = account_key(g.tenant.id, counted.id if counted else None, email)
    per_ip, ip_key = flow.ip_guard()
    try:
        # Per account and per network, in one round trip; a refusal gives both back.
        attempt = flow.guard().reserve(key, flow.captcha_solved, also=(per_ip, ip_key))
    except Locked as locked:
        return LockedOut(locked.until, network=locked.key == ip_key)
    except CaptchaNeeded:
        return WrongPassword(flow.CAPTCHA_NEEDED, flow.captcha_widget(key))
    check = passwords.verify(user.password_hash if user else None, password)
    if not check.ok:
        client = client_of(tx)
        audit.record(db.session(), g.tenant.id, "user.sign_in_failed",
                     user_id=user.id if user else None, actor=email[:320],
                     client_id=client.client_id if client else None)
        try:
            flow.guard().after_failure(key, attempt)
        except Locked as locked:
            if locked.new:
                lockout.account_locked(db.session(), g.tenant, counted, email, locked.until,
                                       "password")
            return LockedOut(locked.until)
        return WrongPassword(INCORRECT, flow.captcha_widget(key))
    if check.new_hash:
        user.password_hash = check.new_hash
    transaction.first_step_proved(tx, user, ["pwd"], Primary.PASSWORD)
    _recognise(tx, user)
    # The failures before this one decide whether the challenge page shows a CAPTCHA: known
    # now, so that page need not ask the guard again (its answer is counted all the same).
    tx.captcha = attempt - 1 >= flow.guard().limits.captcha_after
    with _writes() as writes:
        flow.guard().refund(key, ip_key, pipe=writes)  # both attempts given back
        return advance(tx, user, list(user.authenticators), writes=writes)


def _recognise(tx: Transaction, user: User) -> None:
    """Does this browser hold a remembered device of ``user``? The policy decides what it
    stands in for (``Progress.remembered``)."""
    days = tenant_policy.tenant_policy(db.session(), g.tenant).remember_days
    device = remembered.find(db.session(), g.tenant.id, user.id, days) if days > 0 else None
    tx.remembered_device = device.id if device is not None else None


def with_login_link(user: User, methods: list[str], next_url: str) -> Outcome:
    """A login link an admin issued was spent for ``user``: a sign-in of its own, then to
    ``next_url``."""
    tx = transaction.begin(g.tenant.id, {}, next_url=next_url)
    transaction.first_step_proved(tx, user, methods, Primary.LOGIN_TOKEN)
    return advance(tx, user)


def with_new_password(tx: Transaction, user: User) -> Outcome:
    """A reset link was followed and a new password set (``recovery``): the password step is
    proved, as if typed on the sign-in page, and nothing more. The policy asks for the rest:
    a reset proves the mailbox, never a second factor. An account locked for failed attempts
    (wrong codes among them) stays locked: the new password is set, the sign-in waits."""
    until = flow.guard().locked_until(account_key(g.tenant.id, user.id, user.email))
    if until is not None:
        return LockedOut(until)
    transaction.first_step_proved(tx, user, ["pwd"], Primary.PASSWORD)
    tx.via_mailbox = True  # a link mailed to the account: no second step through that mailbox
    return advance(tx, user)


def with_upstream(tx: Transaction, user: User, methods: list[str], primary: Primary,
                  upstream: str) -> Outcome:
    """An upstream identity provider signed ``user`` in (``methods``: what it proved, as
    ``upstream_trust`` counts it)."""
    transaction.first_step_proved(tx, user, methods, primary)
    tx.upstream = upstream
    return advance(tx, user)


# -- step-ups: more than the session proved ---------------------------------------------------

def _stepping_up(session: sso.SSOSession, tx: Transaction) -> Transaction:
    """``tx`` made the step-up of ``session``: what it proved, and how its user first proved
    who they are (a login link or a trusted upstream counts as it did at the sign-in)."""
    # As the session has them: "mfa" next to "fed" is an upstream's proof (policy.levels).
    tx.user_id, tx.methods = session.user_id, list(session.amr)
    tx.primary, tx.step_up = sso.primary_of(session).value, True
    # The browser its sign-in remembered stands in only while it is remembered (not forgotten
    # since, by its owner or an administrator, nor past the tenant's days).
    tx.remembered_device = session.remembered_device if session.remembered_device is not None \
        and remembered.still_remembered(
            db.session(), g.tenant.id, session.user_id, session.remembered_device,
            tenant_policy.tenant_policy(db.session(), g.tenant).remember_days) else None
    return tx


def step_up_needed(params: dict, session: sso.SSOSession, user: User) -> Decision | None:
    """An authorization request from a signed-in browser: None when the session suffices,
    else what the policy asks more (a refusal included)."""
    draft = _stepping_up(session, Transaction("", g.tenant.id, "", params, 0))
    decision = decision_for(draft, user)
    return None if decision.need is Need.NOTHING else decision


def step_up(params: dict, session: sso.SSOSession, user: User,
            decision: Decision) -> AskFactor | AskSetup | PasswordFirst:
    """Start the step-up ``step_up_needed`` found (a challenge or a setup): stored from here on,
    sent on by the same decision, not asked twice."""
    tx = _stepping_up(session, transaction.begin(g.tenant.id, params))
    return advance(tx, user, decision=decision)


# Of what a session proved, how it began (password, upstream, login link): kept by the
# console's step-up, which asks for every other factor afresh.
FIRST_STEPS = frozenset({"pwd", "fed", "login_token"})


def step_up_for_console(session: sso.SSOSession, user: User, level: str | None,
                        back_to: str) -> Outcome:
    """The console's step-up: a fresh second step reaching ``level`` (or a factor set up),
    then back to ``back_to``. How the session began counts as it did (a login link is no
    password), but of what it proved only its first step is kept: the second must be proved
    again now, which is the point of a step-up that expires."""
    tx = _stepping_up(session, transaction.begin(g.tenant.id, {}, next_url=back_to))
    tx.methods = [m for m in tx.methods if m in FIRST_STEPS]
    tx.min_acr, tx.second_step = level, True
    return advance(tx, user)


# -- between the first step and the last ------------------------------------------------------

def signing_in(tx_id: str | None) -> tuple[Transaction, User, list[Authenticator]]:
    """The transaction ``tx_id`` of this browser, past its first step and not finished, with
    its user and all of the user's factors (one statement with the groups the policy reads).
    Raises TransactionGone otherwise."""
    tx = transaction.load(g.tenant.id, tx_id)
    if not tx.user_id or tx.authenticated:
        raise TransactionGone()
    user = db.session().get(User, tx.user_id, options=directory.SIGN_IN_READS)
    if user is None or user.tenant_id != g.tenant.id or _outdated(tx, user):
        raise TransactionGone()
    if tx.step_up:
        # A step-up goes on only while the session it steps up lives (a reset, a sign-out
        # everywhere, a deactivation ended it: so does the step-up).
        current = sso.current(g.tenant.id)
        if current is None or current.user_id != user.id:
            transaction.finish(tx)
            raise TransactionGone()
    return tx, user, list(user.authenticators)


def challenge(tx_id: str | None, requested: str | None,
              answer: MultiDict | None = None) -> ChallengePage | Outcome:
    """The challenge page, or the answer to it (``answer``: the posted form). The user picks
    among their factors, strongest first; only an answer to the factor that was actually
    challenged is checked, never one of another type."""
    tx, user, mine = signing_in(tx_id)
    if not user_status.may_sign_in(user.status):  # deactivated since the first step
        return advance(tx, user, mine)
    # Every step asks the policy again, with the user's factors as they are now.
    decision = decision_for(tx, user, mine)
    if decision.need is not Need.CHALLENGE:
        return advance(tx, user, mine, decision)
    available = {t: auths for t, auths in flow.challengeable(user, mine).items()
                 if t in decision.factors}
    if not available:
        return advance(tx, user, mine, decision)
    chosen = requested if requested in available else next(iter(available))
    factor = mfa.get(chosen)
    offer = remember_offer(decision)
    others = [mfa.get(t) for t in available if t != chosen]
    key = account_key(g.tenant.id, user.id, user.email)
    asked = tx.challenge if tx.challenge is not None and tx.challenge.type == chosen else None
    if answer is not None and requested == chosen and asked is None \
            and not factor.keeps_challenge:
        # Nothing was kept when its page was shown: what it showed is what it shows again.
        step = factor.challenge_begin(flow.context(user), available[chosen])
        asked = Challenge(chosen, step.state, step.context)
    if answer is not None and requested == chosen and asked is not None:
        with _writes() as writes:
            try:
                result = flow.verify(factor, user, available[chosen], asked.state, answer,
                                     pipe=writes)
            except Locked as locked:
                transaction.finish(tx, writes)
                return LockedOut(locked.until)
            except (WrongAnswer, NotNow) as e:
                return ChallengePage(tx, user, factor, others, asked.context, e.message,
                                     flow.captcha_widget(key), offer)
            if isinstance(result, Proof):
                tx.methods = tx.methods + result.methods
                tx.challenge = None
                # Only with a second step proved just now, on a page that offered it.
                tx.remember = bool(offer) and answer.get("remember") == "yes"
                return advance(tx, user, mine, writes=writes)
            tx.challenge = Challenge(chosen, result.state, result.context)
            transaction.save(tx, writes)
        return ChallengePage(tx, user, factor, others, result.context,
                             captcha=flow.captcha_widget(key), remember_days=offer)
    try:
        step = factor.challenge_begin(flow.context(user), available[chosen])
    except NotNow as e:
        return ChallengePage(tx, user, factor, others, {}, e.message, flow.captcha_widget(key),
                             offer)
    fresh = Challenge(chosen, step.state, step.context)
    if factor.keeps_challenge and tx.challenge != fresh:
        tx.challenge = fresh
        transaction.save(tx)
    metrics.MFA_CHALLENGES.labels(chosen).inc()
    return ChallengePage(tx, user, factor, others, step.context,
                         captcha=flow.captcha_widget(key, needed=tx.captcha), remember_days=offer)


def _enrolling(tx_id: str | None, posted: bool) -> tuple[Transaction, User, Decision] | Outcome:
    """(tx, user, decision) for a sign-in that must set up a factor *now*, else where it stands.

    The policy is asked again at every step, with the user's factors as they are now: a setup
    page opened while the account had no factor must not add one once the owner has set one
    up (a password alone would then plant a second factor: Keycloak CVE-2023-3597)."""
    tx, user, mine = signing_in(tx_id)
    if not user_status.may_sign_in(user.status):  # deactivated since the first step
        return advance(tx, user, mine)
    decision = decision_for(tx, user, mine)
    if decision.need is not Need.ENROLL:
        if posted:  # a setup or a skip sent after its reason was gone
            audit.record(db.session(), g.tenant.id, "mfa.enroll_refused", user_id=user.id,
                         actor=user.email, reason=decision.reason)
        return advance(tx, user, mine, decision)
    return tx, user, decision


def setup_choice(tx_id: str | None) -> SetupChoice | Outcome:
    found = _enrolling(tx_id, posted=False)
    if not isinstance(found, tuple):
        return found
    tx, user, decision = found
    return SetupChoice(tx, user, decision, [mfa.get(t) for t in decision.factors if mfa.get(t)])


def setup(tx_id: str | None, factor_type: str, answer: MultiDict | None = None,
          setup_id: str | None = None) -> SetupPage | Outcome:
    """A page of a factor's setup inside the sign-in, or its answer (``answer``, for the page
    ``setup_id`` showed). A factor the policy does not offer now goes back to the choice."""
    found = _enrolling(tx_id, posted=answer is not None)
    if not isinstance(found, tuple):
        return found
    tx, user, decision = found
    factor = mfa.get(factor_type)
    if factor is None or factor_type not in decision.factors:
        return AskSetup(tx)  # back to the choice
    if answer is None:
        step = factor.enroll_begin(flow.context(user))
        return _setup_page(tx, user, decision, factor, step)
    ongoing = tx.setup
    if ongoing is None or ongoing.type != factor.type or ongoing.id != setup_id:
        return AskSetup(tx)  # another page's answer, or one whose ceremony ended: start again

    def still_enrolling() -> bool:
        # Asked again under the user's lock, just before the insert: a factor the owner added
        # meanwhile (committed or about to be) ends this setup.
        now = decision_for(tx, user)
        return now.need is Need.ENROLL and factor.type in now.factors

    try:
        result = flow.enroll_finish(factor, user, ongoing.state, answer,
                                    still_allowed=still_enrolling)
    except Locked as locked:
        transaction.finish(tx)
        return LockedOut(locked.until)
    except flow.EnrollmentClosed:
        return advance(tx, user)
    except (WrongAnswer, NotNow) as e:
        return SetupPage(tx, user, decision, factor, flow.unseal(ongoing.page), ongoing, e.message)
    if isinstance(result, Step):
        return _setup_page(tx, user, decision, factor, result, ongoing.id)
    # The forced first setup counts as this sign-in's second step (the user just proved the
    # new factor); a reset is done once a factor is set up again.
    user.mfa_must_reenroll = False
    if factor.proves_address(result, user):
        verification.mark_verified(user, "code")
    tx.methods = tx.methods + factor.proved_by_enrollment(result)
    tx.setup, tx.offer_backup = None, True
    return advance(tx, user)


def _setup_page(tx: Transaction, user: User, decision: Decision, factor: Factor, step: Step,
                setup_id: str | None = None) -> SetupPage:
    tx.setup = Setup(setup_id or flow.new_ceremony_id(), factor.type, step.state,
                     flow.seal(step.context))
    transaction.save(tx)
    return SetupPage(tx, user, decision, factor, step.context, tx.setup)


def skip_setup(tx_id: str | None) -> Outcome:
    """Setup later, while the grace period allows it. A skip is counted when it is used, in one
    statement that also checks the limit: setup pages opened beforehand, or posted at once,
    cannot skip more often than allowed."""
    found = _enrolling(tx_id, posted=True)
    if not isinstance(found, tuple):
        return found
    tx, user, decision = found
    limit = tenant_policy.tenant_policy(db.session(), g.tenant).grace_skips
    used = directory.use_grace_skip(db.session(), user, limit) if decision.skippable else None
    if used is None:
        return AskSetup(tx)  # no skip left (or none offered): back to the setup
    tx.skipped = True
    audit.record(db.session(), g.tenant.id, "mfa.enrollment_skipped", user_id=user.id,
                 actor=user.email, skips_used=used)
    return advance(tx, user)

