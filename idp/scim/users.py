"""SCIM Users (RFC 7643 4.1) over our users: how a user reads as a resource, and what a
provisioning client's creation, replacement or patch does, through ``idp.admin`` (the same
functions the console and the command line call, each audited with the client as actor).

- **A new user gets no password over SCIM** (none is declared, and one sent is refused): a
  provisioning client never learns or chooses anyone's secret. The account is *invited*
  (``admin.invitations.invite``): the person gets the invitation mail and chooses a password
  through the password policy, then meets the tenant's MFA policy. Until then it signs in by
  no path, and reads as ``active: true`` (``active`` is the administrative status).
- **A user created with ``active: false``** is created deactivated, with no mail: an
  invitation whose link nobody may use would only confuse its reader. Made active, it is
  invited then (``admin.invitations.invite_again``), as is one deactivated before it
  accepted its invitation.
- **``active: false``** deactivates (``admin.deactivate``: sessions end, tokens are revoked,
  portals hear it by back-channel logout); **``active: true``** reactivates a deactivated one.
- **``userName``** changes the sign-in address (``admin.update_user``: free in the tenant,
  unproved until its owner follows a link).
- **DELETE** deletes the user and everything they own (``admin.delete_user``).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from scim2_models import ForbiddenException, MutabilityException, UniquenessException
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import account_links, admin, audit, roles, user_status
from idp.addresses import normalise_email
from idp.admin import provisioning
from idp.admin import invitations
from idp.config import Settings
from idp.directory import AlreadyExists
from idp.models import Group, Tenant, User
from idp.models.tenancy import user_groups
from idp.scim.models import USER_SCHEMA, Name
from idp.scim.models import User as ScimUser


# What ``shown`` reads of a user: a page selects these columns alone (no ORM objects).
COLUMNS = (User.id, User.subject, User.external_id, User.created_at, User.updated_at,
           User.email, User.given_name, User.family_name, User.name, User.status)


def groups_of(db: Session, user_ids: list[int]) -> dict[int, list[tuple[str, str]]]:
    """Each user's groups as (SCIM id, name), sorted by name, for a page in one statement."""
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    if user_ids:
        rows = db.execute(select(user_groups.c.user_id, Group.public_id, Group.name)
                          .join(Group, Group.id == user_groups.c.group_id)
                          .where(user_groups.c.user_id.in_(user_ids)).order_by(Group.name))
        for user_id, public_id, name in rows:
            found[user_id].append((public_id, name))
    return found


def shown(user, groups: list[tuple[str, str]], base: str) -> dict:
    """``user`` (a ``User`` or a row of ``COLUMNS``) as SCIM shows it, in its JSON form, with
    its ``groups`` (``groups_of``; ``base``: the tenant's SCIM address). Built directly: a page
    of 100 users is read often, and through pydantic it would cost more than its SQL.
    ``meta.version`` is left to the caller (``idp.scim.views``)."""
    found: dict = {"schemas": [USER_SCHEMA], "id": user.subject}
    if user.external_id:
        found["externalId"] = user.external_id
    found["meta"] = {"resourceType": "User", "created": timestamp(user.created_at),
                     "lastModified": timestamp(user.updated_at or user.created_at),
                     "location": f"{base}/Users/{user.subject}"}
    found["userName"] = user.email
    name = {k: v for k, v in (("familyName", user.family_name), ("givenName", user.given_name))
            if v}
    if name:
        found["name"] = name
    if user.name:
        found["displayName"] = user.name
    found["emails"] = [{"value": user.email, "type": "work", "primary": True}]
    found["active"] = user.status != user_status.DEACTIVATED
    if groups:
        found["groups"] = [{"value": public_id, "$ref": f"{base}/Groups/{public_id}",
                            "display": name} for public_id, name in groups]
    return found


def timestamp(moment) -> str | None:
    """An RFC 3339 date and time, in UTC (RFC 7643 2.3.5)."""
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def refuse_password(payload: Any) -> None:
    """A password sent anyway is refused, not dropped: the client would believe it was set."""
    if isinstance(payload, dict) and any(str(k).lower() == "password" for k in payload):
        raise MutabilityException(
            detail="passwords are not set over SCIM: a new user is invited by mail and "
                   "chooses their own")


def _names(wanted: ScimUser) -> dict:
    name = wanted.name or Name()
    return {"name": wanted.display_name or "", "given_name": name.given_name,
            "family_name": name.family_name, "external_id": wanted.external_id}


def create(db: Session, settings: Settings, tenant: Tenant, wanted: ScimUser,
           actor: str) -> User:
    """A new user of ``tenant`` as ``wanted`` says (``active`` absent: true)."""
    try:
        email = provisioning.check_email(db, tenant, wanted.user_name or "")
    except AlreadyExists as e:
        raise UniquenessException(detail=str(e)) from None
    names = _names(wanted)
    # None given: named as an invitation names them (the address's local part).
    names["name"] = names["name"] or " ".join(
        part for part in (names["given_name"], names["family_name"]) if part
    ) or email.split("@")[0]
    if wanted.active is False:
        user = User(tenant_id=tenant.id, email=email, name="", status=user_status.DEACTIVATED,
                    password_hash=None)
        db.add(user)
        db.flush()
        audit.record(db, tenant.id, "user.created", actor=actor, user_id=user.id,
                     role=user.role, status=user.status)
    else:
        user = invitations.invite(db, settings, tenant, email, actor, name=names["name"]).user
    provisioning.update_user(db, tenant, user, actor, **names)
    return user


def guard_administrator(user: User, held: frozenset[str], what: str) -> None:
    """403 unless a service holding ``held`` may act on ``user`` (``roles.service_may_act``):
    an administrator's address (where a reset link goes), status and existence are changed in
    the console, or by a service that also holds ``admin:write``, never by provisioning alone."""
    if not roles.service_may_act(held, user.role):
        raise ForbiddenException(detail=f"{what} of an administrator is changed in the console "
                                        f"(or with the scope {roles.SERVICE_ADMIN_SCOPE} as well)")


def replace(db: Session, settings: Settings, store, tenant: Tenant, user: User,
            wanted: ScimUser, actor: str, held: frozenset[str] = frozenset()) -> None:
    """``user`` becomes ``wanted`` (a PUT, or a PATCH applied to what it was). ``active``
    left out changes nothing: every account has a status. Reactivating an account that was
    never in (created inactive, or deactivated before accepting its invitation) invites it
    again: its person gets a new invitation mail. A new address voids every link mailed to
    the old one (an invitation or a reset there must not prove the new address); an account
    still invited is invited again, at its new address. ``held``: the caller's scopes (an
    administrator's address and status need ``admin:write`` too)."""
    if normalise_email(wanted.user_name or "") != user.email:
        guard_administrator(user, held, "The address")
    if (wanted.active is False and user.status != user_status.DEACTIVATED) or (
            wanted.active is True and user.status == user_status.DEACTIVATED):
        guard_administrator(user, held, "Whether it is active")
    try:
        changed = provisioning.update_user(db, tenant, user, actor,
                                           email=wanted.user_name or "", **_names(wanted))
    except AlreadyExists as e:
        raise UniquenessException(detail=str(e)) from None
    if "email" in changed:
        account_links.void(db, user)
        if user.status == user_status.INVITED:
            invitations.invite(db, settings, tenant, user.email, actor)
    if wanted.active is False and user.status != user_status.DEACTIVATED:
        admin.deactivate(db, store, tenant, user.email, actor)
    elif wanted.active is True and user.status == user_status.DEACTIVATED:
        admin.reactivate(db, tenant, user.email, actor)
        if invitations.never_in(user):
            invitations.invite_again(db, settings, tenant, user.email, actor)
