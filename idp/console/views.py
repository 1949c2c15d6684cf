"""The console's pages: users and their shields, one user's detail, and the actions on them.

The other areas (policy, groups, portals, report, audit) live in their own modules and add
their routes to the same blueprint. Every action is a POST with a CSRF token, goes through
``idp.admin`` (which audits it with actor and target), and answers with a redirect.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l, ngettext
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
from idp.i18n import when
from idp.web import error_page, load_tenant
from idp import tenant_policy


bp = Blueprint("console", __name__, url_prefix="/t/<tenant>/admin")
bp.url_value_preprocessor(load_tenant)
bp.before_request(gate.require_admin)

AREAS = [("console.users", _l("Users")), ("console.policy", _l("Policy")),
         ("console.groups", _l("Groups")), ("console.portals", _l("Portals")),
         ("console.upstreams", _l("Identity providers")), ("console.webhooks", _l("Webhooks")),
         ("console.branding", _l("Branding")), ("console.protocol", _l("Portal security")),
         ("console.report", _l("MFA report")), ("console.audit", _l("Audit log"))]
# A user's status as the console names it (idp.user_status holds the English for programs).
STATUS_LABELS = {user_status.ACTIVE: _l("Active"), user_status.INVITED: _l("Invited"),
                 user_status.UNVERIFIED: _l("Signed up, not verified"),
                 user_status.DEACTIVATED: _l("Deactivated")}


def status_label(status: str) -> str:
    return str(STATUS_LABELS.get(status, status))


@bp.context_processor
def navigation():
    """The console's areas that exist (each area's module adds its own pages) and that the
    signed-in admin's role may open, and what the pages ask of roles."""
    role = g.admin.role if "admin" in g else None
    return {"areas": [(e, label) for e, label in AREAS
                      if e in current_app.view_functions and gate.may_open(role, e)],
            "may_act": lambda action, target: _may_act(action, target),
            "may_open": lambda endpoint: gate.may_open(role, endpoint),
            "role_label": roles.label, "status_label": status_label, "when": when}


def _may_act(action: str, target) -> bool:
    """May the signed-in admin take ``action`` on ``target`` (a user or a list row)? Their own
    account's two-step verification, role and status are changed elsewhere, or by others."""
    if target.id == g.admin.id and action in SELF_REFUSED:
        return False
    return roles.may_act(g.admin.role, action, target.role)

# Each action's confirmation question (console.js shows it in the page's dialog).
ACTIONS = {
    "enforce": _l("Turn on two-step verification for %(email)s? They set it up at their next "
                  "sign-in and cannot turn it off."),
    "exempt": _l("Turn off two-step verification for %(email)s? They will sign in with their "
                 "password only."),
    "reset": _l("Reset two-step verification for %(email)s? All their methods are removed and "
                "they set one up again at their next sign-in."),
    "unlock": _l("Unlock %(email)s now?"),
    "signout": _l("Sign %(email)s out everywhere? Their sessions end, their refresh tokens stop "
                  "working, and browsers remembered for them ask for their second step again."),
    "login-token": _l("Create a one-time sign-in link for %(email)s? Whoever holds it can sign "
                      "in as them without their password. They are told by mail that you "
                      "created it."),
    "deactivate": _l("Deactivate %(email)s? They are signed out everywhere now, their apps lose "
                     "access, and they cannot sign in until someone reactivates the account. "
                     "Their sign-in methods and groups are kept."),
    "reactivate": _l("Reactivate %(email)s? They can sign in again, with the sign-in methods and "
                     "groups they had."),
    "role": _l("Change the role of %(email)s? It applies from their next page."),
    "delete": _l("Delete %(email)s and everything they own? This cannot be undone."),
    "forget-browser": _l("Forget this browser of %(email)s? It asks for their second step at "
                         "its next sign-in."),
    "forget-browsers": _l("Forget every browser remembered for %(email)s? Each asks for their "
                          "second step at its next sign-in."),
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
                           statuses=STATUS_LABELS, mfa_choices=users_list.MFA_CHOICES,
                           roles=list(roles.LABELS.items()))


def _policy():
    return tenant_policy.tenant_policy(db.session(), g.tenant)


def _target(user_id: int) -> User:
    user = db.session().get(User, user_id)
    if user is None or user.tenant_id != g.tenant.id:
        abort(404, description=_("There is no such user in this organisation."))
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
    rows, _next = users_list.page(db.session(), store.get(), flow.guard(), _policy(), g.tenant.id,
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
        return error_page(403, _("Not allowed"), _not_yours("delete", target))
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
        if action == "deactivate":
            return _("You cannot deactivate your own account. Ask another administrator.")
        if action == "delete":
            return _("You cannot delete your own account. Ask another administrator.")
        if action == "role":
            return _("You cannot change your own role. Ask another administrator.")
        return _("You cannot change your own two-step verification here; use your account page.")
    if g.admin.role == roles.MFA_ADMIN and action in roles.MFA_ACTIONS:
        return _("Two-factor administrators cannot change an administrator's two-step "
                 "verification or lock. Ask an administrator.")
    return str(gate.NOT_FOR_YOUR_ROLE)


@bp.post("/users/<int:user_id>/<action>")
def act(user_id, action):
    target = _target(user_id)
    back = (local_path(request.form.get("back"), f"/t/{g.tenant.slug}/admin")
            or url_for("console.users", tenant=g.tenant.slug))
    if action not in ACTIONS:
        return error_page(404, _("Not found"), _("There is no such action."))
    if target.id == g.admin.id and action in SELF_REFUSED:
        flash(_not_yours(action, target))
        return redirect(back)
    if not _may_act(action, target):
        return error_page(403, _("Not allowed"), _not_yours(action, target))
    if action == "delete" and request.form.get("confirm") != "yes":
        return redirect(url_for("console.confirm_delete", tenant=g.tenant.slug, user_id=target.id))
    session, actor = db.session(), g.admin.email
    if action in ("enforce", "reset") and _policy().mode is Mode.DISABLED:
        # The template adds the way out: a link to the Policy page (never the command line).
        flash(_("Two-step verification is off in this organisation, so it cannot be turned on "
                "for one person."), "policy")
        return redirect(back)
    try:
        if action in ("enforce", "exempt", "reset"):
            admin.set_user_mfa(session, g.tenant, target.email, action, actor)
            flash({"enforce": _("Two-step verification is on for %(email)s.", email=target.email),
                   "exempt": _("Two-step verification is off for %(email)s.", email=target.email),
                   "reset": _("%(email)s sets up two-step verification again at next sign-in.",
                              email=target.email)}[action])
        elif action == "forget-browser":
            device = request.form.get("device", "")
            gone = remembered.revoke(session, g.tenant.id, target,
                                     int(device) if device.isascii() and device.isdigit() and len(device) < 19
                                     else None,
                                     actor)
            if gone is None:
                flash(_("That browser is not remembered for %(email)s (any more).",
                        email=target.email))
            elif gone.description:
                flash(_("%(browser)s is forgotten: it asks %(email)s for their second step at its "
                        "next sign-in.", browser=gone.description, email=target.email))
            else:
                flash(_("The browser is forgotten: it asks %(email)s for their second step at its "
                        "next sign-in.", email=target.email))
        elif action == "forget-browsers":
            count = admin.forget_browsers(session, g.tenant, target.email, actor)
            flash(ngettext("%(num)d browser forgotten for %(email)s.",
                           "%(num)d browsers forgotten for %(email)s.", count, email=target.email))
        elif action == "unlock":
            admin.unlock(session, flow.guard(), g.tenant, target.email, actor)
            flash(_("%(email)s is unlocked.", email=target.email))
        elif action == "signout":
            admin.sign_out_everywhere(session, store.get(), g.tenant, target.email, actor)
            flash(_("%(email)s is signed out everywhere.", email=target.email))
        elif action == "deactivate":
            admin.deactivate(session, store.get(), g.tenant, target.email, actor)
            flash(_("%(email)s is deactivated: signed out everywhere, and cannot sign in until "
                    "reactivated.", email=target.email))
        elif action == "reactivate":
            admin.reactivate(session, g.tenant, target.email, actor)
            flash(_("%(email)s is active again and can sign in.", email=target.email))
        elif action == "role":
            role = request.form.get("role", "")
            if role not in roles.ROLES:
                flash(_("Choose a role from the list."))
                return redirect(back)
            admin.set_role(session, g.tenant, target.email, role, actor)
            flash(_("%(email)s is now: %(role)s.", email=target.email, role=roles.label(role)))
        elif action == "delete":
            admin.delete_user(session, store.get(), g.tenant, target.email, actor)
            flash(_("%(email)s was deleted, with their sign-in methods and sessions. The audit "
                    "log keeps what they did.", email=target.email))
            return redirect(url_for("console.users", tenant=g.tenant.slug))
        elif action == "login-token":
            settings = current_app.config["IDP"]
            issued = admin.create_login_token(session, g.tenant, target.email, settings.base_url,
                                              actor, settings=settings)
            return render_template("console/login_token.html", target=target, issued=issued)
    except admin.PrivilegedLinkRefused:
        flash(_("No sign-in link was created: %(email)s is an administrator, and this "
                "organisation does not allow sign-in links for administrators (whoever held one "
                "could use this console as them). The Policy page can allow them.",
                email=target.email))
    except admin.LastAdministrator:
        flash(_("%(email)s is the last active administrator of this organisation. Make "
                "someone else an administrator first.", email=target.email))
    except RoleNotAllowedMfa:
        flash(_("Two-factor administrators may not use two-step verification under this "
                "organisation's policy, and someone who manages other people's must use it. "
                "Tick “Two-factor administrators” under “Who may use two-step verification” on "
                "the Policy page first."), "policy-roles")
    except DirectoryError as e:
        flash(str(e))
    return redirect(back)
