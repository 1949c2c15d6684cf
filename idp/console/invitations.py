"""The console's invitations (``idp.admin.invitations``): invite someone from the users list,
and send a new link to, or withdraw, an invitation still waiting. Administrators only (the
gate: two-factor administrators open none of these)."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, request, url_for
from flask_babel import gettext as _

from idp import db, roles
from idp.admin import invitations
from idp.console.views import _target, bp
from idp.directory import DirectoryError
from idp.web import error_page

MAX_GROUPS = 50


def _groups(text: str) -> list[str]:
    """Group names, one a line or separated by commas."""
    names = [n.strip() for line in text.splitlines() for n in line.split(",")]
    return [n[:200] for n in names if n][:MAX_GROUPS]


@bp.post("/users/invite")
def invite():
    form = request.form
    role = form.get("role", roles.MEMBER)
    if role not in roles.ROLES:
        flash(_("Choose a role from the list."))
        return redirect(url_for("console.users", tenant=g.tenant.slug))
    email = form.get("email", "").strip()[:320]
    if not email or any(ord(c) < 32 for c in email):
        flash(_("Enter the email address of the person to invite."))
        return redirect(url_for("console.users", tenant=g.tenant.slug))
    try:
        invited = invitations.invite(db.session(), current_app.config["IDP"], g.tenant, email,
                                     g.admin.email, name=form.get("name", "").strip()[:200],
                                     role=role, groups=_groups(form.get("groups", "")[:10_000]))
    except DirectoryError as e:
        flash(_("Nobody was invited: %(reason)s.", reason=str(e).rstrip(".")))
        return redirect(url_for("console.users", tenant=g.tenant.slug))
    if invited.again:
        flash(_("A new invitation was mailed to %(email)s. Its link works for %(days)s days.",
                email=invited.user.email, days=invitations.LIFETIME.days))
    else:
        flash(_("An invitation was mailed to %(email)s. Its link works for %(days)s days.",
                email=invited.user.email, days=invitations.LIFETIME.days))
    return redirect(url_for("console.user", tenant=g.tenant.slug, user_id=invited.user.id))


@bp.post("/users/<int:user_id>/invitation/<what>")
def invitation(user_id, what):
    target = _target(user_id)
    if what not in ("resend", "revoke"):
        return error_page(404, _("Not found"), _("There is no such action."))
    if target.status != "invited":
        flash(_("%(email)s has no invitation waiting: they accepted it already.", email=target.email))
        return redirect(url_for("console.user", tenant=g.tenant.slug, user_id=target.id))
    if what == "resend":
        invitations.invite(db.session(), current_app.config["IDP"], g.tenant, target.email,
                           g.admin.email)
        flash(_("A new invitation was mailed to %(email)s; the earlier link no longer works.",
                email=target.email))
        return redirect(url_for("console.user", tenant=g.tenant.slug, user_id=target.id))
    email = target.email
    invitations.revoke(db.session(), g.tenant, email, g.admin.email)
    flash(_("The invitation of %(email)s was withdrawn, and the account removed.", email=email))
    return redirect(url_for("console.users", tenant=g.tenant.slug))
