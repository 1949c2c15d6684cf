"""The resources we serve, as scim2-models pydantic models, and what discovery publishes of them
(``/Schemas``, ``/ResourceTypes``, ``/ServiceProviderConfig``, RFC 7643 sections 5-7).

Each schema declares only what we keep, so a value a client writes is the value it reads back:

- **User**: ``userName`` is the sign-in address (stored as ``idp.addresses.normalise_email``
  spells it, unique in the tenant); ``displayName`` is the full name people see (the console,
  the ``name`` claim); ``name.givenName``/``familyName`` as sent (no ``name.formatted``: it
  would be a second copy of ``displayName``); ``externalId`` is the client's. ``active`` is
  false only for a deactivated account, and required, as every account has a status (it
  cannot be removed; a creation that leaves it out makes an active account, a replacement
  that leaves it out keeps it). ``emails`` is read-only: the sign-in address again, as the
  primary work address (a client changes it through ``userName``). ``groups`` is read-only,
  as RFC 7643 4.1.2 has it. There is no ``password``: nobody's password is set over SCIM
  (see ``idp.scim.users``).
- **Group**: ``displayName`` (unique in the tenant), ``externalId``, and ``members``: users
  only (no nested groups), by their SCIM ``id``.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field
from scim2_models import (URN, AuthenticationScheme, Bulk, CaseExact, ChangePassword,
                          ComplexAttribute, Context, ETag, Filter, Mutability, Patch, Reference,
                          Required, Resource, ResourceType, ScimPolicy, ScimProvider,
                          ServiceProviderConfig, Sort, Uniqueness)
from scim2_models.resources.service_provider_config import Pagination

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
MAX_RESULTS = 200  # a page's largest ``count``
DEFAULT_COUNT = 100


class Name(ComplexAttribute):
    family_name: str | None = None
    given_name: str | None = None


class Email(ComplexAttribute):
    value: Annotated[str | None, Mutability.read_only] = None
    """The sign-in address (userName)."""

    type: Annotated[str | None, Mutability.read_only] = None
    primary: Annotated[bool | None, Mutability.read_only] = None


class GroupMembership(ComplexAttribute):
    value: Annotated[str | None, Mutability.read_only, CaseExact.true] = None
    ref: Annotated[Reference["Group"] | None, Mutability.read_only] = Field(  # noqa: F821
        None, serialization_alias="$ref", validation_alias="$ref")
    display: Annotated[str | None, Mutability.read_only] = None


class User(Resource[Any]):
    """A person of the tenant."""

    __schema__ = URN(USER_SCHEMA)

    user_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    """The sign-in address."""

    name: Name | None = None
    display_name: str | None = None
    emails: Annotated[list[Email] | None, Mutability.read_only] = None
    active: Annotated[bool | None, Required.true] = None
    """False for a deactivated account (it signs in by no path), true for every other: every
    account has one (a creation that leaves it out makes an active account)."""

    groups: Annotated[list[GroupMembership] | None, Mutability.read_only] = None


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true] = None
    """The member's SCIM id."""

    ref: Annotated[Reference[Union["User"]] | None, Mutability.immutable] = Field(  # noqa: F821
        None, serialization_alias="$ref", validation_alias="$ref")
    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])


class Group(Resource[Any]):
    """A group of the tenant's users (the MFA policy can cover chosen groups)."""

    __schema__ = URN(GROUP_SCHEMA)

    display_name: Annotated[str | None, Required.true, Uniqueness.server] = None
    members: list[GroupMember] | None = None


def _resource_type(model: type[Resource], name: str, description: str) -> ResourceType:
    resource_type = ResourceType.from_resource(model)
    resource_type.description = description
    resource_type.id = resource_type.name = name
    return resource_type


SERVICE_PROVIDER_CONFIG = ServiceProviderConfig(
    documentation_uri=None,
    patch=Patch(supported=True),
    bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=True),
    etag=ETag(supported=True),
    pagination=Pagination(cursor=False, index=True, default_pagination_method="index",
                          default_page_size=DEFAULT_COUNT),
    authentication_schemes=[AuthenticationScheme(
        type="oauthbearertoken", name="OAuth Bearer Token", primary=True,
        description="An access token of the tenant's client credentials grant, issued to a "
                    "client registered for the users:provision scope (RFC 6750).")],
)

# What we tolerate from clients (RFC 7644 leaves it to us): attributes we do not keep are
# dropped, not refused (provisioning clients send their whole profile, extensions included);
# a ``remove`` may carry the value it removes and a ``replace`` may name an entry that is not
# there yet, as Microsoft Entra sends them.
POLICY = ScimPolicy(unknown=ScimPolicy.Unknown.ignore,
                    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
                    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)

PROVIDER = ScimProvider(
    [User, Group],
    [_resource_type(User, "User", "The tenant's users"),
     _resource_type(Group, "Group", "The tenant's groups")],
    SERVICE_PROVIDER_CONFIG, POLICY,
)


def published_schemas(base: str) -> dict[str, dict]:
    """``/Schemas`` by id (``base``: the tenant's SCIM address)."""
    shown = {}
    for schema in PROVIDER.schemas:
        item = schema.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        item["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema.id}"}
        shown[schema.id] = item
    return shown


def published_resource_types(base: str) -> dict[str, dict]:
    """``/ResourceTypes`` by id."""
    shown = {}
    for resource_type in PROVIDER.resource_types:
        item = resource_type.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        item["meta"] = {"resourceType": "ResourceType",
                        "location": f"{base}/ResourceTypes/{resource_type.id}"}
        shown[resource_type.id] = item
    return shown
