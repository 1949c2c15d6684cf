"""A tenant's policy row, read: the policy ``decide()`` reads, the guard's thresholds, and the
tenant's account settings (passwords, reset links, verified addresses, sign-up).

One snapshot per worker and tenant (``idp.cache``), read together. Reading is all this module
does; deciding is ``idp.policy``'s, and which passwords may be set ``idp.password_policy``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from flask import has_request_context
from sqlalchemy.orm import Session

from idp.cache import Snapshots
from idp.guard import Limits
from idp.models import Tenant, TenantPolicyRow
from idp.policy import Mode, TenantPolicy


@dataclass(frozen=True)
class AccountSettings:
    """What the account pages (reset, verification, sign-up, new passwords) read of a tenant;
    the defaults are a new tenant's (``TenantPolicyRow``)."""

    password_min_length: int = 8
    self_service_reset: bool = True
    reset_link_minutes: int = 30
    require_verified_email: bool = False
    self_registration: bool = False
    registration_domains: tuple[str, ...] = ()  # empty: any domain
    passwordless: bool = False  # may a user with a passkey remove their password?


class PolicySnapshot(NamedTuple):
    policy: TenantPolicy
    limits: Limits
    accounts: AccountSettings


# One snapshot per tenant of its policy row (``idp.cache``).
POLICY_ROWS: Snapshots[int, PolicySnapshot] = Snapshots("tenant-policies")


def tenant_policy(db: Session, tenant: Tenant) -> TenantPolicy:
    """The tenant's policy (in a request, the per-worker snapshot)."""
    return _snapshot(db, tenant.id).policy


def limits(db: Session, tenant_id: int) -> Limits:
    """The tenant's attempt thresholds for the guard (the same snapshot as the policy)."""
    return POLICY_ROWS.get(tenant_id, lambda: _read_policy_row(db, tenant_id)).limits


def account_settings(db: Session, tenant: Tenant) -> AccountSettings:
    """The tenant's account settings (in a request, the per-worker snapshot)."""
    return _snapshot(db, tenant.id).accounts


def _snapshot(db: Session, tenant_id: int) -> PolicySnapshot:
    if has_request_context():
        return POLICY_ROWS.get(tenant_id, lambda: _read_policy_row(db, tenant_id))
    return _read_policy_row(db, tenant_id)


def _read_policy_row(db: Session, tenant_id: int) -> PolicySnapshot:
    row = db.get(TenantPolicyRow, tenant_id)
    if row is None:
        return PolicySnapshot(TenantPolicy(), Limits(), AccountSettings())
    return PolicySnapshot(policy_from_row(row),
                          Limits(row.captcha_after, row.lock_after, row.lock_minutes * 60),
                          accounts_from_row(row))


def policy_from_row(row: TenantPolicyRow) -> TenantPolicy:
    return TenantPolicy(
        mode=Mode(row.mode), everyone=row.everyone, groups=frozenset(row.groups),
        users=frozenset(row.users), grace_until=row.grace_until, grace_skips=row.grace_skips,
        allowed_factors=frozenset(row.allowed_factors), roles_allowed=frozenset(row.roles_allowed),
        self_disable=row.self_disable, login_token_bypass=row.login_token_bypass,
        passkey_first=row.passkey_first, remember_days=row.remember_days,
        remember_everyone=row.remember_everyone, remember_groups=frozenset(row.remember_groups),
        remember_roles=frozenset(row.remember_roles),
    )


def accounts_from_row(row: TenantPolicyRow) -> AccountSettings:
    return AccountSettings(
        password_min_length=row.password_min_length, self_service_reset=row.self_service_reset,
        reset_link_minutes=row.reset_link_minutes,
        require_verified_email=row.require_verified_email,
        self_registration=row.self_registration,
        registration_domains=tuple(row.registration_domains or ()),
        passwordless=row.passwordless,
    )
