"""Groups and their members. Reads need ``admin:read``, changes ``admin:write``. A group is
named by its public id here, as in SCIM (names may hold any character); its members by
their public ids."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import func, select

from idp import admin, db
from idp.api import models
from idp.api.base import after_cursor, bp, current_caller, cursor_of, not_found, operation
from idp.api.users import user_by_id
from idp.models import Group, User, user_groups

TAGS = ("groups",)


def _group(group_id: str) -> Group:
    if len(group_id) > 64 or "\x00" in group_id:
        raise not_found("group")
    group = db.session().scalar(select(Group).where(Group.public_id == group_id,
                                                    Group.tenant_id == g.tenant.id))
    if group is None:
        raise not_found("group")
    return group


def _members(group: Group) -> int:
    return db.session().scalar(select(func.count()).select_from(user_groups)
                               .where(user_groups.c.group_id == group.id))


@bp.get("/groups")
@operation("admin:read", ok={"HTTP_200": models.Groups}, tags=TAGS)
def list_groups():
    """List groups

    Every group of the tenant with its number of members, by name."""
    counts = (select(Group.public_id, Group.name, func.count(user_groups.c.user_id))
              .outerjoin(user_groups, user_groups.c.group_id == Group.id)
              .where(Group.tenant_id == g.tenant.id).group_by(Group.id, Group.public_id, Group.name)
              .order_by(Group.name))
    return models.Groups(items=[models.Group(id=i, name=n, members=c)
                                for i, n, c in db.session().execute(counts)])


@bp.post("/groups")
@operation("admin:write", body=models.GroupCreate, ok={"HTTP_201": models.Group}, tags=TAGS,
           idempotent_create=True)
def create_group():
    """Create a group

    A name already taken is a 409. Needs `admin:write`. Honours `Idempotency-Key`."""
    body: models.GroupCreate = request.context.json
    group = admin.create_group(db.session(), g.tenant, body.name, current_caller().actor)
    return models.Group(id=group.public_id, name=group.name, members=0), 201


@bp.get("/groups/<group_id>")
@operation("admin:read", ok={"HTTP_200": models.Group}, tags=TAGS)
def get_group(group_id):
    """Get a group"""
    group = _group(group_id)
    return models.Group(id=group.public_id, name=group.name, members=_members(group))


@bp.delete("/groups/<group_id>")
@operation("admin:write", ok={"HTTP_204": None}, tags=TAGS)
def delete_group(group_id):
    """Delete a group

    Its members stay, outside it. A group the sign-in policy names is a 409 (take it out of
    the policy first). Needs `admin:write`."""
    group = _group(group_id)
    admin.delete_group(db.session(), g.tenant, group, current_caller().actor)
    return "", 204


@bp.get("/groups/<group_id>/members")
@operation("admin:read", query=models.MemberQuery, ok={"HTTP_200": models.Members}, tags=TAGS)
def list_members(group_id):
    """List a group's members

    In the order they were created, `limit` a page, `next_cursor` continues."""
    group = _group(group_id)
    q: models.MemberQuery = request.context.query
    query = (select(User).join(user_groups, user_groups.c.user_id == User.id)
             .where(user_groups.c.group_id == group.id, User.tenant_id == g.tenant.id)
             .order_by(User.id).limit(q.limit + 1))
    after = after_cursor(q.cursor)
    if after is not None:
        query = query.where(User.id > after)
    users = list(db.session().scalars(query))
    more = len(users) > q.limit
    users = users[:q.limit]
    return models.Members(items=[models.Member(id=u.subject, email=u.email, name=u.name)
                                 for u in users],
                          next_cursor=cursor_of(users[-1].id) if more else None)


@bp.put("/groups/<group_id>/members/<user_id>")
@operation("admin:write", ok={"HTTP_204": None}, tags=TAGS)
def add_member(group_id, user_id):
    """Add a member

    Adding someone already in the group changes nothing. Needs `admin:write`."""
    group, user = _group(group_id), user_by_id(user_id)
    admin.add_to_group(db.session(), g.tenant, group.name, user.email, current_caller().actor)
    return "", 204


@bp.delete("/groups/<group_id>/members/<user_id>")
@operation("admin:write", ok={"HTTP_204": None}, tags=TAGS)
def remove_member(group_id, user_id):
    """Remove a member

    Needs `admin:write`."""
    group, user = _group(group_id), user_by_id(user_id)
    admin.remove_from_group(db.session(), g.tenant, group.name, user.email,
                            current_caller().actor)
    return "", 204
