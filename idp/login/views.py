"""The hosted pages of the sign-in: password, second factor, setup, consent, home, sign out.

What a sign-in needs next is the journey's to say (``idp.journey.signin``): each page hands
its input to one step and turns the outcome into a response (``respond``). Until every step is
done no SSO session exists, so the browser holds nothing that reaches a code, the account page
or userinfo.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import (Blueprint, current_app, g, make_response, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from idp import audit, db, i18n, password, user_status
from idp.addresses import normalise_email
from idp.journey import login_links as tokens
from idp.journey import session as sso
from idp.journey import passkeys as passkey_signin
from idp.journey import recovery, remembered, signin, transaction
from idp.journey.outcomes import (AccountClosed, AskFactor, AskSetup, ChallengePage, LockedOut,
                                  PasswordFirst, Refused, SetupChoice, SetupPage, SignedIn,
                                  WrongPassword)
from idp.login.forms import ConsentForm, LoginForm, SignOutForm
from idp.models import User
from idp.oidc import authorize
from idp.oidc.authorize import error_redirect
from idp.untrusted import local_path
from idp.web import error_page, expired_page, load_tenant_following

bp = Blueprint("login", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant_following)


def locked_page(until: float):
    """The lock's end in UTC, and in the reader's own time where the browser runs scripts."""
    return render_template("login/locked.html",
                           until=datetime.fromtimestamp(until, timezone.utc)), 429


def safe_next(value: str | None) -> str:
    """A path of this tenant to go to after signing in; anything else goes home (no open redirect)."""
    return local_path(value, f"/t/{g.tenant.slug}/") or url_for("login.home", tenant=g.tenant.slug)


def respond(outcome):
    """The response to a step's outcome: the one place a sign-in's next page is chosen. A
    sign-in that remembered its browser sends the browser its cookie with it."""
    response = _respond(outcome)
    if isinstance(outcome, SignedIn) and outcome.remembered is not None:
        response = remembered.set_cookie(make_response(response), outcome.remembered)
    return response


def _respond(outcome):
    if isinstance(outcome, SignedIn):
        tx = outcome.tx
        onward = url_for("oidc.resume", tenant=g.tenant.slug, tx=tx.id) if tx.params else \
            (tx.next_url or url_for("login.home", tenant=g.tenant.slug))
        if outcome.offer_backup:
            return render_template("login/backup_offer.html", onward=onward,
                                   client=signin.client_of(tx),
                                   codes=url_for("account.add", tenant=g.tenant.slug,
                                                 factor_type=outcome.recovery.type, next=onward))
        if not tx.params:
            return redirect(onward)
        # Straight on to the authorization request (its code, or consent when asked for) in
        # this response: a redirect through /authorize/resume would cost the browser a round
        # trip and the server a request for the same answer.
        return authorize.proceed(tx.params, tx)
    if isinstance(outcome, AskFactor):
        return redirect(url_for("login.second_factor", tenant=g.tenant.slug, tx=outcome.tx.id))
    if isinstance(outcome, AskSetup):
        return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=outcome.tx.id))
    if isinstance(outcome, Refused):
        tx, decision = outcome.tx, outcome.decision
        if tx.params.get("redirect_uri"):
            return error_redirect(tx.params["redirect_uri"], tx.params.get("state"),
                                  decision.error or "access_denied", decision.reason)
        return error_page(403, _("Sign-in not possible"), decision.reason_for_you)
    if isinstance(outcome, PasswordFirst):
        form = LoginForm(formdata=None)
        form.tx.data, form.email.data = outcome.tx.id, outcome.email
        return login_page(form, outcome.tx, outcome.message,
                          status=400 if outcome.refused else 200)
    if isinstance(outcome, AccountClosed):
        # Our own page, not an error sent to the portal: the person must read why.
        return error_page(403, outcome.title, outcome.message)
    if isinstance(outcome, LockedOut):
        if outcome.network:
            return error_page(429, _("Too many attempts"),
                              _("There were too many failed sign-ins from your network. "
                                "Wait a few minutes and try again."))
        return locked_page(outcome.until)
    if isinstance(outcome, ChallengePage):
        return render_template("login/second_factor.html", tx=outcome.tx, factor=outcome.factor,
                               step=outcome.context, others=outcome.others, error=outcome.error,
                               user=outcome.user, client=signin.client_of(outcome.tx),
                               captcha=outcome.captcha, remember_days=outcome.remember_days), \
            200 if outcome.error is None else 400
    if isinstance(outcome, SetupChoice):
        if len(outcome.factors) == 1:  # nothing to choose: straight to the one method's setup
            return redirect(url_for("login.setup_factor", tenant=g.tenant.slug,
                                    factor_type=outcome.factors[0].type, tx=outcome.tx.id))
        return render_template("login/setup.html", tx=outcome.tx, user=outcome.user,
                               factors=outcome.factors, wanted=outcome.decision)
    if isinstance(outcome, SetupPage):
        return render_template("login/setup_factor.html", tx=outcome.tx, user=outcome.user,
                               factor=outcome.factor, step=outcome.context, error=outcome.error,
                               ceremony=outcome.setup.id, wanted=outcome.decision), \
            200 if outcome.error is None else 400
    raise TypeError(f"no response for {outcome!r}")


def _csrf_ok() -> bool:
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return False
    return True


def _links() -> dict:
    """The sign-in page's other ways: reset by mail, sign-up (the tenant's settings)."""
    accounts = recovery.settings_of(g.tenant)
    return {"reset": accounts.self_service_reset, "signup": accounts.self_registration}


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    try:
        if request.method == "POST":
            tx = transaction.load(g.tenant.id, form.tx.data)
        elif request.args.get("tx"):
            tx = transaction.load(g.tenant.id, request.args["tx"])
        else:
            # ``reauth``: a page of ours that wants every step proved again (the account page's
            # changes): no remembered browser stands in. Asking for more is all it can do.
            tx = transaction.pending(g.tenant.id, {}, next_url=safe_next(request.args.get("next")),
                                     reauthenticate=request.args.get("reauth") == "1")
    except transaction.TransactionGone:
        return expired_page()
    except transaction.TooLarge:
        return error_page(400, _("This sign-in link is too long"),
                          _("Go back to the page you came from and sign in from there."))
    if request.method == "GET":
        form.tx.data = tx.id
        if tx.params.get("login_hint"):
            form.email.data = tx.params["login_hint"][:320]
        return login_page(form, tx)
    if not form.validate():
        error = _("Enter your email and password.") if not form.csrf_token.errors else \
            _("This page expired. Please try again.")
        return login_page(form, tx, error, status=400)
    password.admit()  # before any attempt is counted: a full queue is a 503, not a failure
    outcome = signin.with_password(tx, normalise_email(form.email.data), form.password.data,
                                   current_app.extensions["idp.passwords"])
    if isinstance(outcome, WrongPassword):
        return login_page(form, tx, outcome.message, captcha=outcome.captcha,
                          status=200 if outcome.message == signin.INCORRECT else 400)
    return respond(outcome)


def login_page(form: LoginForm, tx: transaction.Transaction, error: str | None = None, *,
               status: int = 200, captcha: dict | None = None):
    """The sign-in page: email and password, a passkey where they sign in here, the other
    ways (reset, sign-up, upstream providers)."""
    return render_template("login/login.html", form=form, client=signin.client_of(tx),
                           error=None if error is None else i18n.plain(error), captcha=captcha,
                           passkey=passkey_signin.sign_in_request(tx), **_links()), status


@bp.post("/login/passkey")
def login_passkey():
    """A passkey chosen on the sign-in page (its autofill, or its button): the first step."""
    form = LoginForm()
    try:
        tx = transaction.load(g.tenant.id, form.tx.data)
    except transaction.TransactionGone:
        return expired_page()
    if not _csrf_ok():
        form.tx.data = tx.id
        return login_page(form, tx, _("This page expired. Please try again."), status=400)
    return respond(passkey_signin.with_passkey(tx, request.form))


@bp.route("/login/token/<token>", methods=["GET", "POST"])
def login_token(token):
    """Sign in with a one-time link an admin issued; the policy decides what else is needed."""
    session = db.session()

    def privileged_refused():
        return error_page(403, _("This sign-in link cannot be used"),
                          _("This organisation does not allow sign-in links for administrator "
                            "accounts. Sign in with your password instead, or ask another "
                            "administrator for help."))

    row = tokens.peek(session, g.tenant, token)
    if row is not None and not tokens.owner_told(session, row):
        # Nothing spent: the same link works once the mail to its owner has left.
        return error_page(409, _("This sign-in link does not work yet"),
                          _("It starts working once %(email)s has been told about it by mail, "
                            "usually within a minute. Try again shortly.", email=row.user.email))
    if request.method == "GET":
        if row is None:
            return error_page(400, _("This sign-in link does not work"),
                              _("It was used already, has expired, or was copied incompletely. "
                                "Ask your administrator for a new one."))
        if not tokens.allowed_for(session, g.tenant, row.user):
            return privileged_refused()
        if not user_status.may_sign_in(row.user.status):  # the link proves who holds it
            return error_page(403, *user_status.refusal(row.user.status))
        return render_template("login/token.html", user=row.user, token=token)
    if not _csrf_ok():
        return error_page(400, _("This page expired"), _("Open the sign-in link again."))
    user_id = tokens.spend(session, g.tenant, token)
    user = session.get(User, user_id) if user_id else None
    if user is None:
        return error_page(400, _("This sign-in link does not work"),
                          _("It was used already or has expired. Ask your administrator for a new one."))
    # Asked again at the moment it signs in: the user may have become an administrator since
    # the link was made, or the setting changed. A refused link stays spent.
    if not tokens.allowed_for(session, g.tenant, user):
        audit.record(session, g.tenant.id, "login_token.refused", user_id=user.id,
                     actor=user.email, reason="sign-in links for administrators are off")
        return privileged_refused()
    audit.record(session, g.tenant.id, "login_token.used", user_id=user.id, actor=user.email)
    return respond(signin.with_login_link(user, [tokens.AMR],
                                          url_for("login.home", tenant=g.tenant.slug)))


@bp.route("/login/verify", methods=["GET", "POST"])
def second_factor():
    """The challenge after the first step: the user picks among their factors, strongest first."""
    posted = request.method == "POST"
    if posted and not _csrf_ok():
        return error_page(400, _("This page expired"), _("Go back and try again."))
    try:
        return respond(signin.challenge(request.values.get("tx"), request.values.get("factor"),
                                        request.form if posted else None))
    except transaction.TransactionGone:
        return expired_page()


@bp.get("/login/setup")
def setup():
    """The enrollment wizard a policy forces before any code is issued."""
    try:
        return respond(signin.setup_choice(request.args.get("tx")))
    except transaction.TransactionGone:
        return expired_page()


@bp.route("/login/setup/<factor_type>", methods=["GET", "POST"])
def setup_factor(factor_type):
    posted = request.method == "POST"
    tx_id = request.values.get("tx")
    try:
        if posted and not _csrf_ok():
            return redirect(url_for("login.setup", tenant=g.tenant.slug, tx=tx_id))
        return respond(signin.setup(tx_id, factor_type, request.form if posted else None,
                                    request.form.get("ceremony")))
    except transaction.TransactionGone:
        return expired_page()


@bp.post("/login/setup/skip")
def setup_skip():
    try:
        if not _csrf_ok():
            return redirect(url_for("login.setup", tenant=g.tenant.slug,
                                    tx=request.form.get("tx")))
        return respond(signin.skip_setup(request.form.get("tx")))
    except transaction.TransactionGone:
        return expired_page()


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    form = ConsentForm()
    try:
        tx = transaction.load(g.tenant.id, form.tx.data if request.method == "POST" else request.args.get("tx"))
    except transaction.TransactionGone:
        return expired_page()
    session, user = sso.signed_in(g.tenant.id)
    if session is None or not tx.params:
        return expired_page()
    if not authorize.bound_to(tx, session):
        # Someone else signed in (or the session changed) since this sign-in asked for
        # consent: what was proved belonged to that session, not to this one.
        transaction.finish(tx)
        return error_page(400, _("This sign-in has expired"),
                          _("You signed in again while this page was open. Go back to the "
                            "application and start signing in again."))
    client = signin.client_of(tx)
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
    return render_template("login/consent.html", form=form, client=client, scopes=scopes, user=user)


@bp.get("/")
def home():
    session, user = sso.signed_in(g.tenant.id)
    return render_template("login/home.html", user=user, session=session, form=SignOutForm())


@bp.post("/signout")
def signout():
    form = SignOutForm()
    if not form.validate():
        return error_page(400, _("This form has expired"), _("Reload the page and try again."))
    ended = sso.end(g.tenant.id)
    if ended:
        audit.record(db.session(), g.tenant.id, "user.signed_out", user_id=ended.user_id)
    return render_template("login/signed_out.html", tenant=g.tenant)
