"""The hosted pages of the sign-in journey: password, second factor, consent, home, sign out.

A sign-in is a login transaction (``idp.login.transaction``) that moves through its steps;
only when every step is done does an SSO session exist. Until then the browser holds nothing
that reaches a code, the account page or userinfo.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_wtf.csrf import validate_csrf
from sqlalchemy import select
from wtforms import ValidationError

from idp import audit, db, mfa
from idp.directory import find_user
from idp.guard import Locked, account_key
from idp.login import session as sso
from idp.login import transaction
from idp.login.forms import ConsentForm, LoginForm, SignOutForm
from idp.mfa import flow
from idp.mfa.base import NotNow, Proof, WrongAnswer
from idp.models import Client, User
from idp.oidc.authorize import error_redirect
from idp.oidc.claims import amr_and_acr
from idp.web import error_page, load_tenant

bp = Blueprint("login", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)

INCORRECT = "Incorrect email or password."


def _passwords():
    return current_app.extensions["idp.passwords"]


def _expired():
    return error_page(400, "This sign-in has expired",
                      "Go back to the application and start signing in again.")


def locked_page(locked: Locked):
    until = datetime.fromtimestamp(locked.until, timezone.utc).strftime("%H:%M UTC")
    return error_page(429, "Account temporarily locked",
                      f"There were too many failed attempts, so this account is locked "
                      f"until {until}. Try again then.")


def safe_next(value: str | None) -> str:
    """A path of this tenant to go to after signing in; anything else goes home (no open redirect)."""
    home = url_for("login.home", tenant=g.tenant.slug)
    if not value or not value.startswith(f"/t/{g.tenant.slug}/") or "//" in value or "\\" in value:
        return home
    return value


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    try:
        if request.method == "POST":
            tx = transaction.load(g.tenant.id, form.tx.data)
        elif request.args.get("tx"):
            tx = transaction.load(g.tenant.id, request.args["tx"])
        else:
            tx = transaction.begin(g.tenant.id, {}, next_url=safe_next(request.args.get("next")))
    except transaction.TransactionGone:
        return _expired()
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
    user = find_user(db.session(), g.tenant, form.email.data)
    key = account_key(g.tenant.id, user.id if user else None, form.email.data.strip().lower())
    try:
        flow.guard().reserve(key)
    except Locked as locked:
        return locked_page(locked)
    # Same work and the same answer whether or not the account exists.
    check = _passwords().verify(user.password_hash if user else None, form.password.data)
    if not check.ok:
        audit.record(db.session(), g.tenant.id, "user.sign_in_failed",
                     user_id=user.id if user else None, actor=form.email.data[:320],
                     client_id=client.client_id if client else None)
        try:
            flow.guard().after_failure(key)
        except Locked as locked:
            return locked_page(locked)
        return render_template("login/login.html", form=form, client=client, error=INCORRECT), 200
    flow.guard().refund(key)
    if check.new_hash:
        user.password_hash = check.new_hash
    tx.user_id, tx.methods = user.id, ["pwd"]
    if flow.challengeable(user):
        transaction.save(tx)
        return redirect(url_for("login.second_factor", tenant=g.tenant.slug, tx=tx.id))
    return _complete(tx, user, client)


def _complete(tx: transaction.Transaction, user: User, client: Client | None):
    """Every step is done: the SSO session starts (a new sid), the journey goes on."""
    amr, acr = amr_and_acr(tx.methods)
    sso.start(g.tenant.id, user.id, amr, acr)
    flow.guard().clear(account_key(g.tenant.id, user.id, user.email))
    audit.record(db.session(), g.tenant.id, "user.signed_in", user_id=user.id, actor=user.email,
                 client_id=client.client_id if client else None, amr=amr, acr=acr)
    if not tx.params:
        transaction.finish(tx)
        return redirect(tx.next_url or url_for("login.home", tenant=g.tenant.slug))
    tx.authenticated = True
    transaction.save(tx)
    return redirect(url_for("oidc.resume", tenant=g.tenant.slug, tx=tx.id))


@bp.route("/login/verify", methods=["GET", "POST"])
def second_factor():
    """The challenge after the password: the user picks among their factors, strongest first."""
    tx_id = request.form.get("tx") if request.method == "POST" else request.args.get("tx")
    try:
        tx = transaction.load(g.tenant.id, tx_id)
    except transaction.TransactionGone:
        return _expired()
    user = db.session().get(User, tx.user_id) if tx.user_id else None
    if user is None or tx.authenticated or user.tenant_id != g.tenant.id:
        return _expired()
    available = flow.challengeable(user)
    if not available:
        return _complete(tx, user, _client(tx))
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
                return _complete(tx, user, _client(tx))
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
        else:
            step_context = {}
    return render_template("login/second_factor.html", tx=tx, factor=factor, step=step_context,
                           others=others, error=error, user=user, client=_client(tx)), \
        (200 if error is None else 400)


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


def _client(tx) -> Client | None:
    if tx is None or not tx.params:
        return None
    return db.session().scalar(select(Client).where(
        Client.client_id == tx.params.get("client_id"), Client.tenant_id == g.tenant.id))
