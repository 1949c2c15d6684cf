"""Tenants, users and clients: creating and finding them, for the CLI, the console and views.

Errors are named for what went wrong (``DirectoryError`` and its subclasses) and carry a
message fit for a person; callers commit.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import phonenumbers
from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import audit, roles, subjects
from idp import jwks as client_jwks
from idp.addresses import normalise_email
from idp.clients import API_SCOPES, DEFAULT_SCOPE, USER_SCOPES
from idp.password import Passwords
from idp.policy import Mode
from idp.models import Client, Group, Tenant, TenantPolicyRow, User
from idp import hashing

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x20\x7f-\x9f]")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
ID_TOKEN_ALGS = ("RS256", "ES256")
# How a client may authenticate (RFC 7591 2); "none" is a public client's.
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
SUBJECT_TYPES = ("public", "pairwise")
# What we verify in a client's signed JWTs (private_key_jwt assertions, request objects):
# asymmetric only, never "none" nor an HMAC (a client's secret is stored only as a hash).
CLIENT_SIGNING_ALGS = ("RS256", "PS256", "ES256", "EdDSA")


class DirectoryError(ValueError):
    """A request to the directory that cannot be carried out, said plainly."""


class NotFound(DirectoryError):
    pass


class AlreadyExists(DirectoryError):
    pass


def get_tenant(db: Session, slug: str) -> Tenant:
    tenant = db.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    return tenant


def create_tenant(db: Session, slug: str, name: str | None = None) -> Tenant:
    if not SLUG.fullmatch(slug or ""):
        raise DirectoryError(
            "a tenant slug is 1-63 lower-case letters, digits and hyphens, "
            "not starting or ending with a hyphen"
        )
    if db.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None:
        raise AlreadyExists(f"tenant {slug!r} already exists")
    tenant = Tenant(slug=slug, name=name or slug)
    db.add(tenant)
    db.flush()
    audit.record(db, tenant.id, "tenant.created", actor="cli")
    return tenant


# What a sign-in's step reads of its user, in one statement: the groups and the factors the
# policy decides with (a user has a handful of each).
SIGN_IN_READS = (joinedload(User.groups), joinedload(User.authenticators))


def find_user(db: Session, tenant: Tenant, email: str, *, with_groups: bool = False) -> User | None:
    """The tenant's user with this email; ``with_groups`` loads their groups and factors in
    the same statement (a sign-in, whose policy decision reads them)."""
    query = select(User).where(User.tenant_id == tenant.id, User.email == normalise_email(email))
    if with_groups:
        return db.scalars(query.options(*SIGN_IN_READS)).unique().one_or_none()
    return db.scalar(query)



def lock_user(db: Session, user: User) -> None:
    """Hold the user's row until the caller commits: the next writer that asks waits, then
    reads what this one wrote. A write that changes nothing, so it works alike on PostgreSQL
    (a row lock) and SQLite (the database's write lock), where SELECT ... FOR UPDATE does not."""
    db.execute(update(User).where(User.id == user.id)
               .values(mfa_skips_used=User.mfa_skips_used)
               .execution_options(synchronize_session=False))


def use_grace_skip(db: Session, user: User, limit: int | None) -> int | None:
    """Count one grace skip, in the one statement that checks ``limit``; the skips used
    now, or None when none was left."""
    statement = update(User).where(User.id == user.id)
    if limit is not None:
        statement = statement.where(User.mfa_skips_used < limit)
    used = db.execute(statement.values(mfa_skips_used=User.mfa_skips_used + 1)
                      .returning(User.mfa_skips_used)
                      .execution_options(synchronize_session=False)).scalar()
    if used is not None:
        db.expire(user, ["mfa_skips_used"])
    return used


def normalise_phone(phone: str) -> str:
    """E.164, or DirectoryError."""
    try:
        parsed = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        raise DirectoryError(f"{phone!r} is not a phone number in +E.164 form") from None
    if not phonenumbers.is_valid_number(parsed):
        raise DirectoryError(f"{phone!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def create_user(
    db: Session,
    passwords: Passwords,
    tenant: Tenant,
    email: str,
    password: str,
    *,
    name: str = "",
    role: str = "member",
    phone: str | None = None,
    groups: list[str] = (),
    actor: str = "cli",
) -> User:
    email = normalise_email(email)
    if not EMAIL.fullmatch(email) or len(email) > 320:
        raise DirectoryError(_("%(email)s is not an email address", email=repr(email)))
    check_role(db, tenant, role)
    if find_user(db, tenant, email) is not None:
        raise AlreadyExists(_("%(email)s already has an account in %(tenant)s", email=email,
                              tenant=tenant.slug))
    try:
        password_hash = passwords.hash(password)
    except ValueError as e:
        raise DirectoryError(str(e)) from None
    user = User(
        tenant_id=tenant.id,
        email=email,
        name=name or email.split("@")[0],
        role=role,
        phone=normalise_phone(phone) if phone else None,
        password_hash=password_hash,
    )
    for group_name in groups:
        user.groups.append(_group(db, tenant, group_name))
    db.add(user)
    db.flush()
    audit.record(db, tenant.id, "user.created", actor=actor, user_id=user.id, role=role)
    return user


def check_role(db: Session, tenant: Tenant, role: str) -> None:
    """DirectoryError unless ``role`` can be given to someone in ``tenant`` now.

    A two-factor administrator changes other people's two-step verification, so where the
    tenant has it on they must be able to use it themselves: a tenant whose policy predates the
    role does not list it among the roles that may (new tenants do), and is asked to first."""
    if role not in roles.ROLES:
        raise DirectoryError(f"role must be one of {', '.join(roles.ROLES)}")
    if role != roles.MFA_ADMIN:
        return
    policy = db.get(TenantPolicyRow, tenant.id)
    if policy is not None and policy.mode != Mode.DISABLED.value and role not in policy.roles_allowed:
        raise RoleNotAllowedMfa(
            "two-factor administrators may not use two-step verification under this "
            "organisation's policy; allow the role to use it first (the policy's roles allowed)")


class RoleNotAllowedMfa(DirectoryError):
    """The tenant's policy does not let two-factor administrators use two-step verification."""


def _group(db: Session, tenant: Tenant, name: str) -> Group:
    name = name.strip()
    if not name:
        raise DirectoryError(_("a group name cannot be empty"))
    group = db.scalar(select(Group).where(Group.tenant_id == tenant.id, Group.name == name))
    if group is None:
        group = Group(tenant_id=tenant.id, name=name)
        db.add(group)
        db.flush()
    return group


def _check_uri(uri: str, what: str, *, server: bool = False) -> str:
    """An address as registered: absolute http(s), no fragment, https unless on loopback, a
    host and a port that parse, no control characters. ``server``: one this server POSTs to
    (back-channel logout, webhooks), which must not carry a user name or password either (it
    would be stored and shown in the clear, and sent as a credential)."""
    if CONTROL_CHARACTERS.search(uri):
        raise DirectoryError(_("%(what)s %(uri)s must not contain spaces or control characters",
                               what=what, uri=repr(uri)))
    try:
        if "\\" in uri:
            # Browsers read it as "/" (WHATWG URL), so "https://evil.test\@portal.test/cb"
            # would take them to another host than the one we see here.
            raise ValueError(uri)
        parts = urlsplit(uri)
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        raise DirectoryError(_("%(what)s %(uri)s is not a valid URL (its host or port)",
                               what=what, uri=repr(uri))) from None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.fragment:
        raise DirectoryError(_("%(what)s %(uri)s must be an absolute http(s) URL without a fragment",
                               what=what, uri=repr(uri)))
    if server and (parts.username is not None or parts.password is not None):
        raise DirectoryError(_("%(what)s must not hold a user name or password: the receiver "
                               "checks the signature instead", what=what))
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise DirectoryError(_("%(what)s %(uri)s must use https (http only for loopback)",
                               what=what, uri=repr(uri)))
    return uri


def check_sector(subject_type: str, redirect_uris: list[str], sector_identifier_uri: str | None,
                 *, private_allowed: bool) -> str | None:
    """The sector identifier URI as registered (None or blank: none), after
    ``idp.subjects.check_sector`` for a pairwise client (OIDC Registration 5)."""
    uri = (sector_identifier_uri or "").strip() or None
    if uri:
        uri = _check_uri(uri, "sector_identifier_uri", server=True)
    if subject_type == subjects.PAIRWISE:  # a public client's sub has no sector
        try:
            subjects.check_sector(redirect_uris, uri, private_allowed=private_allowed)
        except subjects.SectorError as e:
            raise DirectoryError(str(e)) from None
    return uri


def check_backchannel_uri(uri: str | None) -> str | None:
    """A back-channel logout URI as registered: absolute, https (http only for loopback, as
    redirect URIs), no fragment (Back-Channel Logout 1.0, 2.2); None or blank: none. Logout
    tokens are POSTed to this address and no other (redirects are not followed)."""
    uri = (uri or "").strip()
    return _check_uri(uri, _("back-channel logout URI"), server=True) if uri else None


MAX_WEBHOOK_URL = 2000


def check_webhook_url(url: str | None) -> str:
    """A webhook endpoint's URL: absolute, https (http only for loopback, as every address we
    POST to), no fragment, at most ``MAX_WEBHOOK_URL`` characters. Messages go to this address
    and no other (redirects are not followed)."""
    url = (url or "").strip()
    if not url:
        raise DirectoryError(_("a webhook endpoint needs a URL (https://...)"))
    if len(url) > MAX_WEBHOOK_URL:
        raise DirectoryError(_("a webhook URL is at most %(num)d characters", num=MAX_WEBHOOK_URL))
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise DirectoryError(_("a webhook URL cannot contain spaces or control characters"))
    return _check_uri(url, _("webhook URL"), server=True)


@dataclass(frozen=True)
class NewClient:
    client: Client
    secret: str | None  # shown once, never stored


def check_scope(scope: str | list[str], grant_types, public: bool) -> str:
    """The scopes a client is registered for, checked: each one we know (``USER_SCOPES``,
    ``API_SCOPES``); an API scope only for a confidential client with the client credentials
    grant (it is a service's own right, never a person's); space-separated, in order, once."""
    names = list(dict.fromkeys(scope.split() if isinstance(scope, str) else
                               [s for item in scope for s in str(item).split()]))
    unknown = [s for s in names if s not in USER_SCOPES and s not in API_SCOPES]
    if unknown:
        raise DirectoryError(f"unknown scope {unknown[0]!r}: the scopes are "
                             f"{', '.join((*USER_SCOPES, *API_SCOPES))}")
    if any(s in API_SCOPES for s in names) and (public or "client_credentials" not in grant_types):
        raise DirectoryError("API scopes (admin:read, admin:write, mfa:manage, users:provision) "
                             "are for a confidential client with the client_credentials grant")
    return " ".join(names)


class RequestRulesNeedSignIn(DirectoryError):
    """PAR or request-object rules asked of a client without the authorization_code grant:
    they govern sign-in requests, which such a client never sends."""


def check_request_rules(grant_types, **rules) -> None:
    """Refuse sign-in request rules (``require_par``, ``require_signed_request_object``,
    ``request_object_signing_alg``) turned on for a client that signs no one in."""
    if any(rules.values()) and "authorization_code" not in grant_types:
        raise RequestRulesNeedSignIn(
            "PAR and request object rules are for a client that signs people in (the "
            "authorization_code grant)")


def create_client(
    db: Session,
    tenant: Tenant,
    name: str,
    redirect_uris: list[str],
    *,
    public: bool = False,
    post_logout_redirect_uris: list[str] = (),
    grant_types: list[str] = DEFAULT_GRANT_TYPES,
    id_token_alg: str = "RS256",
    min_acr: str | None = None,
    backchannel_logout_uri: str | None = None,
    backchannel_logout_session_required: bool = False,
    scope: str | list[str] | None = None,
    actor: str = "cli",
    auth_method: str | None = None,
    jwks: dict | None = None,
    jwks_uri: str | None = None,
    subject_type: str = "public",
    sector_identifier_uri: str | None = None,
    require_par: bool = False,
    dpop_bound_access_tokens: bool = False,
    request_object_signing_alg: str | None = None,
    require_signed_request_object: bool = False,
    registration_metadata: dict | None = None,
    private_allowed: bool = False,
) -> NewClient:
    """A new client. ``auth_method`` None: a secret, or none when ``public``;
    "private_key_jwt" needs ``jwks`` or ``jwks_uri`` and gets no secret. A pairwise client's
    sector is checked now (``idp.subjects.check_sector``; its sector identifier URI fetched,
    from a private address only when ``private_allowed``)."""
    if not name.strip():
        raise DirectoryError(_("a client needs a name"))
    if auth_method is None:
        auth_method = "none" if public else None
    if auth_method is not None and auth_method not in AUTH_METHODS:
        raise DirectoryError(f"the authentication method must be one of {', '.join(AUTH_METHODS)}")
    public = auth_method == "none"
    keyed = auth_method == "private_key_jwt"
    if keyed and bool(jwks) == bool(jwks_uri):
        raise DirectoryError("private_key_jwt needs the client's public keys: a JWKS or a "
                             "jwks_uri (one of them)")
    if jwks:
        try:
            jwks = client_jwks.check(jwks)
        except client_jwks.BadKeySet as error:
            raise DirectoryError(str(error)) from None
    if subject_type not in SUBJECT_TYPES:
        raise DirectoryError(f"the subject type must be one of {', '.join(SUBJECT_TYPES)}")
    if request_object_signing_alg is not None and request_object_signing_alg not in CLIENT_SIGNING_ALGS:
        raise DirectoryError("the request object algorithm must be one of "
                             f"{', '.join(CLIENT_SIGNING_ALGS)}")
    grant_types = list(dict.fromkeys(grant_types))
    unknown = [g for g in grant_types if g not in GRANT_TYPES]
    if unknown or not grant_types:
        raise DirectoryError(f"grant types must be among {', '.join(GRANT_TYPES)}")
    if public and "client_credentials" in grant_types:
        raise DirectoryError("a public client cannot use client_credentials")
    if "authorization_code" in grant_types and not redirect_uris:
        raise DirectoryError("the authorization_code grant needs at least one --redirect-uri")
    check_request_rules(grant_types, require_par=require_par,
                        require_signed_request_object=require_signed_request_object,
                        request_object_signing_alg=request_object_signing_alg)
    if id_token_alg not in ID_TOKEN_ALGS:
        raise DirectoryError(f"ID token algorithm must be one of {', '.join(ID_TOKEN_ALGS)}")
    if min_acr not in (None, "pwd", "mfa", "phr"):
        raise DirectoryError("the minimum acr must be pwd, mfa or phr")
    scope = check_scope(DEFAULT_SCOPE if scope is None else scope, grant_types, public)
    redirect_uris = [_check_uri(u, _("redirect URI")) for u in redirect_uris]
    sector_identifier_uri = check_sector(subject_type, redirect_uris, sector_identifier_uri,
                                         private_allowed=private_allowed)
    secret = None if public or keyed else hashing.new_secret()
    client = Client(
        tenant_id=tenant.id,
        client_id=secrets.token_urlsafe(18),
        name=name.strip(),
        secret_hash=hashing.digest("client-secret", secret) if secret else None,
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=[
            _check_uri(u, _("post-logout redirect URI")) for u in post_logout_redirect_uris
        ],
        grant_types=grant_types,
        id_token_signed_response_alg=id_token_alg,
        min_acr=min_acr if min_acr != "pwd" else None,
        backchannel_logout_uri=check_backchannel_uri(backchannel_logout_uri),
        backchannel_logout_session_required=bool(backchannel_logout_session_required),
        scope=scope,
        token_endpoint_auth_method=auth_method if auth_method in ("private_key_jwt",
                                                                  "client_secret_post") else None,
        jwks=jwks or None,
        jwks_uri=_check_uri(jwks_uri, "jwks_uri", server=True) if jwks_uri else None,
        subject_type=subject_type,
        sector_identifier_uri=sector_identifier_uri,
        require_par=bool(require_par),
        dpop_bound_access_tokens=bool(dpop_bound_access_tokens),
        request_object_signing_alg=request_object_signing_alg,
        require_signed_request_object=bool(require_signed_request_object),
        registration_metadata=dict(registration_metadata or {}),
    )
    db.add(client)
    db.flush()
    audit.record(db, tenant.id, "client.created", actor=actor, client_id=client.client_id)
    return NewClient(client, secret)
