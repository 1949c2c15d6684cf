"""The sign-up page, where the tenant allows it (``idp.journey.signup`` does the work)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, render_template, request
from flask_babel import gettext as _

from idp import db, tenant_policy
from idp.journey import signup
from idp.mfa import flow
from idp.web import error_page, load_tenant

bp = Blueprint("signup", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)


def allowed() -> bool:
    return tenant_policy.account_settings(db.session(), g.tenant).self_registration


def _page(error: str | None = None, status: int = 200, field: str | None = None):
    domains = tenant_policy.account_settings(db.session(), g.tenant).registration_domains
    form = {k: request.form.get(k, "")[:320] for k in ("name", "email")}
    return render_template("login/signup.html", error=error, form=form, domains=domains,
                           captcha=current_app.extensions["idp.captcha"].widget(),
                           error_field=field,
                           captcha_note=_("One check that you are a person.")), status


@bp.route("/signup", methods=["GET", "POST"])
def sign_up():
    if not allowed():
        return error_page(404, _("Sign-up is not available"),
                          _("Accounts here are made by this organisation's administrators. Ask "
                            "yours for an invitation."))
    if request.method == "GET":
        return _page()
    outcome = signup.sign_up(request.form.get("name", "").strip(),
                             request.form.get("email", "").strip(),
                             request.form.get("password", ""), request.form.get("confirm", ""),
                             flow.captcha_solved)
    if isinstance(outcome, signup.Refused):
        return _page(outcome.message, outcome.status, outcome.field)
    return render_template("login/signup_sent.html", email=outcome.email)
