"""The hosted pages of the sign-in journey: password, second factor, consent, home, sign out.

A sign-in is a login transaction (``idp.journey.transaction``) that moves through its steps;
only when every step is done does an SSO session exist. Until then the browser holds nothing
that reaches a code, the account page or userinfo.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_wtf.csrf import validate_csrf
from sqlalchemy.orm import joinedload
from wtforms import ValidationError

from idp import audit, db, directory, metrics, mfa, policy
from idp.addresses import normalise_email
from idp.directory import find_user
from idp.guard import CaptchaNeeded, Locked, account_key
from idp.journey import facts
from idp import lockout
from idp import password
from idp.journey import session as sso
from idp.journey import login_links as tokens
from idp.journey import transaction
from idp.login.forms import ConsentForm, LoginForm, SignOutForm
from idp.mfa import flow
from idp.mfa.base import NotNow, Proof, Step, WrongAnswer
from idp.models import User
from idp.oidc import authorize
from idp.oidc.authorize import error_redirect
from idp.oidc.server import ClientRef, query_client
from idp.policy import Decision, Need, Primary, Progress, amr_and_acr
from idp.untrusted import local_path
from idp.web import error_page, load_tenant
from idp import tenant_policy

bp = Blueprint("login", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)

INCORRECT = "Incorrect email or password."


def _passwords():
    return current_app.extensions["idp.passwords"]


def _expired():
    return error_page(400, "This sign-in has expired",
                      "Go back to the application and start signing in again.")


def locked_page(locked: Locked):
    """The lock's end in UTC, and in the reader's own time where the browser runs scripts."""
    until = datetime.fromtimestamp(locked.until, timezone.utc)
    return render_template("login/locked.html", until=until), 429


def safe_next(value: str | None) -> str:
    """A path of this tenant to go to after signing in; anything else goes home (no open redirect)."""
    return local_path(value, f"/t/{g.tenant.slug}/") or url_for("login.home", tenant=g.tenant.slug)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    try:
        if request.method == "POST":
            tx = transaction.load(g.tenant.id, form.tx.data)
        elif request.args.get("tx"):
            tx = transaction.load(g.tenant.id, request.args["tx"])
        else:
            tx = transaction.pending(g.tenant.id, {}, next_url=safe_next(request.args.get("next")))
    except transaction.TransactionGone:
        return _expired()
    except transaction.TooLarge:
        return error_page(400, "This sign-in link is too long",
                          "Go back to the page you came from and sign in from there.")
    client = _client(tx)
    if request.method == "GET":
        form.tx.data = tx.id
        if tx.params.get("login_hint"):
            form.email.data = tx.params["login_hint"][:320]
        return render_template("login/login.html", form=form, client=client, error=None)
    if not form.validate():
        error = "Enter your email and password." if not form.csrf_token.errors else \
            "This page expired. Please try again."
        return render_template("login/login.html", form=form, client=client, error=error), 400
    password.admit()  # before any attempt is counted: a full queue is a 503, not a failure
    email = normalise_email(form.email.data)
    user = find_user(db.session(), g.tenant, email, with_groups=True)
    key = account_key(g.tenant.id, user.id if user else None, email)
    per_ip, ip_key = flow.ip_guard()
    try:
        per_ip.reserve(ip_key)
    except Locked:
        return error_page(429, "Too many attempts",
                          "There were too many failed sign-ins from your network. "
                          "Wait a few minutes and try again.")
    try:
        attempt = flow.guard().reserve(key, flow.captcha_solved)
    except (Locked, CaptchaNeeded) as refused:
        per_ip.refund(ip_key)  # no password was checked: the network spent nothing either
        if isinstance(refused, Locked):
            return locked_page(refused)
        return render_template("login/login.html", form=form, client=client,
                               error=flow.CAPTCHA_NEEDED, captcha=flow.captcha_widget(key)), 400
    # Same work and the same answer whether or not the account exists.
    check = _passwords().verify(user.password_hash if user else None, form.password.data)
    if not check.ok:
        audit.record(db.session(), g.tenant.id, "user.sign_in_failed",
                     user_id=user.id if user else None, actor=email[:320],
                     client_id=client.client_id if client else None)
        try:
            flow.guard().after_failure(key, attempt)
        except Locked as locked:
            if locked.new:
                lockout.account_locked(db.session(), g.tenant, user, email,
                                       locked.until, "password")
            return locked_page(locked)
        return render_template("login/login.html", form=form, client=client, error=INCORRECT,
                               captcha=flow.captcha_widget(key)), 200
    flow.guard().refund(key, ip_key)  # both attempts given back, in one round trip
    if check.new_hash:
        user.password_hash = check.new_hash
    transaction.first_step_proved(tx, user.id, ["pwd"], Primary.PASSWORD.value)
    return next_step(tx, user)


@bp.route("/login/token/<token>", methods=["GET", "POST"])
def login_token(token):
    """Sign in with a one-time link an admin issued; the policy decides what else is needed."""
    session = db.session()

    def privileged_refused():
        return error_page(403, "This sign-in link cannot be used",
                          "This organisation does not allow sign-in links for administrator "
                          "accounts. Sign in with your password instead, or ask another "
                          "administrator for help.")

    if request.method == "GET":
        row = tokens.peek(session, g.tenant, token)
        if row is None:
            return error_page(400, "This sign-in link does not work",
                              "It was used already, has expired, or was copied incompletely. "
                              "Ask your administrator for a new one.")
        if not tokens.allowed_for(session, g.tenant, row.user):
            return privileged_refused()
        return render_template("login/token.html", user=row.user, token=token)
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return error_page(400, "This page expired", "Open the sign-in link again.")
    user_id = tokens.spend(session, g.tenant, token)
    user = session.get(User, user_id) if user_id else None
    if user is None:
        return error_page(400, "This sign-in link does not work",
                          "It was used already or has expired. Ask your administrator for a new one.")
    # Asked again at the moment it signs in: the user may have become an administrator since
    # the link was made, or the setting changed. A refused link stays spent.
    if not tokens.allowed_for(session, g.tenant, user):
        audit.record(session, g.tenant.id, "login_token.refused", user_id=user.id,
                     actor=user.email, reason="sign-in links for administrators are off")
        return privileged_refused()
    audit.record(session, g.tenant.id, "login_token.used", user_id=user.id, actor=user.email)
    tx = transaction.begin(g.tenant.id, {}, next_url=url_for("login.home", tenant=g.tenant.slug))
    transaction.first_step_proved(tx, user.id, [tokens.AMR], Primary.LOGIN_TOKEN.value)
    return next_step(tx, user)


def decision_for(tx: transaction.Transaction, user: User,
                 authenticators: list | None = None) -> Decision:
    session = db.session()
    try:
        requirements = facts.requirements(tx.params, _client(tx))
    except facts.BadClaimsParameter as e:
        return Decision(Need.REFUSE, str(e), error="invalid_request")
    if tx.notes.get("min_acr"):  # our own pages' floor (the console's step-up)
        requirements = replace(requirements, client_min_acr=tx.notes["min_acr"])
    if tx.notes.get("second_step"):  # the console's step-up: a second step, whatever the scope
        requirements = replace(requirements, second_step=True)
    progress = Progress(primary=primary_of(tx), methods=tuple(tx.methods),
                        enrollment_skipped=bool(tx.notes.get("skipped")))
    # No autoflush: what the journey has pending (audit events, a factor's last use) is no
    # group or factor it reads here, and goes with the request's next write.
    with session.no_autoflush:
        known = facts.user_facts(session, user, authenticators)
    return policy.decide(tenant_policy.tenant_policy(session, g.tenant), known, requirements, progress,
                         datetime.now(timezone.utc))


def primary_of(tx: transaction.Transaction) -> Primary:
    return Primary(tx.notes.get("primary", Primary.PASSWORD.value))


def step_up_of(session: sso.SSOSession, tx: transaction.Transaction) -> transaction.Transaction:
    """``tx`` made the step-up of ``session``: what it proved, and how its user first proved
    who they are (a login link or a trusted upstream counts as it did at the sign-in)."""
    # As the session has them: "mfa" next to "fed" is an upstream's proof (oidc.claims).
    tx.user_id, tx.methods = session.user_id, list(session.amr)
    tx.notes["primary"] = sso.primary_of(session).value
    tx.notes["step_up"] = True
    return tx


def next_step(tx: transaction.Transaction, user: User, authenticators: list | None = None):
    """Ask the policy what this sign-in still needs, and go there (``authenticators``: all of
    the user's, when the request has read them already)."""
    decision = decision_for(tx, user, authenticators)
    if decision.need is Need.NOTHING:
        return _complete(tx, user, _client(tx))
    if decision.need is Need.REFUSE:
        transaction.finish(tx)
        audit.record(db.session(), g.tenant.id, "user.sign_in_refused", user_id=user.id,
                     actor=user.email, reason=decision.reason)
        if tx.params.get("redirect_uri"):
            return error_redirect(tx.params["redirect_uri"], tx.params.get("state"),
                                  decision.error or "access_denied", decision.reason)
        return error_page(403, "Sign-in not possible", decision.reason_for_you)
    transaction.save(tx)
    if decision.need is Need.ENROLL:
        return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx.id))
    return redirect(url_for("login.second_factor", tenant=g.tenant.slug, tx=tx.id))


def _complete(tx: transaction.Transaction, user: User, client: ClientRef | None):
    """Every step is done: the SSO session starts, or a step-up extends it (a new sid either way)."""
    amr, acr = amr_and_acr(tx.methods)
    current = sso.current(g.tenant.id)
    if tx.notes.get("step_up") and current is not None and current.user_id == user.id:
        sso.step_up(g.tenant.id, amr, acr)
    else:
        sso.start(g.tenant.id, user.id, amr, acr, primary_of(tx))
    flow.guard().clear(account_key(g.tenant.id, user.id, user.email))
    audit.record(db.session(), g.tenant.id, "user.signed_in", user_id=user.id, actor=user.email,
                 client_id=client.client_id if client else None, amr=amr, acr=acr)
    if tx.notes.pop("offer_backup", False) and offers_backup_codes(user):
        return _backup_offer(tx, client)
    if not tx.params:
        transaction.finish(tx)
        return redirect(tx.next_url or url_for("login.home", tenant=g.tenant.slug))
    tx.authenticated = True
    # What completed it: the pending authorization is good for this session only (consent and
    # /authorize/resume check it), never for whoever signs in later in the same browser.
    tx.sid = sso.current(g.tenant.id).sid
    # Straight on to the authorization request (its code, or consent when asked for) in this
    # response: a redirect through /authorize/resume would cost the browser a round trip and
    # the server a request for the same answer.
    return authorize.proceed(tx.params, tx)


def offers_backup_codes(user: User) -> bool:
    """Does the tenant allow backup codes, and has this user none yet?"""
    allowed = tenant_policy.tenant_policy(db.session(), g.tenant).allowed_factors
    return "backup" in allowed and not any(a.type == "backup" for a in flow.enrolled(user))


def _backup_offer(tx: transaction.Transaction, client: ClientRef | None):
    """After a first method was set up during sign-in: offer backup codes. The sign-in is done
    already (the session exists); "Continue" goes on to the application as if asked nothing."""
    if tx.params:
        tx.authenticated = True
        tx.sid = sso.current(g.tenant.id).sid  # the pending authorization is this session's only
        transaction.save(tx)
        onward = url_for("oidc.resume", tenant=g.tenant.slug, tx=tx.id)
    else:
        transaction.finish(tx)
        onward = tx.next_url or url_for("login.home", tenant=g.tenant.slug)
    return render_template("login/backup_offer.html", onward=onward, client=client,
                           codes=url_for("account.add", tenant=g.tenant.slug,
                                         factor_type="backup", next=onward))


@bp.route("/login/verify", methods=["GET", "POST"])
def second_factor():
    """The challenge after the password: the user picks among their factors, strongest first."""
    tx_id = request.form.get("tx") if request.method == "POST" else request.args.get("tx")
    try:
        tx = transaction.load(g.tenant.id, tx_id)
    except transaction.TransactionGone:
        return _expired()
    # With the groups the policy reads once the answer is right: one statement, not two.
    user = (db.session().get(User, tx.user_id, options=[joinedload(User.groups)])
            if tx.user_id else None)
    if user is None or tx.authenticated or user.tenant_id != g.tenant.id:
        return _expired()
    mine = flow.enrolled(user)
    # Every step asks the policy again, with the user's factors as they are now.
    decision = decision_for(tx, user, mine)
    if decision.need is not Need.CHALLENGE:
        return next_step(tx, user, mine)
    available = {t: auths for t, auths in flow.challengeable(user, mine).items()
                 if t in decision.factors}
    if not available:
        return next_step(tx, user, mine)
    requested = request.values.get("factor")
    chosen = requested if requested in available else next(iter(available))
    factor = mfa.get(chosen)
    others = [mfa.get(t) for t in available if t != chosen]
    challenge = tx.notes.get("challenge")
    error = None
    # Only an answer for the factor that was actually challenged is checked (never another type).
    if request.method == "POST" and requested == chosen and challenge and challenge["type"] == chosen:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            return error_page(400, "This page expired", "Go back and try again.")
        try:
            result = flow.verify(factor, user, available[chosen], challenge["state"], request.form)
        except Locked as locked:
            transaction.finish(tx)
            return locked_page(locked)
        except (WrongAnswer, NotNow) as e:
            error = e.message
            step_context = challenge["context"]
        else:
            if isinstance(result, Proof):
                tx.methods = tx.methods + result.methods
                tx.notes.pop("challenge", None)
                return next_step(tx, user, mine)
            tx.notes["challenge"] = {"type": chosen, "state": result.state, "context": result.context}
            transaction.save(tx)
            step_context = result.context
    else:
        try:
            step = factor.challenge_begin(flow.context(user), available[chosen])
        except NotNow as e:
            step, error = None, e.message
        if step is not None:
            tx.notes["challenge"] = {"type": chosen, "state": step.state, "context": step.context}
            transaction.save(tx)
            step_context = step.context
            metrics.MFA_CHALLENGES.labels(chosen).inc()
        else:
            step_context = {}
    captcha = flow.captcha_widget(account_key(g.tenant.id, user.id, user.email))
    return render_template("login/second_factor.html", tx=tx, factor=factor, step=step_context,
                           others=others, error=error, user=user, client=_client(tx),
                           captcha=captcha), \
        (200 if error is None else 400)


def _signing_in(tx_id) -> tuple[transaction.Transaction, User] | None:
    """(tx, user) for a sign-in past its first step and not finished, else None."""
    try:
        tx = transaction.load(g.tenant.id, tx_id)
    except transaction.TransactionGone:
        return None
    user = db.session().get(User, tx.user_id) if tx.user_id else None
    if user is None or tx.authenticated or user.tenant_id != g.tenant.id:
        return None
    return tx, user


def _enrolling(tx_id):
    """(tx, user, decision) for a sign-in that must set up a factor *now*, a response that
    sends it where it stands instead, or None when it is gone.

    The policy is asked again at every step, with the user's factors as they are now: a
    setup page opened while the account had no factor must not add one once the owner has
    set one up (a password alone would then plant a second factor: Keycloak CVE-2023-3597)."""
    found = _signing_in(tx_id)
    if found is None:
        return None
    tx, user = found
    decision = decision_for(tx, user)
    if decision.need is not Need.ENROLL:
        if request.method == "POST":  # a setup or a skip sent after its reason was gone
            audit.record(db.session(), g.tenant.id, "mfa.enroll_refused", user_id=user.id,
                         actor=user.email, reason=decision.reason)
        return next_step(tx, user)
    return tx, user, decision


@bp.get("/login/setup")
def setup():
    """The enrollment wizard a policy forces before any code is issued."""
    found = _enrolling(request.args.get("tx"))
    if found is None:
        return _expired()
    if not isinstance(found, tuple):
        return found
    tx, user, decision = found
    factors = [mfa.get(t) for t in decision.factors if mfa.get(t)]
    if len(factors) == 1:  # nothing to choose: straight to the one method's setup
        return redirect(url_for("login.setup_factor", tenant=g.tenant.slug,
                                factor_type=factors[0].type, tx=tx.id))
    return render_template("login/setup.html", tx=tx, user=user, factors=factors, wanted=decision)


@bp.route("/login/setup/<factor_type>", methods=["GET", "POST"])
def setup_factor(factor_type):
    found = _enrolling(request.values.get("tx"))
    if found is None:
        return _expired()
    if not isinstance(found, tuple):
        return found
    tx, user, decision = found
    factor = mfa.get(factor_type)
    if factor is None or factor_type not in decision.factors:
        return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx.id))
    error = None
    if request.method == "GET":
        step = factor.enroll_begin(flow.context(user))
        ceremony = flow.save_ceremony(factor.type, user, tx.id, step.state)
        context = step.context
        tx.notes["setup_page"] = flow.seal(context)
        transaction.save(tx)
    else:
        try:
            validate_csrf(request.form.get("csrf_token"))
            ceremony = flow.load_ceremony(request.form.get("ceremony"), factor.type, user, tx.id)
        except (ValidationError, NotNow):
            return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx.id))

        def still_enrolling() -> bool:
            # Asked again under the user's lock, just before the insert: a factor the owner
            # added meanwhile (committed or about to be) ends this setup.
            now = decision_for(tx, user)
            return now.need is Need.ENROLL and factor.type in now.factors

        try:
            result = flow.enroll_finish(factor, user, ceremony, request.form,
                                        still_allowed=still_enrolling)
        except Locked as locked:
            transaction.finish(tx)
            return locked_page(locked)
        except flow.EnrollmentClosed:
            return next_step(tx, user)
        except (WrongAnswer, NotNow) as e:
            error, context = e.message, flow.unseal(tx.notes.get("setup_page"))
        else:
            if isinstance(result, Step):
                context = result.context
                tx.notes["setup_page"] = flow.seal(context)
                transaction.save(tx)
            else:
                # The forced first setup counts as this sign-in's second step (the user just
                # proved the new factor); a reset is done once a factor is set up again.
                user.mfa_must_reenroll = False
                tx.methods = tx.methods + factor.proved_by_enrollment(result)
                tx.notes.pop("setup_page", None)
                tx.notes["offer_backup"] = True
                return next_step(tx, user)
    return render_template("login/setup_factor.html", tx=tx, user=user, factor=factor,
                           step=context, error=error, ceremony=ceremony.id, wanted=decision), \
        (200 if error is None else 400)


@bp.post("/login/setup/skip")
def setup_skip():
    found = _enrolling(request.form.get("tx"))
    if found is None:
        return _expired()
    if not isinstance(found, tuple):
        return found
    tx, user, decision = found
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx.id))
    if not decision.skippable:
        return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx.id))
    # A skip is counted when it is used, in one statement that also checks the limit: setup
    # pages opened beforehand, or posted at once, cannot skip more often than allowed.
    limit = tenant_policy.tenant_policy(db.session(), g.tenant).grace_skips
    used = directory.use_grace_skip(db.session(), user, limit)
    if used is None:
        return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx.id))
    tx.notes["skipped"] = True
    audit.record(db.session(), g.tenant.id, "mfa.enrollment_skipped", user_id=user.id,
                 actor=user.email, skips_used=used)
    return next_step(tx, user)


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    form = ConsentForm()
    try:
        tx = transaction.load(g.tenant.id, form.tx.data if request.method == "POST" else request.args.get("tx"))
    except transaction.TransactionGone:
        return _expired()
    session = sso.current(g.tenant.id)
    if session is None or not tx.params:
        return _expired()
    if not authorize.bound_to(tx, session):
        # Someone else signed in (or the session changed) since this sign-in asked for
        # consent: what was proved belonged to that session, not to this one.
        transaction.finish(tx)
        return error_page(400, "This sign-in has expired",
                          "You signed in again while this page was open. Go back to the "
                          "application and start signing in again.")
    client = _client(tx)
    if request.method == "POST" and form.validate():
        if form.deny.data:
            transaction.finish(tx)
            return error_redirect(tx.params["redirect_uri"], tx.params.get("state"),
                                  "access_denied", "The user declined.")
        tx.consented = True
        transaction.save(tx)
        return redirect(url_for("oidc.resume", tenant=g.tenant.slug, tx=tx.id))
    form.tx.data = tx.id
    scopes = [s for s in tx.params.get("scope", "").split() if s != "openid"]
    user = db.session().get(User, session.user_id)
    return render_template("login/consent.html", form=form, client=client, scopes=scopes, user=user)


@bp.get("/")
def home():
    session = sso.current(g.tenant.id)
    user = db.session().get(User, session.user_id) if session else None
    return render_template("login/home.html", user=user, session=session, form=SignOutForm())


@bp.post("/signout")
def signout():
    form = SignOutForm()
    if not form.validate():
        return error_page(400, "This form has expired", "Reload the page and try again.")
    ended = sso.end(g.tenant.id)
    if ended:
        audit.record(db.session(), g.tenant.id, "user.signed_out", user_id=ended.user_id)
    return render_template("login/signed_out.html", tenant=g.tenant)


def _client(tx) -> ClientRef | None:
    """The portal this sign-in is for (the per-worker cached snapshot)."""
    if tx is None or not tx.params:
        return None
    found = query_client(tx.params.get("client_id"))
    return found.row if found else None
