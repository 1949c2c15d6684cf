"""The tenant's sign-in policy row as admins change it (the console's policy page, ``idp policy
set``): validated, audited with the admin as actor. Reading it for a decision is
``idp.tenant_policy``'s; which factor types exist is the registry's (``idp.mfa``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import audit, mfa, password_policy, roles
from idp.addresses import normalise_email
from idp.directory import DirectoryError, NotFound, find_user
from idp.models import Group, Tenant, TenantPolicyRow, User
from idp.policy import Mode

# The tenant's account settings: what each number may be (the console says the same).
RESET_LINK_MINUTES = (5, 24 * 60)
REMEMBER_DAYS = (0, 365)  # 0: browsers are never remembered
MAX_REGISTRATION_DOMAINS = 100
LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN = re.compile(rf"(?=.{{1,253}}$){LABEL}(?:\.{LABEL})+")


def policy_row(db: Session, tenant: Tenant) -> TenantPolicyRow:
    row = db.get(TenantPolicyRow, tenant.id)
    if row is None:
        # Every factor type there is, allowed until the tenant chooses (a type added later is
        # not allowed by rows made before it: a tenant's methods never change under it).
        row = TenantPolicyRow(tenant_id=tenant.id, allowed_factors=mfa.types())
        db.add(row)
        db.flush()
    return row


def policy_dict(db: Session, tenant: Tenant) -> dict:
    row = policy_row(db, tenant)
    users = db.scalars(select(User.email).where(User.id.in_(row.users))).all() if row.users else []
    return {
        "tenant": tenant.slug,
        "mode": row.mode,
        "scope": "everyone" if row.everyone else "selected",
        "groups": list(row.groups),
        "users": sorted(users),
        "grace_until": row.grace_until.isoformat() if row.grace_until else None,
        "grace_skips": row.grace_skips,
        "factors": [f for f in mfa.types() if f in row.allowed_factors],
        "roles_allowed": list(row.roles_allowed),
        "self_disable": row.self_disable,
        "login_token_bypass": row.login_token_bypass,
        "admin_login_links": row.admin_login_links,
        "federation_jit": row.federation_jit,
        "captcha_after": row.captcha_after,
        "lock_after": row.lock_after,
        "lock_minutes": row.lock_minutes,
        "lock_email_admins": row.lock_email_admins,
        "password_min_length": row.password_min_length,
        "self_service_reset": row.self_service_reset,
        "reset_link_minutes": row.reset_link_minutes,
        "require_verified_email": row.require_verified_email,
        "self_registration": row.self_registration,
        "registration_domains": list(row.registration_domains or []),
        "passkey_first": row.passkey_first,
        "passwordless": row.passwordless,
        "remember_days": row.remember_days,
        "remember_scope": "everyone" if row.remember_everyone else "selected",
        "remember_groups": list(row.remember_groups or []),
        "remember_roles": [r for r in roles.ROLES if r in (row.remember_roles or [])],
    }


def set_policy(db: Session, tenant: Tenant, actor: str, *, mode: str | None = None,
               factors: list[str] | None = None, groups: list[str] | None = None,
               users: list[str] | None = None, grace_days: int | None = None,
               grace_skips: int | None = None, roles_allowed: list[str] | None = None,
               self_disable: bool | None = None, login_token_bypass: bool | None = None,
               federation_jit: bool | None = None, captcha_after: int | None = None,
               lock_after: int | None = None, lock_minutes: int | None = None,
               lock_email_admins: bool | None = None,
               admin_login_links: bool | None = None,
               password_min_length: int | None = None, self_service_reset: bool | None = None,
               reset_link_minutes: int | None = None, require_verified_email: bool | None = None,
               self_registration: bool | None = None,
               registration_domains: list[str] | None = None,
               passkey_first: bool | None = None, passwordless: bool | None = None,
               remember_days: int | None = None, remember_groups: list[str] | None = None,
               remember_roles: list[str] | None = None) -> dict:
    """Change what is given; the scope is everyone unless groups or users are named (and
    browsers are remembered for everyone unless ``remember_groups`` names some)."""
    row = policy_row(db, tenant)
    before = policy_dict(db, tenant)
    if mode is not None:
        try:
            row.mode = Mode(mode).value
        except ValueError:
            raise DirectoryError("mode must be disabled, optional or required") from None
    if factors is not None:
        chosen = [mfa.named(f) for f in factors]
        if None in chosen or not factors:
            names = (f.alias or f.type for f in mfa.ordered())
            raise DirectoryError(f"factors must be among {', '.join(names)}")
        row.allowed_factors = sorted({f.type for f in chosen})
    if groups is not None or users is not None:
        if groups is not None:
            for name in groups:
                if db.scalar(select(Group.id).where(Group.tenant_id == tenant.id, Group.name == name)) is None:
                    raise NotFound(_("no group %(name)s in %(tenant)s", name=repr(name),
                                     tenant=tenant.slug))
            row.groups = list(groups)
        if users is not None:
            ids = []
            for email in users:
                user = find_user(db, tenant, email)
                if user is None:
                    raise NotFound(_("no user %(email)s in %(tenant)s", email=email,
                                     tenant=tenant.slug))
                ids.append(user.id)
            row.users = ids
        row.everyone = not (row.groups or row.users)
    if grace_days is not None:
        if grace_days < 0:
            raise DirectoryError("grace days cannot be negative")
        row.grace_until = datetime.now(timezone.utc) + timedelta(days=grace_days) if grace_days else None
    if grace_skips is not None:
        if grace_skips < 0:
            raise DirectoryError("grace skips cannot be negative")
        row.grace_skips = grace_skips or None
    if roles_allowed is not None:
        bad = [r for r in roles_allowed if r not in roles.ROLES]
        if bad:
            raise DirectoryError(f"roles must be among {', '.join(roles.ROLES)}")
        row.roles_allowed = list(dict.fromkeys(roles_allowed))
    for name, value, low, high in (("captcha_after", captcha_after, 1, 100),
                                   ("lock_after", lock_after, 1, 100),
                                   ("lock_minutes", lock_minutes, 1, 7 * 24 * 60),
                                   ("password_min_length", password_min_length,
                                    password_policy.MIN_LENGTH, password_policy.LONGEST_MINIMUM),
                                   ("reset_link_minutes", reset_link_minutes, *RESET_LINK_MINUTES),
                                   ("remember_days", remember_days, *REMEMBER_DAYS)):
        if value is not None:
            if not low <= value <= high:
                raise DirectoryError(f"{name.replace('_', '-')} must be from {low} to {high}")
            setattr(row, name, value)
    for name, value in (("self_disable", self_disable), ("login_token_bypass", login_token_bypass),
                        ("lock_email_admins", lock_email_admins),
                        ("admin_login_links", admin_login_links),
                        ("federation_jit", federation_jit),
                        ("self_service_reset", self_service_reset),
                        ("require_verified_email", require_verified_email),
                        ("self_registration", self_registration),
                        ("passkey_first", passkey_first), ("passwordless", passwordless)):
        if value is not None:
            setattr(row, name, value)
    _remember_scope(db, tenant, row, remember_groups, remember_roles)
    if registration_domains is not None:
        row.registration_domains = email_domains(registration_domains)
    db.flush()
    after = policy_dict(db, tenant)
    changed = {k: after[k] for k in after if after[k] != before[k]}
    audit.record(db, tenant.id, "policy.changed", actor=actor, changes=changed)
    return after


def _remember_scope(db: Session, tenant: Tenant, row: TenantPolicyRow,
                    groups: list[str] | None, roles_: list[str] | None) -> None:
    """Whom remembered browsers are for: the roles named, and everyone or the groups named."""
    if groups is not None:
        for name in groups:
            if db.scalar(select(Group.id).where(Group.tenant_id == tenant.id, Group.name == name)) is None:
                raise NotFound(f"no group {name!r} in {tenant.slug}")
        row.remember_groups = list(dict.fromkeys(groups))
        row.remember_everyone = not row.remember_groups
    if roles_ is not None:
        bad = [r for r in roles_ if r not in roles.ROLES]
        if bad:
            raise DirectoryError(f"remember-roles must be among {', '.join(roles.ROLES)}")
        if not roles_:
            raise DirectoryError("remember-roles needs at least one role (remember-days 0 "
                                 "turns remembered browsers off)")
        row.remember_roles = list(dict.fromkeys(roles_))


def email_domains(typed: list[str]) -> list[str]:
    """The sign-up domains as stored: each in the spelling emails are kept in (NFKC, lower
    case; a leading ``@`` dropped), once, in the order given; DirectoryError for one that is
    not a domain name."""
    domains = []
    for item in typed:
        domain = normalise_email(item).removeprefix("@").rstrip(".")
        if not domain:
            continue
        try:
            ascii_form = domain.encode("idna").decode("ascii")
        except UnicodeError:
            ascii_form = ""
        if not DOMAIN.fullmatch(ascii_form):
            raise DirectoryError(_("%(domain)s is not an email domain such as example.com",
                                   domain=repr(item.strip()[:80])))
        if domain not in domains:
            domains.append(domain)
    if len(domains) > MAX_REGISTRATION_DOMAINS:
        raise DirectoryError(_("list at most %(num)d sign-up domains", num=MAX_REGISTRATION_DOMAINS))
    return domains

