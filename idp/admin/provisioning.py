"""What a provisioning client (SCIM) and admins change of people and groups beyond their life
and roles: a user's address, names and the client's own id for them; a group's name, the
client's id for it, its members, and deleting it. Each change is audited with its actor (the
changed fields' names, never their values beside the address); callers commit.

- **A new address** is the account's sign-in name: it must be free in the tenant, and it is
  not proved until its owner follows a link to it (``email_verified`` goes back to False).
- **A renamed group** stays in the MFA policy: the policy names groups, so the new name
  replaces the old one there in the same change. A group the policy names cannot be deleted
  (it would change who is asked for a second step without anyone deciding it).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp import audit, directory
from idp.addresses import normalise_email
from idp.directory import AlreadyExists, DirectoryError
from idp.models import Group, Tenant, TenantPolicyRow, User
from idp.models.base import utcnow
from idp.models.tenancy import user_groups

KEEP = object()  # a keyword left as it is
NAME_LENGTH = 200
EXTERNAL_ID_LENGTH = 255


class GroupInPolicy(DirectoryError):
    """The MFA policy names the group."""


def _text(value: str | None, what: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DirectoryError(f"{what} must be text")
    value = value.strip()
    if len(value) > limit:
        raise DirectoryError(f"{what} is longer than {limit} characters")
    return value or None


def check_email(db: Session, tenant: Tenant, email: str, user: User | None = None) -> str:
    """``email`` as stored (``normalise_email``), if it is an address free in ``tenant``
    (``user``'s own counts as free)."""
    if not isinstance(email, str):
        raise DirectoryError("an email address must be text")
    email = normalise_email(email)
    if not directory.EMAIL.fullmatch(email) or len(email) > 320:
        raise DirectoryError(f"{email!r} is not an email address")
    other = directory.find_user(db, tenant, email)
    if other is not None and (user is None or other.id != user.id):
        raise AlreadyExists(f"{email} already has an account in {tenant.slug}")
    return email


def update_user(db: Session, tenant: Tenant, user: User, actor: str, *, email=KEEP, name=KEEP,
                given_name=KEEP, family_name=KEEP, external_id=KEEP) -> list[str]:
    """Change what is given of ``user``; the names of the fields that changed."""
    wanted = {}
    if email is not KEEP:
        wanted["email"] = check_email(db, tenant, email, user)
    if name is not KEEP:
        wanted["name"] = _text(name, "a name", NAME_LENGTH) or ""
    if given_name is not KEEP:
        wanted["given_name"] = _text(given_name, "a given name", NAME_LENGTH)
    if family_name is not KEEP:
        wanted["family_name"] = _text(family_name, "a family name", NAME_LENGTH)
    if external_id is not KEEP:
        wanted["external_id"] = _text(external_id, "an external id", EXTERNAL_ID_LENGTH)
    changed = [field for field, value in wanted.items() if getattr(user, field) != value]
    if not changed:
        return []
    data = {}
    if "email" in changed:
        data.update(email=wanted["email"], was=user.email)
        user.email_verified = False  # nobody proved the new address yet
    for field in changed:
        setattr(user, field, wanted[field])
    user.updated_at = utcnow()
    db.flush()
    audit.record(db, tenant.id, "user.updated", actor=actor, user_id=user.id, fields=changed,
                 **data)
    return changed


def _policy(db: Session, tenant: Tenant) -> TenantPolicyRow | None:
    return db.get(TenantPolicyRow, tenant.id)


def group_named(db: Session, tenant: Tenant, name: str) -> Group | None:
    return db.scalar(select(Group).where(Group.tenant_id == tenant.id, Group.name == name))


def update_group(db: Session, tenant: Tenant, group: Group, actor: str, *, name=KEEP,
                 external_id=KEEP) -> list[str]:
    """Rename ``group`` (the policy follows) or change the client's id for it; what changed."""
    changed = []
    if name is not KEEP:
        name = _text(name, "a group name", NAME_LENGTH)
        if not name:
            raise DirectoryError("a group name cannot be empty")
        if name != group.name:
            other = group_named(db, tenant, name)
            if other is not None and other.id != group.id:
                raise AlreadyExists(f"group {name!r} already exists")
            was, group.name = group.name, name
            policy = _policy(db, tenant)
            if policy is not None:
                policy.groups = [name if g == was else g for g in policy.groups]
                policy.remember_groups = [name if g == was else g
                                          for g in (policy.remember_groups or [])]
            audit.record(db, tenant.id, "group.renamed", actor=actor, group=name, was=was)
            changed.append("name")
    if external_id is not KEEP:
        external_id = _text(external_id, "an external id", EXTERNAL_ID_LENGTH)
        if external_id != group.external_id:
            group.external_id = external_id
            audit.record(db, tenant.id, "group.updated", actor=actor, group=group.name,
                         fields=["external_id"])
            changed.append("external_id")
    if changed:
        group.updated_at = utcnow()
        db.flush()
    return changed


def set_members(db: Session, tenant: Tenant, group: Group, users: list[User], actor: str) -> None:
    """``group``'s members become ``users`` (of ``tenant``); each one added or removed is
    audited as the console's additions and removals are."""
    wanted = {user.id: user for user in users}
    if any(user.tenant_id != tenant.id for user in users):
        raise DirectoryError("a group's members are users of its organisation")
    current = {user.id: user for user in members(db, group)}
    for user_id, user in wanted.items():
        if user_id not in current:
            user.groups.append(group)
            audit.record(db, tenant.id, "group.member_added", actor=actor, user_id=user.id,
                         group=group.name)
    for user_id, user in current.items():
        if user_id not in wanted:
            user.groups = [g for g in user.groups if g.id != group.id]
            audit.record(db, tenant.id, "group.member_removed", actor=actor, user_id=user.id,
                         group=group.name)
    if wanted.keys() != current.keys():
        group.updated_at = utcnow()
    db.flush()


def lock_group(db: Session, group: Group) -> None:
    """Hold ``group``'s row until the caller commits (as ``directory.lock_user``), so a change
    is checked against, and made on, what the last writer left."""
    db.execute(update(Group).where(Group.id == group.id).values(name=Group.name)
               .execution_options(synchronize_session=False))


def members(db: Session, group: Group) -> list[User]:
    return list(db.scalars(select(User).join(user_groups, user_groups.c.user_id == User.id)
                           .where(user_groups.c.group_id == group.id).order_by(User.id)))


def delete_group(db: Session, tenant: Tenant, group: Group, actor: str) -> None:
    """Remove ``group`` (its members stay, out of it), unless the MFA policy names it."""
    policy = _policy(db, tenant)
    if policy is not None and (group.name in policy.groups
                               or group.name in (policy.remember_groups or [])):
        raise GroupInPolicy(f"the MFA policy names the group {group.name!r}: take it out of the "
                            f"policy first")
    audit.record(db, tenant.id, "group.deleted", actor=actor, group=group.name,
                 external_id=group.external_id)
    db.delete(group)
    db.flush()
