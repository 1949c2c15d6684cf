"""The console's pages: users and their shields, one user's detail, and the actions on them.

The other areas (policy, groups, portals, report, audit) live in their own modules and add
their routes to the same blueprint. Every action is a POST with a CSRF token, goes through
``idp.admin`` (which audits it with actor and target), and answers with a redirect.
"""

from __future__ import annotations


from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from idp import admin, db, mfa, roles, store, user_status
from idp.console import gate
from idp.admin import user_list as users_list
from idp.directory import DirectoryError, RoleNotAllowedMfa
from idp.journey import remembered
from idp.mfa import flow
from idp.models import AuditEvent, Authenticator, Group, Token, User
from idp.policy import Mode
from idp.untrusted import local_path
from idp.web import error_page, load_tenant
from idp import tenant_policy


bp = Blueprint("console", __name__, url_prefix="/t/<tenant>/admin")
bp.url_value_preprocessor(load_tenant)
bp.before_request(gate.require_admin)

AREAS = [("console.users", "Users"), ("console.policy", "Policy"), ("console.groups", "Groups"),
         ("console.portals", "Portals"), ("console.upstreams", "Identity providers"),
         ("console.webhooks", "Webhooks"), ("console.branding", "Branding"),
         ("console.report", "MFA report"), ("console.audit", "Audit log")]


@bp.context_processor
def navigation():
    """The console's areas that exist (each area's module adds its own pages) and that the
    signed-in admin's role may open, and what the pages ask of roles."""
    role = g.admin.role if "admin" in g else None
    return {"areas": [(e, label) for e, label in AREAS
                      if e in current_app.view_functions and gate.may_open(role, e)],
            "may_act": lambda action, target: _may_act(action, target),
            "may_open": lambda endpoint: gate.may_open(role, endpoint),
            "role_label": roles.label, "status_label": user_status.label}


def _may_act(action: str, target) -> bool:
    """May the signed-in admin take ``action`` on ``target`` (a user or a list row)? Their own
    account's two-step verification, role and status are changed elsewhere, or by others."""
    if target.id == g.admin.id and action in SELF_REFUSED:
        return False
    return roles.may_act(g.admin.role, action, target.role)

ACTIONS = {
    "enforce": "Turn on two-step verification for {email}? They set it up at their next sign-in "
               "and cannot turn it off.",
    "exempt": "Turn off two-step verification for {email}? They will sign in with their "
              "password only.",
    "reset": "Reset two-step verification for {email}? All their methods are removed and they "
             "set one up again at their next sign-in.",
    "unlock": "Unlock {email} now?",
    "signout": "Sign {email} out everywhere? Their sessions end, their refresh tokens stop "
               "working, and browsers remembered for them ask for their second step again.",
    "login-token": "Create a one-time sign-in link for {email}? Whoever holds it can sign in as "
                   "them without their password. They are told by mail that you created it.",
    "deactivate": "Deactivate {email}? They are signed out everywhere now, their apps lose "
                  "access, and they cannot sign in until someone reactivates the account. "
                  "Their sign-in methods and groups are kept.",
    "reactivate": "Reactivate {email}? They can sign in again, with the sign-in methods and "
                  "groups they had.",
    "role": "Change the role of {email}? It applies from their next page.",
    "delete": "Delete {email} and everything they own? This cannot be undone.",
    "forget-browser": "Forget this browser of {email}? It asks for their second step at its "
                      "next sign-in.",
    "forget-browsers": "Forget every browser remembered for {email}? Each asks for their second "
                       "step at its next sign-in.",
}
# The events the user page lists: sign-ins, locks, and changes to the account.
USER_PAGE_EVENTS = ("user.signed_in", "user.sign_in_failed", "user.sign_in_refused",
                    "account.locked", "account.unlocked", "user.signed_in_upstream",
                    "user.deactivated", "user.reactivated", "user.role_changed",
                    "user.signed_out_everywhere", "user.browser_remembered",
                    "user.remembered_browser_used", "user.remembered_browser_forgotten",
                    "user.remembered_browsers_forgotten")
# What nobody does to their own account here (their own account page, or another admin, does).
SELF_REFUSED = frozenset({"enforce", "exempt", "reset", "deactivate", "delete", "role"})


@bp.get("")
def home():
    return redirect(url_for("console.users", tenant=g.tenant.slug))


@bp.get("/users")
def users():
    search = request.args.get("q", "")
    filters = users_list.Filters.from_args(request.args)
    groups = [(name, name) for name in db.session().scalars(
        select(Group.name).where(Group.tenant_id == g.tenant.id).order_by(Group.name))]
    rows, next_cursor = users_list.page(db.session(), store.get(), flow.guard(), _policy(),
                                        g.tenant.id, search, request.args.get("after") or None,
                                        filters=filters)
    return render_template("console/users.html", rows=rows, search=search, next_cursor=next_cursor,
                           actions=ACTIONS, filters=filters, groups=groups,
                           statuses=user_status.LABELS, mfa_choices=users_list.MFA_CHOICES,
                           roles=list(roles.LABELS.items()))


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
                                 AuditEvent.action.in_(USER_PAGE_EVENTS))
        .order_by(AuditEvent.id.desc()).limit(20)))
    rows, _ = users_list.page(db.session(), store.get(), flow.guard(), _policy(), g.tenant.id,
                              target.email, None, 1)
    shield = rows[0].shield if rows and rows[0].id == target.id else None
    return render_template("console/user.html", target=target, factors=factors, events=events,
                           shield=shield, mfa=mfa, actions=ACTIONS, roles=roles.LABELS,
                           remembered=remembered.of_user(db.session(), g.tenant.id, target.id))


@bp.get("/users/<int:user_id>/delete")
def confirm_delete(user_id):
    """Deleting cannot be undone: its own page says what goes, with or without scripts."""
    target = _target(user_id)
    if not _may_act("delete", target):
        return error_page(403, "Not allowed", _not_yours("delete", target))
    counts = {
        "factors": db.session().scalar(select(func.count()).select_from(Authenticator)
                                       .where(Authenticator.user_id == target.id)),
        "tokens": db.session().scalar(select(func.count()).select_from(Token).where(
            Token.user_id == target.id, Token.revoked_at.is_(None))),
    }
    return render_template("console/user_delete.html", target=target, counts=counts)


def _not_yours(action: str, target: User) -> str:
    """Why the signed-in admin may not take ``action`` on ``target``, in plain words."""
    if target.id == g.admin.id:
        return {"deactivate": "You cannot deactivate your own account. Ask another administrator.",
                "delete": "You cannot delete your own account. Ask another administrator.",
                "role": "You cannot change your own role. Ask another administrator.",
                }.get(action, "You cannot change your own two-step verification here; use your "
                              "account page.")
    if g.admin.role == roles.MFA_ADMIN and action in roles.MFA_ACTIONS:
        return ("Two-factor administrators cannot change an administrator's two-step "
                "verification or lock. Ask an administrator.")
    return gate.NOT_FOR_YOUR_ROLE


@bp.post("/users/<int:user_id>/<action>")
def act(user_id, action):
    target = _target(user_id)
    back = (local_path(request.form.get("back"), f"/t/{g.tenant.slug}/admin")
            or url_for("console.users", tenant=g.tenant.slug))
    if action not in ACTIONS:
        return error_page(404, "Not found", "There is no such action.")
    if target.id == g.admin.id and action in SELF_REFUSED:
        flash(_not_yours(action, target))
        return redirect(back)
    if not _may_act(action, target):
        return error_page(403, "Not allowed", _not_yours(action, target))
    if action == "delete" and request.form.get("confirm") != "yes":
        return redirect(url_for("console.confirm_delete", tenant=g.tenant.slug, user_id=target.id))
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
        elif action == "forget-browser":
            device = request.form.get("device", "")
            gone = remembered.revoke(session, g.tenant.id, target,
                                     int(device) if device.isascii() and device.isdigit() and len(device) < 19
                                     else None,
                                     actor)
            flash(f"{gone.description or 'The browser'} is forgotten: it asks {target.email} "
                  f"for their second step at its next sign-in." if gone is not None else
                  f"That browser is not remembered for {target.email} (any more).")
        elif action == "forget-browsers":
            count = admin.forget_browsers(session, g.tenant, target.email, actor)
            flash(f"{count} browser{'s' if count != 1 else ''} forgotten for {target.email}.")
        elif action == "unlock":
            admin.unlock(session, flow.guard(), g.tenant, target.email, actor)
            flash(f"{target.email} is unlocked.")
        elif action == "signout":
            admin.sign_out_everywhere(session, store.get(), g.tenant, target.email, actor)
            flash(f"{target.email} is signed out everywhere.")
        elif action == "deactivate":
            admin.deactivate(session, store.get(), g.tenant, target.email, actor)
            flash(f"{target.email} is deactivated: signed out everywhere, and cannot sign in "
                  "until reactivated.")
        elif action == "reactivate":
            admin.reactivate(session, g.tenant, target.email, actor)
            flash(f"{target.email} is active again and can sign in.")
        elif action == "role":
            role = request.form.get("role", "")
            if role not in roles.ROLES:
                flash("Choose a role from the list.")
                return redirect(back)
            admin.set_role(session, g.tenant, target.email, role, actor)
            flash(f"{target.email} is now: {roles.label(role)}.")
        elif action == "delete":
            admin.delete_user(session, store.get(), g.tenant, target.email, actor)
            flash(f"{target.email} was deleted, with their sign-in methods and sessions. The "
                  "audit log keeps what they did.")
            return redirect(url_for("console.users", tenant=g.tenant.slug))
        elif action == "login-token":
            settings = current_app.config["IDP"]
            issued = admin.create_login_token(session, g.tenant, target.email, settings.base_url,
                                              actor, settings=settings)
            return render_template("console/login_token.html", target=target, issued=issued)
    except admin.PrivilegedLinkRefused:
        flash(f"No sign-in link was created: {target.email} is an administrator, and this "
              "organisation does not allow sign-in links for administrators (whoever held one "
              "could use this console as them). The Policy page can allow them.")
    except admin.LastAdministrator:
        flash(f"{target.email} is the last active administrator of this organisation. Make "
              "someone else an administrator first.")
    except RoleNotAllowedMfa:
        flash("Two-factor administrators may not use two-step verification under this "
              "organisation's policy, and someone who manages other people's must use it. "
              "Tick “Two-factor administrators” under “Who may use two-step verification” on "
              "the Policy page first.", "policy-roles")
    except DirectoryError as e:
        flash(str(e))
    return redirect(back)
