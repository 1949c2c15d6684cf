"""The console's groups: list them with member counts, create one, add and remove members.

Groups are how a tenant rolls two-step verification out gradually (the policy can cover only
chosen groups). Every change goes through ``idp.admin``, which audits it with the admin as actor.
"""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from idp import admin, db
from idp.console.views import bp
from idp.directory import DirectoryError
from idp.models import Group, TenantPolicyRow, User
from idp.models.tenancy import user_groups

PAGE = 100  # members shown per page


def _policy_groups(session) -> set[str]:
    row = session.get(TenantPolicyRow, g.tenant.id)
    return set(row.groups) if row is not None and not row.everyone else set()


def _render_list(status: int = 200, error: str | None = None, name: str = ""):
    session = db.session()
    rows = session.execute(
        select(Group.id, Group.name, func.count(user_groups.c.user_id).label("members"))
        .outerjoin(user_groups, user_groups.c.group_id == Group.id)
        .where(Group.tenant_id == g.tenant.id)
        .group_by(Group.id, Group.name).order_by(Group.name).limit(1000)).all()
    return render_template("console/groups.html", groups=rows, in_policy=_policy_groups(session),
                           error=error, name=name), status


@bp.get("/groups", endpoint="groups")
def groups_list():
    return _render_list()


@bp.post("/groups")
def group_create():
    name = request.form.get("name", "").strip()[:200]
    try:
        group = admin.create_group(db.session(), g.tenant, name, g.admin.email)
    except DirectoryError as e:
        return _render_list(400, str(e), name)
    flash(_("Group %(name)s created.", name=group.name))
    return redirect(url_for("console.group", tenant=g.tenant.slug, group_id=group.id))


def _group(group_id: int) -> Group:
    group = db.session().get(Group, group_id)
    if group is None or group.tenant_id != g.tenant.id:
        abort(404, description=_("There is no such group in this organisation."))
    return group


def _render_group(group: Group, status: int = 200, error: str | None = None, email: str = ""):
    session = db.session()
    after = request.args.get("after", "")[:320]
    members_q = (select(User.id, User.email, User.name, User.role)
                 .join(user_groups, user_groups.c.user_id == User.id)
                 .where(user_groups.c.group_id == group.id))
    if after:
        members_q = members_q.where(User.email > after)
    members = session.execute(members_q.order_by(User.email).limit(PAGE + 1)).all()
    more = len(members) > PAGE
    members = members[:PAGE]
    total = session.scalar(select(func.count()).select_from(user_groups)
                           .where(user_groups.c.group_id == group.id))
    return render_template("console/group.html", group=group, members=members, total=total,
                           next_after=members[-1].email if more else None, after=after,
                           in_policy=group.name in _policy_groups(session), error=error,
                           email=email), status


@bp.get("/groups/<int:group_id>")
def group(group_id):
    return _render_group(_group(group_id))


@bp.post("/groups/<int:group_id>/members")
def group_add(group_id):
    target = _group(group_id)
    email = request.form.get("email", "").strip()[:320]
    if not email:
        return _render_group(target, 400, _("Enter the email of a user of this organisation."), email)
    try:
        user = admin.add_to_group(db.session(), g.tenant, target.name, email, g.admin.email)
    except DirectoryError as e:
        return _render_group(target, 400, str(e), email)
    flash(_("%(email)s is now in %(group)s.", email=user.email, group=target.name))
    return redirect(url_for("console.group", tenant=g.tenant.slug, group_id=target.id))


@bp.post("/groups/<int:group_id>/members/<int:user_id>/remove")
def group_remove(group_id, user_id):
    target = _group(group_id)
    session = db.session()
    user = session.get(User, user_id)
    if user is None or user.tenant_id != g.tenant.id or target not in user.groups:
        abort(404, description=_("That user is not in this group."))
    admin.remove_from_group(session, g.tenant, target.name, user.email, g.admin.email)
    flash(_("%(email)s is no longer in %(group)s.", email=user.email, group=target.name))
    return redirect(url_for("console.group", tenant=g.tenant.slug, group_id=target.id))
