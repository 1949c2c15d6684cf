"""SCIM Groups (RFC 7643 4.2) over our groups, through ``idp.admin`` as the console's: a group's
members are users of the tenant, named by their SCIM ``id`` (groups in groups are refused:
the MFA policy and the console know only users as members). Renaming a group the MFA policy
names renames it there too; deleting one it names is refused (``admin.GroupInPolicy``)."""

from __future__ import annotations

from collections import defaultdict

from scim2_models import InvalidValueException, UniquenessException
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import admin
from idp.admin import provisioning
from idp.directory import AlreadyExists
from idp.models import Group, Tenant, User
from idp.models.tenancy import user_groups
from idp.scim.models import GROUP_SCHEMA
from idp.scim.models import Group as ScimGroup
from idp.scim.users import timestamp


# What ``shown`` reads of a group: a page selects these columns alone.
COLUMNS = (Group.id, Group.public_id, Group.external_id, Group.created_at, Group.updated_at,
           Group.name)


def member_ids(db: Session, group_ids: list[int]) -> dict[int, list[str]]:
    """Each group's members' SCIM ids, for a page of groups in one statement."""
    found: dict[int, list[str]] = defaultdict(list)
    if group_ids:
        rows = db.execute(select(user_groups.c.group_id, User.subject)
                          .join(User, User.id == user_groups.c.user_id)
                          .where(user_groups.c.group_id.in_(group_ids))
                          .order_by(User.id))
        for group_id, subject in rows:
            found[group_id].append(subject)
    return found


def shown(group, members: list[str] | None, base: str) -> dict:
    """``group`` as SCIM shows it, in its JSON form (``members`` None: left out, as a client
    asked); ``meta.version`` is left to the caller."""
    found: dict = {"schemas": [GROUP_SCHEMA], "id": group.public_id}
    if group.external_id:
        found["externalId"] = group.external_id
    meta = {"resourceType": "Group", "created": timestamp(group.created_at),
            "lastModified": timestamp(group.updated_at or group.created_at),
            "location": f"{base}/Groups/{group.public_id}"}
    found["meta"] = {k: v for k, v in meta.items() if v is not None}
    found["displayName"] = group.name
    if members:
        found["members"] = [{"value": subject, "$ref": f"{base}/Users/{subject}", "type": "User"}
                            for subject in members]
    return found


def _members(db: Session, tenant: Tenant, wanted: ScimGroup) -> list[User]:
    subjects = []
    for member in wanted.members or []:
        if member.type not in (None, "User"):
            raise InvalidValueException(detail="a group's members are users: groups in groups "
                                               "are not supported")
        if not member.value:
            raise InvalidValueException(detail="a member is named by its id (value)")
        subjects.append(member.value)
    subjects = list(dict.fromkeys(subjects))
    users = list(db.scalars(select(User).where(User.tenant_id == tenant.id,
                                               User.subject.in_(subjects)))) if subjects else []
    missing = set(subjects) - {u.subject for u in users}
    if missing:
        raise InvalidValueException(detail=f"no user of this organisation has the id "
                                           f"{sorted(missing)[0]!r}")
    return users


def create(db: Session, tenant: Tenant, wanted: ScimGroup, actor: str) -> Group:
    members = _members(db, tenant, wanted)
    try:
        group = admin.create_group(db, tenant, wanted.display_name or "", actor,
                                   external_id=wanted.external_id)
    except AlreadyExists as e:
        raise UniquenessException(detail=str(e)) from None
    provisioning.set_members(db, tenant, group, members, actor)
    return group


def replace(db: Session, tenant: Tenant, group: Group, wanted: ScimGroup, actor: str) -> None:
    members = _members(db, tenant, wanted)
    try:
        provisioning.update_group(db, tenant, group, actor, name=wanted.display_name or "",
                                  external_id=wanted.external_id)
    except AlreadyExists as e:
        raise UniquenessException(detail=str(e)) from None
    provisioning.set_members(db, tenant, group, members, actor)

