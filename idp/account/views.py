"""``{issuer}/account``: a user's own security page — list, add, rename, remove factors; the
browsers they are signed in on, each with its sign-out (``idp.account.browsers``); the browsers
remembered for their second step, each with its "Forget" (``idp.journey.remembered``); their
email address and whether it is verified.

Changing factors needs a recent proof at the user's current level (``SSOSession.proved_within``,
the console's freshness rule too): with a second factor enrolled, a session that proved only
the password can add or remove nothing (it is sent to sign in again, factor included). Whether
second factors are available, and whether the last one may go, is ``policy.standing``'s answer,
the one the console shows. Signing other browsers out needs only the session: it takes access
away, never gives it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import format_time
from flask_babel import gettext as _
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from idp import db, devices, directory, mfa, policy
from idp.account import browsers
from idp.guard import Locked, account_key
from idp.journey import facts, recovery, remembered, signin, verification
from idp.journey import passkeys as passkey_signin
from idp.journey import session as sso
from idp.login.views import locked_page
from idp.mfa import flow
from idp.mfa import webauthn as passkeys
from idp.mfa.base import NotNow, Step, WrongAnswer
from idp.models import Authenticator, User
from idp.policy import MfaStanding, level_at_least
from idp.untrusted import local_path
from idp.web import error_page, load_tenant
from idp import tenant_policy

bp = Blueprint("account", __name__, url_prefix="/t/<tenant>/account")
bp.url_value_preprocessor(load_tenant)


def _signed_in():
    return sso.signed_in(g.tenant.id)


def _to_sign_in():
    return redirect(url_for("login.login", tenant=g.tenant.slug,
                            next=url_for("account.index", tenant=g.tenant.slug)))


def _level_needed(mine: list[Authenticator]) -> str:
    """The level the user can reach, up to ``mfa``: a second factor counts once one is
    enrolled (a passkey's phr is not asked for: any of their second factors will do)."""
    return "mfa" if mfa.kinds().reaching({a.type for a in mine}, "mfa") else "pwd"


def may_change_factors(session, user) -> bool:
    """A recent proof (the sign-in, or a step-up since) of one of the user's factors, once
    there is one (a password alone never changes the factors of an account that has them), at
    the level they reach."""
    if not session.proved_within(sso.ACCOUNT_CHANGE_MINUTES):
        return False
    mine = flow.enrolled(user)
    theirs = {mfa.get(a.type).amr for a in mine if mfa.answerable(a)}
    if theirs and not theirs & set(session.amr):
        return False
    return level_at_least(session.acr, _level_needed(mine))


def _csrf_ok() -> bool:
    try:
        validate_csrf(request.form.get("csrf_token"))
        return True
    except ValidationError:
        return False


def mfa_status(user: User) -> MfaStanding:
    """The user's two-step verification as the policy stands it (``policy.standing``): whether
    they may use it here, and whether they may remove their last factor."""
    session = db.session()
    return policy.standing(tenant_policy.tenant_policy(session, g.tenant),
                           facts.user_facts(session, user))


@bp.get("")
def index():
    session, user = _signed_in()
    if user is None:
        return _to_sign_in()
    if g.get("idp_lang_chosen"):  # the switcher: their mail speaks it from now on
        signin.reads_in(user)
    status = mfa_status(user)
    factors = [(a, mfa.get(a.type)) for a in flow.enrolled(user) if mfa.get(a.type)]
    held = {a.type for a, _ in factors}
    addable = [f for f in mfa.ordered() if f.type in status.may_add
               and (f.several or f.type not in held)]
    # The way back in (backup codes): renewed once held; a first method set up and none yet,
    # the page says why it matters.
    recovery = next((f for f in mfa.recovery() if f.type in status.may_add), None)
    renew = recovery is not None and recovery.type in held
    devices = remembered.of_user(db.session(), g.tenant.id, user.id)
    return render_template("account/index.html", user=user, factors=factors, addable=addable,
                           may_change=may_change_factors(session, user), status=status,
                           passkey_first=passkey_signin.offered(),
                           may_remove_password=passkey_signin.may_remove_password(user),
                           recovery=recovery, renew_recovery=renew,
                           offer_recovery=recovery is not None and bool(factors) and not renew,
                           browsers=browsers.signed_in(session, user), remembered=devices,
                           this_remembered=remembered.this_browser(devices))


def _signed_in_posting():
    """(session, user) for a form of the page, else a response to return: the sign-in page,
    or "this page expired" for a form without its CSRF token."""
    session, user = _signed_in()
    if user is None:
        return None, _to_sign_in()
    if not _csrf_ok():
        return None, error_page(400, _("This page expired"), _("Go back to your account and try again."))
    return (session, user), None


@bp.post("/browsers/<public_id>/sign-out")
def sign_out_browser(public_id):
    found, response = _signed_in_posting()
    if response is not None:
        return response
    session, user = found
    gone = browsers.sign_out(session, user, public_id)
    if gone is None:
        return error_page(404, _("Not found"), _(
            "You are not signed in on that browser: it may have been signed out already. Go back "
            "to your account to see where you are signed in."))
    flash(_("%(browser)s is signed out.", browser=gone.device.shown()))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


@bp.post("/browsers/sign-out-others")
def sign_out_others():
    found, response = _signed_in_posting()
    if response is not None:
        return response
    browsers.sign_out_others(*found)
    flash(_("You are signed out everywhere else."))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


@bp.post("/remembered/<int:device_id>/forget")
def forget_browser(device_id):
    """Forget one remembered browser: it asks for the second step at its next sign-in. Like a
    sign-out, it takes away, so the session is enough."""
    found, response = _signed_in_posting()
    if response is not None:
        return response
    user = found[1]
    gone = remembered.revoke(db.session(), g.tenant.id, user, device_id, actor=user.email)
    if gone is None:
        return error_page(404, _("Not found"), _(
            "That browser is not remembered for you: it may have been forgotten already. Go back "
            "to your account to see which are."))
    if gone.description:
        flash(_("%(browser)s is forgotten: it asks for your second step at its next sign-in.",
                browser=devices.in_words(gone.description)))
    else:
        flash(_("The browser is forgotten: it asks for your second step at its next sign-in."))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


@bp.post("/remembered/forget-all")
def forget_browsers():
    found, response = _signed_in_posting()
    if response is not None:
        return response
    user = found[1]
    remembered.forget_all(db.session(), g.tenant.id, user.id, user.email, "user")
    flash(_("Every remembered browser is forgotten: each asks for your second step at its "
            "next sign-in."))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


@bp.post("/password")
def change_password():
    """A new password, with the current one: counted by the guard like a sign-in's (a session
    left open must not become a way to guess it). Every other browser is signed out."""
    found, response = _signed_in_posting()
    if response is not None:
        return response
    session, user = found
    if not user.password_hash and user.password_removed_at is not None:
        return _first_password(session, user)
    current, new = request.form.get("current", ""), request.form.get("password", "")
    key = account_key(g.tenant.id, user.id, user.email)
    try:
        attempt = flow.guard().reserve(key)
    except Locked as locked:
        return _password_page(user, _(
            "Too many wrong passwords: try again after %(time)s UTC.",
            time=format_time(datetime.fromtimestamp(locked.until, timezone.utc), "short")), 429,
            "current")
    if not user.password_hash or \
            not current_app.extensions["idp.passwords"].verify(user.password_hash, current).ok:
        try:
            flow.guard().after_failure(key, attempt)
        except Locked:
            pass  # said at the next try; the sessions stand
        return _password_page(user, _("Your current password is not right."), field="current")
    flow.guard().refund(key)
    return _new_password(session, user, new,
                         _("Your password is changed. You are signed out everywhere else."))


def _new_password(session, user: User, new: str, done: str):
    """Set ``new`` when the password policy accepts it (and its confirmation matches); every
    other browser is signed out."""
    problem = recovery.password_problem(user, new, request.form.get("confirm", ""))
    if problem:
        return _password_page(user, problem)
    recovery.set_password(user, new, why="change", end_sessions=False)
    browsers.sign_out_others(session, user)
    flash(done)
    return redirect(url_for("account.index", tenant=g.tenant.slug))


def _first_password(session, user: User):
    """A password for an account that has none (it signs in with a passkey): no current one to
    prove, so a recent sign-in is asked instead, as for any change of how one signs in."""
    if not may_change_factors(session, user):
        flash(_("For your security, sign in again before changing how you sign in."))
        return redirect(url_for("login.login", tenant=g.tenant.slug,
                                next=url_for("account.password_page", tenant=g.tenant.slug)))
    return _new_password(session, user, request.form.get("password", ""),
                         _("Your password is set. You can sign in with it or with your passkey. "
                           "You are signed out everywhere else."))


@bp.post("/password/remove")
def remove_password():
    """Sign in with a passkey only (where the organisation allows it): the password goes."""
    ok, response = _gate()
    if response is not None:
        return response
    session, user = ok
    if not _csrf_ok():
        return error_page(400, _("This page expired"), _("Go back to your account and try again."))
    if not passkey_signin.remove_password(user):
        flash(_("Your password cannot be removed: you need a passkey that signs you in by "
                "itself, and your organisation must allow it."))
    else:
        browsers.sign_out_others(session, user)
        flash(_("Your password is removed, and you are signed out everywhere else. Sign in with "
                "your passkey from now on; if you lose it, “Forgot your password?” on the "
                "sign-in page sets a new password by mail."))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


def _password_page(user: User, error: str, status: int = 400, field: str = "password"):
    """The page again with ``error``, tied to ``field`` ("current" or "password")."""
    return render_template("account/password.html", user=user, error=error,
                           error_field=field), status


@bp.get("/password")
def password_page():
    session, user = _signed_in()
    if user is None:
        return _to_sign_in()
    return render_template("account/password.html", user=user, error=None, error_field=None)


@bp.post("/verify-email")
def send_verification():
    found, response = _signed_in_posting()
    if response is not None:
        return response
    user = found[1]
    if verification.send_link(user):
        flash(_("We mailed a link to %(email)s. Open it to verify your address.", email=user.email))
    elif not user.email_verified:
        flash(_("A link went out a few minutes ago: look for it in your mail (and the spam "
                "folder)."))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


def _sign_in_again():
    """The sign-in page, asking for every step again: a remembered browser would give back the
    password-only session that sent the user here."""
    return redirect(url_for("login.login", tenant=g.tenant.slug, reauth=1,
                            next=url_for("account.index", tenant=g.tenant.slug)))


def _gate():
    """(session, user) when the user may change factors now, else a response to return."""
    session, user = _signed_in()
    if user is None:
        return None, _to_sign_in()
    if not may_change_factors(session, user):
        flash(_("For your security, sign in again before changing how you sign in."))
        return None, _sign_in_again()
    return (session, user), None


@bp.route("/add/<factor_type>", methods=["GET", "POST"])
def add(factor_type):
    factor = mfa.get(factor_type)
    if factor is None:
        return error_page(404, _("Not found"), _("There is no such kind of sign-in method."))
    ok, response = _gate()
    if response is not None:
        return response
    session, user = ok
    status = mfa_status(user)
    if factor.type not in status.may_add:
        return error_page(403, _("Not available"), status.reason_for_you if not status.available
                          else _("Your organisation does not allow %(method)s.",
                                 method=factor.in_sentence))
    error = None
    # Where to go once done: the sign-in that offered backup codes goes on to its application.
    onward = local_path(request.values.get("next"), f"/t/{g.tenant.slug}/")
    if request.method == "GET":
        # A passkey (WebAuthn that signs in by itself) is a kind of one type, chosen here.
        variant = passkeys.PASSKEY if factor.type == passkeys.WebAuthn.type \
            and request.args.get("kind") == passkeys.PASSKEY else None
        step = factor.enroll_begin(flow.context(user, variant))
        ceremony = flow.save_ceremony(factor.type, user, session.sid, step)
        context = step.context
    else:
        if not _csrf_ok():
            return error_page(400, _("This page expired"), _("Go back to your account and start again."))
        try:
            ceremony = flow.load_ceremony(request.form.get("ceremony"), factor.type, user, session.sid)
        except NotNow as e:
            return error_page(400, _("This setup expired"), e.message)
        try:
            # Asked again under the user's lock, just before the insert: a factor added
            # meanwhile by another session may change what this one is allowed.
            result = flow.enroll_finish(factor, user, ceremony.state, request.form,
                                        still_allowed=lambda: may_change_factors(session, user))
        except Locked as locked:
            return locked_page(locked.until)
        except flow.EnrollmentClosed:
            flash(_("For your security, sign in again before changing how you sign in."))
            return _sign_in_again()
        except (WrongAnswer, NotNow) as e:
            error, context = e.message, flow.unseal(ceremony.page)
        else:
            if isinstance(result, Step):
                context = result.context
                flow.save_ceremony(factor.type, user, session.sid, result, ceremony.id)
            else:
                flow.end_ceremony(ceremony.id)
                if not factor.several:
                    _remove_others(user, result)
                if factor.proves_address(result, user):
                    verification.mark_verified(user, "code")
                flash(_("Passkey added.") if (result.data or {}).get("passkey")
                      else _("%(method)s added.", method=factor.label))
                return redirect(onward or url_for("account.index", tenant=g.tenant.slug))
    return render_template("account/enroll.html", factor=factor, step=context, error=error,
                           ceremony=ceremony.id, user=user, onward=onward), \
        (200 if error is None else 400)


def _remove_others(user: User, keep: Authenticator) -> None:
    for auth in flow.enrolled(user):
        if auth.type == keep.type and auth.id != keep.id:
            db.session().delete(auth)


def _owned(user: User, authenticator_id: int) -> Authenticator | None:
    auth = db.session().get(Authenticator, authenticator_id)
    if auth is None or auth.user_id != user.id or auth.tenant_id != g.tenant.id:
        return None
    return auth


def _own_factor(authenticator_id: int):
    """(user, authenticator) for a change the user may make now, else (None, a response)."""
    ok, response = _gate()
    if response is not None:
        return None, response
    user = ok[1]
    if not _csrf_ok():
        return None, error_page(400, _("This page expired"), _("Go back to your account and try again."))
    auth = _owned(user, authenticator_id)
    if auth is None:
        return None, error_page(404, _("Not found"), _("There is no such sign-in method on your account."))
    return (user, auth), None


@bp.post("/factors/<int:authenticator_id>/rename")
def rename(authenticator_id):
    found, response = _own_factor(authenticator_id)
    if response is not None:
        return response
    user, auth = found
    name = (request.form.get("name") or "").strip()
    if not 1 <= len(name) <= 100:
        flash(_("A name needs 1 to 100 characters."))
        return redirect(url_for("account.index", tenant=g.tenant.slug))
    old, auth.name = auth.name, name
    flow.context(user).audit("mfa.renamed", factor=auth.type, authenticator_id=auth.id, old=old, new=name)
    flash(_("Renamed."))
    return redirect(url_for("account.index", tenant=g.tenant.slug))


@bp.post("/factors/<int:authenticator_id>/remove")
def remove(authenticator_id):
    found, response = _own_factor(authenticator_id)
    if response is not None:
        return response
    user, auth = found
    # Under the user's lock, as the last writer left it: a password removed at the same time
    # must not leave this passkey's removal going through too.
    directory.lock_user(db.session(), user)
    db.session().refresh(user)
    if passkey_signin.last_way_in(user, auth):
        flash(_("This passkey is how you sign in: your account has no password. Set a password "
                "or create another passkey first."))
        return redirect(url_for("account.index", tenant=g.tenant.slug))
    remaining = [a for a in flow.enrolled(user) if a.id != auth.id and mfa.get(a.type)
                 and mfa.get(a.type).usable(a)]
    if not remaining and not mfa_status(user).may_turn_off:
        flash(_("Your organisation requires two-step verification, so your last method cannot "
                "be removed. Add another one first."))
        return redirect(url_for("account.index", tenant=g.tenant.slug))
    flow.context(user).audit("mfa.removed", factor=auth.type, authenticator_id=auth.id, name=auth.name)
    db.session().delete(auth)
    flash(_("%(name)s removed.", name=auth.name))
    return redirect(url_for("account.index", tenant=g.tenant.slug))
