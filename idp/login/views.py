"""The hosted pages of the sign-in journey: sign in, consent, signed-in home, sign out."""

from __future__ import annotations

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from sqlalchemy import select

from idp import audit, db
from idp.directory import find_user
from idp.login import session as sso
from idp.login import transaction
from idp.login.forms import ConsentForm, LoginForm, SignOutForm
from idp.models import Client, User
from idp.oidc.authorize import error_redirect
from idp.web import error_page, load_tenant

bp = Blueprint("login", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)

INCORRECT = "Incorrect email or password."


def _passwords():
    return current_app.extensions["idp.passwords"]


def _transaction(tx_id):
    if not tx_id:
        return None
    return transaction.load(g.tenant.id, tx_id)


def _expired():
    return error_page(400, "This sign-in has expired",
                      "Go back to the application and start signing in again.")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    try:
        tx = _transaction(form.tx.data if request.method == "POST" else request.args.get("tx"))
    except transaction.TransactionGone:
        return _expired()
    client = _client(tx)
    if request.method == "GET":
        form.tx.data = tx.id if tx else ""
        if tx and tx.params.get("login_hint"):
            form.email.data = tx.params["login_hint"][:320]
        return render_template("login/login.html", form=form, client=client, error=None)
    if not form.validate():
        error = "Enter your email and password." if not form.csrf_token.errors else \
            "This page expired. Please try again."
        return render_template("login/login.html", form=form, client=client, error=error), 400
    user = find_user(db.session(), g.tenant, form.email.data)
    # Same work and the same answer whether or not the account exists.
    check = _passwords().verify(user.password_hash if user else None, form.password.data)
    if not check.ok:
        audit.record(db.session(), g.tenant.id, "user.sign_in_failed",
                     user_id=user.id if user else None, actor=form.email.data[:320],
                     client_id=client.client_id if client else None)
        return render_template("login/login.html", form=form, client=client, error=INCORRECT), 200
    if check.new_hash:
        user.password_hash = check.new_hash
    sso.start(g.tenant.id, user.id, ["pwd"], "pwd")
    audit.record(db.session(), g.tenant.id, "user.signed_in", user_id=user.id, actor=user.email,
                 client_id=client.client_id if client else None, amr=["pwd"])
    if tx is None:
        return redirect(url_for("login.home", tenant=g.tenant.slug))
    tx.authenticated = True
    transaction.save(tx)
    return redirect(url_for("oidc.resume", tenant=g.tenant.slug, tx=tx.id))


@bp.route("/consent", methods=["GET", "POST"])
def consent():
    form = ConsentForm()
    try:
        tx = _transaction(form.tx.data if request.method == "POST" else request.args.get("tx"))
    except transaction.TransactionGone:
        return _expired()
    session = sso.current(g.tenant.id)
    if tx is None or session is None:
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
    if tx is None:
        return None
    return db.session().scalar(select(Client).where(
        Client.client_id == tx.params.get("client_id"), Client.tenant_id == g.tenant.id))
