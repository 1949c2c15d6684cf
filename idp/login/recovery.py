"""The hosted pages of a forgotten password: ask for a link, follow it, set a new password, and
go on signing in (``idp.journey.recovery`` does the work; ``signin`` the rest of the sign-in).

The sign-in page's "Forgot your password?" carries its sign-in (``tx``): once the link is
followed in the same browser, the sign-in the portal was waiting for goes on, through the
second factor, to the portal. A link followed elsewhere signs in to the account page.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import (Blueprint, current_app, g, make_response, redirect, render_template, request,
                   url_for)
from flask_babel import gettext as _

from idp import db, user_status
from idp.guard import Locked, account_key
from idp.models import User
from idp.journey import invitations, recovery, signin, transaction, verification
from idp.journey import session as sso
from idp.login.views import expired_page, respond
from idp.oidc import authorize
from idp.mfa import flow
from idp.i18n import when as local_time
from idp.web import error_page, load_tenant, settings, tenant_path

bp = Blueprint("recovery", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)

RESUME_COOKIE = "idp_resume"  # the sign-in to go on with after the reset (a sealed one)

def _allowed() -> bool:
    return recovery.settings_of(g.tenant).self_service_reset


def _off():
    return error_page(404, _("Password reset is not available"),
                      _("This organisation does not reset passwords by mail. Ask your "
                        "administrator to set a new one for you."))


def _dead_link():
    return error_page(400, _("This link does not work"),
                      _("It was used already, has expired, or a newer one was sent. Ask for a new "
                        "link from the sign-in page."))


@bp.route("/login/forgot", methods=["GET", "POST"])
def forgot():
    if not _allowed():
        return _off()
    tx_id = (request.values.get("tx") or "")[:transaction.MAX_SEALED_LENGTH]
    email = (request.values.get("email") or "").strip()[:320]
    if request.method == "GET":
        return render_template("login/forgot.html", tx=tx_id, email=email, error=None,
                               captcha=None)
    if not email or "@" not in email or any(ord(c) < 32 or ord(c) == 127 for c in email):
        return render_template("login/forgot.html", tx=tx_id, email=email, captcha=None,
                               error=_("Enter the email address of your account.")), 400
    outcome = recovery.request_reset(email, flow.captcha_solved)
    if isinstance(outcome, recovery.CaptchaFirst):
        return render_template("login/forgot.html", tx=tx_id, email=email,
                               captcha=outcome.widget, error=flow.CAPTCHA_NEEDED), 400
    if isinstance(outcome, recovery.TooMany):
        return error_page(429, _("Too many requests"),
                          _("Several links were asked for this address or from your network "
                            "within the hour. Use the newest link you received, or try again "
                            "after %(time)s UTC.",
                            time=local_time(datetime.fromtimestamp(outcome.until, timezone.utc),
                                            "time")))
    response = make_response(render_template("login/forgot_sent.html", email=outcome.email,
                                             minutes=recovery.settings_of(g.tenant).reset_link_minutes))
    _keep_sign_in(response, tx_id)
    return response


def _keep_sign_in(response, tx_id: str) -> None:
    """Remember in this browser the sign-in that asked for the link (afresh, so it lives as long
    as a sign-in does from now)."""
    try:
        tx = transaction.load(g.tenant.id, tx_id) if tx_id else None
    except (transaction.TransactionGone, transaction.TooLarge):
        tx = None
    if tx is None or tx.user_id:
        response.delete_cookie(RESUME_COOKIE, path=tenant_path())
        return
    # Stored (its id is short; a sealed one may outgrow a cookie), for a sign-in's lifetime.
    fresh = transaction.begin(g.tenant.id, tx.params, next_url=tx.next_url)
    response.set_cookie(RESUME_COOKIE, fresh.id, path=tenant_path(), httponly=True,
                        samesite="Lax", secure=settings().secure_cookies,
                        max_age=settings().login_transaction_ttl)


def _resumed() -> transaction.Transaction:
    """The sign-in this browser started before asking for the link, else a new one that ends on
    the account page."""
    kept = request.cookies.get(RESUME_COOKIE, "")
    try:
        tx = transaction.load(g.tenant.id, kept) if 0 < len(kept) <= 64 else None
    except (transaction.TransactionGone, transaction.TooLarge):
        tx = None
    if tx is not None and (tx.user_id or tx.authenticated):
        tx = None  # only a sign-in nobody has proved anything in yet
    return tx or transaction.begin(g.tenant.id, {},
                                   next_url=url_for("account.index", tenant=g.tenant.slug))


def _chosen_password(template: str, user: User, token: str):
    """A page that sets a password from a link: (a response, None) to answer with (its form,
    or the form again with what is wrong), or (None, the new password, policy-checked)."""
    minimum = recovery.settings_of(g.tenant).password_min_length
    if request.method == "GET":
        return render_template(template, user=user, token=token, error=None,
                               min_length=minimum), None
    new = request.form.get("password", "")
    problem = recovery.password_problem(user, new, request.form.get("confirm", ""))
    if problem:
        return (render_template(template, user=user, token=token, error=problem,
                                min_length=minimum), 400), None
    return None, new


@bp.route("/login/reset/<token>", methods=["GET", "POST"])
def reset(token):
    if not _allowed():
        return _off()
    user = recovery.link_user(token)
    if user is None:
        return _dead_link()
    # Opening the link spends nothing (mail scanners open links): the new password does.
    answer, new = _chosen_password("login/reset.html", user, token)
    if answer is not None:
        return answer
    user = recovery.spend(token)
    if user is None:  # spent by another request meanwhile
        return _dead_link()
    recovery.set_password(user, new, why="reset")
    verification.mark_verified(user, "reset")  # following the link proved the mailbox
    outcome = signin.with_new_password(_resumed(), user)
    response = make_response(respond(outcome))
    response.delete_cookie(RESUME_COOKIE, path=tenant_path())
    db.session().flush()
    return response


# -- verifying an address ---------------------------------------------------------------------

@bp.route("/login/verify-email/<token>", methods=["GET", "POST"])
def verify_email(token):
    user = verification.link_user(token)
    if user is None:
        return error_page(400, _("This link does not work"),
                          _("It was used already, has expired, or a newer one was sent. Sign in "
                            "again to get a new one."))
    signed_up = user.status == user_status.UNVERIFIED
    if request.method == "GET":  # a button, not the GET: mail scanners open links
        return render_template("login/verify_email.html", user=user, token=token,
                               signed_up=signed_up, error=None)
    if signed_up and not _sign_up_password_ok(user):
        return render_template("login/verify_email.html", user=user, token=token,
                               signed_up=True, error=_("That is not the password chosen when "
                                                       "signing up.")), 400
    if verification.confirm(token) is None:
        return error_page(400, _("This link does not work"),
                          _("It was used already. Your address may be verified already."))
    waiting = request.cookies.get(verification.RESUME_COOKIE, "")
    if 0 < len(waiting) <= 64:
        response = redirect(url_for("oidc.resume", tenant=g.tenant.slug, tx=waiting))
    else:
        response = make_response(render_template("login/verified.html", user=user))
    response.delete_cookie(verification.RESUME_COOKIE, path=tenant_path())
    return response


def _sign_up_password_ok(user: User) -> bool:
    """The password chosen at sign-up, typed again when its address is verified (counted by
    the guard like any password)."""
    key = account_key(g.tenant.id, user.id, user.email)
    try:
        attempt = flow.guard().reserve(key)
    except Locked:
        return False
    if current_app.extensions["idp.passwords"].verify(user.password_hash,
                                                      request.form.get("password", "")).ok:
        flow.guard().refund(key)
        return True
    try:
        flow.guard().after_failure(key, attempt)
    except Locked:
        pass
    return False


@bp.post("/login/verify-email/again")
def verify_email_again():
    """"Send another link" on the page that holds an authorization (the sign-in it waits for)."""
    try:
        tx = transaction.load(g.tenant.id, request.form.get("tx"))
    except transaction.TransactionGone:
        return expired_page()
    session = sso.current(g.tenant.id)
    user = db.session().get(User, session.user_id) if session is not None else None
    if user is None or not authorize.bound_to(tx, session):
        return expired_page()
    return authorize.verification_page(user, tx, verification.send_link(user))


# -- accepting an invitation ------------------------------------------------------------------

@bp.route("/login/invitation/<token>", methods=["GET", "POST"])
def invitation(token):
    user = invitations.invited_user(token)
    if user is None:
        return error_page(400, _("This invitation does not work"),
                          _("It was used already, has expired, was withdrawn, or a newer one was "
                            "sent. Ask your administrator to invite you again."))
    answer, new = _chosen_password("login/invitation.html", user, token)
    if answer is not None:
        return answer
    user = invitations.accept(token, new)
    if user is None:  # accepted by another request meanwhile
        return error_page(400, _("This invitation does not work"),
                          _("It was used already. Sign in with the password you chose."))
    tx = transaction.begin(g.tenant.id, {}, next_url=url_for("account.index", tenant=g.tenant.slug))
    return respond(signin.with_new_password(tx, user))
