"""The console's pages: users and their shields, one user's detail, and the actions on them.

The other areas (policy, groups, portals, report, audit) live in their own modules and add
their routes to the same blueprint. Every action is a POST with a CSRF token, goes through
``idp.admin`` (which audits it with actor and target), and answers with a redirect.
"""

from __future__ import annotations


from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from idp import admin, audit, db, mfa, store
from idp.console import gate
from idp.console import users as users_list
from idp.directory import DirectoryError
from idp.journey import session as sso
from idp.mfa import flow
from idp.models import AuditEvent, Authenticator, Token, User
from idp.models.base import utcnow
from idp.policy import Mode
from idp.untrusted import local_path
from idp.web import error_page, load_tenant
from idp import tenant_policy


bp = Blueprint("console", __name__, url_prefix="/t/<tenant>/admin")
bp.url_value_preprocessor(load_tenant)
bp.before_request(gate.require_admin)

AREAS = [("console.users", "Users"), ("console.policy", "Policy"), ("console.groups", "Groups"),
         ("console.portals", "Portals"), ("console.upstreams", "Identity providers"),
         ("console.report", "MFA report"), ("console.audit", "Audit log")]


@bp.context_processor
def navigation():
    """The console's areas that exist (each area's module adds its own pages)."""
    return {"areas": [(e, label) for e, label in AREAS if e in current_app.view_functions]}

ACTIONS = {
    "enforce": "Turn on two-step verification for {email}? They set it up at their next sign-in "
               "and cannot turn it off.",
    "exempt": "Turn off two-step verification for {email}? They will sign in with their "
              "password only.",
    "reset": "Reset two-step verification for {email}? All their methods are removed and they "
             "set one up again at their next sign-in.",
    "unlock": "Unlock {email} now?",
    "signout": "Sign {email} out everywhere? Their sessions end and their refresh tokens stop "
               "working.",
    "login-token": "Create a one-time sign-in link for {email}? Whoever holds it can sign in as "
                   "them without their password. They are told by mail that you created it.",
}


@bp.get("")
def home():
    return redirect(url_for("console.users", tenant=g.tenant.slug))


@bp.get("/users")
def users():
    search = request.args.get("q", "")
    rows, next_cursor = users_list.page(db.session(), store.get(), flow.guard(), _policy(),
                                        g.tenant.id, search, request.args.get("after") or None)
    return render_template("console/users.html", rows=rows, search=search, next_cursor=next_cursor,
                           actions=ACTIONS)


def _policy():
    return tenant_policy.tenant_policy(db.session(), g.tenant)


def _target(user_id: int) -> User:
    user = db.session().get(User, user_id)
    if user is None or user.tenant_id != g.tenant.id:
        abort(404, description="There is no such user in this organisation.")
    return user


@bp.get("/users/<int:user_id>")
def user(user_id):
    target = _target(user_id)
    factors = list(db.session().scalars(
        select(Authenticator).where(Authenticator.user_id == target.id).order_by(Authenticator.id)))
    events = list(db.session().scalars(
        select(AuditEvent).where(AuditEvent.tenant_id == g.tenant.id, AuditEvent.user_id == target.id,
                                 AuditEvent.action.in_(("user.signed_in", "user.sign_in_failed",
                                                        "account.locked", "account.unlocked",
                                                        "user.signed_in_upstream")))
        .order_by(AuditEvent.id.desc()).limit(20)))
    rows, _ = users_list.page(db.session(), store.get(), flow.guard(), _policy(), g.tenant.id,
                              target.email, None, 1)
    shield = rows[0].shield if rows and rows[0].id == target.id else None
    return render_template("console/user.html", target=target, factors=factors, events=events,
                           shield=shield, mfa=mfa, actions=ACTIONS)


@bp.post("/users/<int:user_id>/<action>")
def act(user_id, action):
    target = _target(user_id)
    back = (local_path(request.form.get("back"), f"/t/{g.tenant.slug}/admin")
            or url_for("console.users", tenant=g.tenant.slug))
    if action not in ACTIONS:
        return error_page(404, "Not found", "There is no such action.")
    if target.id == g.admin.id and action in ("enforce", "exempt", "reset"):
        flash("You cannot change your own two-step verification here; use your account page.")
        return redirect(back)
    session, actor = db.session(), g.admin.email
    if action in ("enforce", "reset") and _policy().mode is Mode.DISABLED:
        # The template adds the way out: a link to the Policy page (never the command line).
        flash("Two-step verification is off in this organisation, so it cannot be turned on for "
              "one person.", "policy")
        return redirect(back)
    try:
        if action in ("enforce", "exempt", "reset"):
            admin.set_user_mfa(session, g.tenant, target.email, action, actor)
            flash({"enforce": f"Two-step verification is on for {target.email}.",
                   "exempt": f"Two-step verification is off for {target.email}.",
                   "reset": f"{target.email} sets up two-step verification again at next sign-in."}[action])
        elif action == "unlock":
            admin.unlock(session, flow.guard(), g.tenant, target.email, actor)
            flash(f"{target.email} is unlocked.")
        elif action == "signout":
            ended = sso.end_all(target.id)
            revoked = session.execute(
                Token.__table__.update()
                .where(Token.user_id == target.id, Token.revoked_at.is_(None))
                .values(revoked_at=utcnow())).rowcount
            audit.record(session, g.tenant.id, "user.signed_out_everywhere", actor=actor,
                         user_id=target.id, sessions=ended, tokens=revoked)
            flash(f"{target.email} is signed out everywhere.")
        elif action == "login-token":
            settings = current_app.config["IDP"]
            issued = admin.create_login_token(session, g.tenant, target.email, settings.base_url,
                                              actor, settings=settings)
            return render_template("console/login_token.html", target=target, issued=issued)
    except admin.PrivilegedLinkRefused:
        flash(f"No sign-in link was created: {target.email} is an administrator, and this "
              "organisation does not allow sign-in links for administrators (whoever held one "
              "could use this console as them). The Policy page can allow them.")
    except DirectoryError as e:
        flash(str(e))
    return redirect(back)
