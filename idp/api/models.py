"""The admin API's shapes: pydantic models for what a request may hold (validated before a
handler runs: a 422 problem names each refused field) and what a response holds. Their JSON
Schema (2020-12) is what the OpenAPI document lists."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from idp import roles, user_status

Role = Literal[roles.ADMIN, roles.MFA_ADMIN, roles.MEMBER]
Status = Literal[user_status.ACTIVE, user_status.INVITED, user_status.UNVERIFIED,
                 user_status.DEACTIVATED]
Email = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
Name = Field(min_length=1, max_length=200)
GroupName = Field(min_length=1, max_length=200)
Uri = Annotated[str, Field(max_length=2000)]
GroupRef = Annotated[str, Field(min_length=1, max_length=200)]
EmailRef = Annotated[str, Field(min_length=1, max_length=320)]
Text = Annotated[str, Field(max_length=200)]


class Request(BaseModel):
    """A request body: unknown fields are refused (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- problems ----------------------------------------------------------------------------------

class FieldError(BaseModel):
    field: str = Field(description="Where: a body field, a query parameter or a header.")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


# -- users -------------------------------------------------------------------------------------

class UserQuery(Query):
    email: str | None = Field(None, max_length=320, description="Exactly this address.")
    email_prefix: str | None = Field(None, max_length=320,
                                     description="Addresses beginning with this.")
    status: Status | None = None
    role: Role | None = None
    group: str | None = Field(None, max_length=200, description="Members of the group named.")
    mfa: Literal["on", "off"] | None = Field(
        None, description="on: two-step verification is asked of them; off: anything else "
                          "(not set up yet, optional and not set up, turned off, not covered).")
    locked: bool | None = Field(None, description="true: only accounts locked now.")
    created_since: datetime | None = Field(None, description="Created at or after (RFC 3339).")
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=100,
                               description="The `next_cursor` of the previous page.")


class MfaState(BaseModel):
    state: str = Field(description="The policy's standing: on, required, optional, exempt, off.")
    label: str
    reason: str
    admin_state: str = Field(description="default, enforced or exempt (an admin's choice).")
    must_reenroll: bool = Field(description="Factors were reset: set up again at next sign-in.")
    factors: list[str] = Field(description="The factor types the user can answer now.")
    locked: bool
    remembered_browsers: int
    passkeys: int


class User(BaseModel):
    id: str = Field(description="The user's stable public id (the OIDC `sub`).")
    email: str
    name: str
    role: str
    status: str
    email_verified: bool
    groups: list[str]
    created_at: datetime
    mfa: MfaState


class UserPage(BaseModel):
    items: list[User]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: "
                                                "this was the last.")
    next: str | None = Field(description="The next page's URL (filters kept), or null.")


class UserCreate(Request):
    email: str = Email
    name: str | None = Field(None, max_length=200)
    role: Role = roles.MEMBER
    groups: list[GroupRef] = Field(default_factory=list, max_length=100)
    password: str | None = Field(
        None, min_length=1, max_length=1024,
        description="Leave out to invite: the account is created as `invited` and a link to "
                    "choose a password is mailed. With a password the account is active at "
                    "once.")


class UserUpdate(Request):
    name: str | None = Field(None, min_length=1, max_length=200)
    role: Role | None = None
    groups: list[GroupRef] | None = Field(None, max_length=100,
                                     description="The whole list; each group must exist.")


class Factor(BaseModel):
    id: int
    type: str
    label: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class Browser(BaseModel):
    id: int
    description: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None


class Factors(BaseModel):
    mfa: MfaState
    factors: list[Factor]
    remembered_browsers: list[Browser]


class Session(BaseModel):
    id: str = Field(description="The session's public id (the ID token's `sid`).")
    signed_in_at: datetime | None
    last_seen_at: datetime | None
    amr: list[str]
    acr: str
    ip: str
    user_agent: str


class Sessions(BaseModel):
    items: list[Session]


class Ended(BaseModel):
    sessions: int | None = Field(description="Sessions ended (null: the store is out of reach).")
    tokens: int = Field(description="Access and refresh tokens revoked.")


class Forgotten(BaseModel):
    browsers: int


# -- groups ------------------------------------------------------------------------------------

class Group(BaseModel):
    id: str
    name: str
    members: int


class Groups(BaseModel):
    items: list[Group]


class GroupCreate(Request):
    name: str = GroupName


class MemberQuery(Query):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=100)


class Member(BaseModel):
    id: str
    email: str
    name: str


class Members(BaseModel):
    items: list[Member]
    next_cursor: str | None


# -- policy ------------------------------------------------------------------------------------

class Policy(BaseModel):
    mode: str
    scope: str
    groups: list[str]
    users: list[str]
    grace_until: str | None
    grace_skips: int | None
    factors: list[str]
    roles_allowed: list[str]
    self_disable: bool
    login_token_bypass: bool
    admin_login_links: bool
    federation_jit: bool
    captcha_after: int
    lock_after: int
    lock_minutes: int
    lock_email_admins: bool
    password_min_length: int
    self_service_reset: bool
    reset_link_minutes: int
    require_verified_email: bool
    self_registration: bool
    registration_domains: list[str]
    passkey_first: bool
    passwordless: bool
    remember_days: int
    remember_scope: str
    remember_groups: list[str]
    remember_roles: list[str]


Small = Field(None, ge=0, le=100_000)
Names = Field(None, max_length=1000)


class Branding(BaseModel):
    """What the tenant's pages and mail show of it (``null``: not set, the defaults apply)."""

    display_name: str | None
    accent: str | None = Field(description="The primary colour, #rrggbb.")
    support_url: str | None
    support_email: str | None
    logo_url: str | None = Field(description="The logo as pages load it (set in the console).")


class BrandingChange(Request):
    """The settings to change; those left out stay as they are, ``null`` or an empty string
    clears one. Checked as the console checks them: a colour must have a contrast of 4.5:1
    with white (WCAG AA), a support link must be https (a refused value is a 422)."""

    display_name: str | None = Field(None, max_length=1000)
    accent: str | None = Field(None, max_length=1000)
    support_url: str | None = Field(None, max_length=1000)
    support_email: str | None = Field(None, max_length=1000)


class Protocol(BaseModel):
    """What the tenant asks of its portals beyond the defaults."""

    require_par: bool = Field(description="Every portal must use pushed authorization "
                                          "requests (PAR, RFC 9126).")
    dpop_nonce_required: bool = Field(description="DPoP proofs must carry a nonce from this "
                                                  "server (RFC 9449 section 8).")
    registration_redirect_hosts: list[str] = Field(
        description="The hosts self-registered portals may send people to: host names or "
                    "*.domain patterns; empty: any address the usual rules allow.")


class ProtocolChange(Request):
    """The settings to change; those left out stay as they are. Hosts are checked as the
    console checks them (a host name or ``*.`` and a domain, no scheme, port or path; at
    most 50): a refused value is a 422. An empty list removes every host."""

    require_par: bool | None = None
    dpop_nonce_required: bool | None = None
    registration_redirect_hosts: list[Annotated[str, Field(max_length=300)]] | None = Field(
        None, max_length=200)


class PolicyChange(Request):
    """The settings to change; those left out stay as they are. Values are checked by the
    same rules as the console's policy page (a value out of range is a 422)."""

    mode: Literal["disabled", "optional", "required"] | None = None
    factors: list[Text] | None = Field(None, max_length=50)
    groups: list[GroupRef] | None = Names
    users: list[EmailRef] | None = Names
    grace_days: int | None = Field(None, ge=0, le=3650)
    grace_skips: int | None = Small
    roles_allowed: list[Role] | None = None
    self_disable: bool | None = None
    login_token_bypass: bool | None = None
    federation_jit: bool | None = None
    captcha_after: int | None = Small
    lock_after: int | None = Small
    lock_minutes: int | None = Small
    lock_email_admins: bool | None = None
    admin_login_links: bool | None = None
    password_min_length: int | None = Small
    self_service_reset: bool | None = None
    reset_link_minutes: int | None = Small
    require_verified_email: bool | None = None
    self_registration: bool | None = None
    registration_domains: list[Text] | None = Names
    passkey_first: bool | None = None
    passwordless: bool | None = None
    remember_days: int | None = Small
    remember_groups: list[GroupRef] | None = Names
    remember_roles: list[Role] | None = None


# -- clients -----------------------------------------------------------------------------------

GrantType = Literal["authorization_code", "refresh_token", "client_credentials"]
AuthMethod = Literal["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
Acr = Literal["pwd", "mfa", "phr"]


# OIDC Core 8: "pairwise" gives the client an id of its own for each user.
SubjectType = Literal["public", "pairwise"]
SECTOR_URI = ("An https URL serving a JSON array of every redirect URI: the sector of a pairwise "
              "client whose redirect URIs are on several hosts (fetched when registered).")

# RFC 9101: asymmetric only, as idp.directory.CLIENT_SIGNING_ALGS.
RequestObjectAlg = Literal["RS256", "PS256", "ES256", "EdDSA"]


class Client(BaseModel):
    client_id: str
    name: str
    public: bool
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    grant_types: list[str]
    scope: str
    id_token_signed_response_alg: str
    min_acr: str | None
    backchannel_logout_uri: str | None
    backchannel_logout_session_required: bool
    token_endpoint_auth_method: str = Field(
        description="How it proves itself: client_secret_basic or client_secret_post (a "
                    "secret), private_key_jwt (an assertion signed by a key of `jwks` or "
                    "`jwks_uri`), none (a public client).")
    jwks: dict | None = Field(None, description="Its public keys (private_key_jwt).")
    jwks_uri: str | None = Field(None, description="Where it publishes its public keys "
                                                   "(private_key_jwt).")
    subject_type: SubjectType
    sector_identifier_uri: str | None
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    request_object_signing_alg: str | None = None
    dpop_bound_access_tokens: bool = Field(
        False, description="Tokens only DPoP-bound (RFC 9449 5.2): a token request without a "
                           "DPoP proof is refused.")
    created_at: datetime


class Clients(BaseModel):
    items: list[Client]


class ClientWithSecret(Client):
    client_secret: str | None = Field(description="Shown once, here: only its hash is kept.")


class ClientCreate(Request):
    name: str = Name
    redirect_uris: list[Uri] = Field(default_factory=list, max_length=50)
    post_logout_redirect_uris: list[Uri] = Field(default_factory=list, max_length=50)
    grant_types: list[GrantType] = Field(
        default_factory=lambda: ["authorization_code", "refresh_token"], min_length=1)
    public: bool = False
    scope: str | None = Field(None, max_length=2000)
    id_token_signed_response_alg: Literal["RS256", "ES256"] = "RS256"
    min_acr: Acr | None = None
    backchannel_logout_uri: str | None = Field(None, max_length=2000)
    backchannel_logout_session_required: bool = False
    token_endpoint_auth_method: AuthMethod | None = Field(
        None, description="Default: a secret (client_secret_basic), or none when `public`.")
    jwks: dict | None = Field(None, description="For private_key_jwt: the client's public keys "
                                                "(a JWKS; public parts only).")
    jwks_uri: str | None = Field(None, max_length=2000,
                                 description="For private_key_jwt: where the client publishes "
                                             "its public keys (https).")
    subject_type: SubjectType = "public"
    sector_identifier_uri: str | None = Field(None, max_length=2000, description=SECTOR_URI)
    require_pushed_authorization_requests: bool = False
    require_signed_request_object: bool = False
    request_object_signing_alg: RequestObjectAlg | None = None
    dpop_bound_access_tokens: bool = False


class ClientUpdate(Request):
    name: str | None = Field(None, min_length=1, max_length=200)
    redirect_uris: list[Uri] | None = Field(None, max_length=50)
    post_logout_redirect_uris: list[Uri] | None = Field(None, max_length=50)
    scope: str | None = Field(None, max_length=2000)
    min_acr: Acr | None = None
    backchannel_logout_uri: str | None = Field(None, max_length=2000)
    backchannel_logout_session_required: bool | None = None
    subject_type: SubjectType | None = Field(
        None, description="Changing it changes every `sub` the client sees: it needs "
                          "`confirm_new_subjects`.")
    sector_identifier_uri: str | None = Field(
        None, max_length=2000,
        description=f"{SECTOR_URI} A pairwise client's new sector (this host, or its redirect "
                    "URIs' host) changes every `sub` it sees: it needs `confirm_new_subjects`.")
    confirm_new_subjects: bool = Field(
        False, description="True to go ahead with a change that gives every user a new `sub` "
                           "at this client (a new `subject_type`, or a pairwise client's new "
                           "sector): the portal no longer recognises the people it knows. "
                           "Without it such a change is refused (409) and nothing changes; "
                           "other changes do not need it.")
    require_pushed_authorization_requests: bool | None = None
    require_signed_request_object: bool | None = None
    request_object_signing_alg: RequestObjectAlg | None = None
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post",
                                        "private_key_jwt"] | None = Field(
        None, description="Moving to private_key_jwt (with `jwks` or `jwks_uri`) drops the "
                          "secret; moving back to a secret makes a new one, returned once in "
                          "`client_secret`. New `jwks` or `jwks_uri` for a private_key_jwt "
                          "client replace its keys.")
    jwks: dict | None = None
    jwks_uri: str | None = Field(None, max_length=2000)
    dpop_bound_access_tokens: bool | None = None


class ClientUpdated(Client):
    client_secret: str | None = Field(None, description="Only when this change gave the client "
                                                        "a new secret: shown once, here.")


class Secret(BaseModel):
    client_id: str
    client_secret: str = Field(description="Shown once, here; the old secret stops working now.")


# -- audit -------------------------------------------------------------------------------------

class EventQuery(Query):
    type: str | None = Field(None, max_length=64,
                             description="An event type (`mfa.reset`), or a family (`mfa.`).")
    since: datetime | None = Field(None, description="At or after (RFC 3339).")
    until: datetime | None = Field(None, description="Before (RFC 3339).")
    limit: int = Field(100, ge=1, le=200)
    cursor: str | None = Field(None, max_length=100)


class Event(BaseModel):
    id: int
    type: str
    time: datetime
    actor: str
    user_id: str | None = Field(description="The user's public id, while they exist.")
    user_email: str | None
    client_id: str | None
    ip: str | None
    data: dict


class Events(BaseModel):
    items: list[Event]
    next_cursor: str | None
