"""A tenant's policy row, read: the policy ``decide()`` reads and the guard's thresholds.

One snapshot per worker and tenant (``idp.cache``), read together. Reading is all this module
does; deciding is ``idp.policy``'s.
"""

from __future__ import annotations

from flask import has_request_context
from sqlalchemy.orm import Session

from idp.cache import Snapshots
from idp.guard import Limits
from idp.models import Tenant, TenantPolicyRow
from idp.policy import Mode, TenantPolicy

# One snapshot per tenant of its policy row: the policy ``decide()`` reads and the guard's
# thresholds, read together (``idp.cache``).
POLICY_ROWS: Snapshots[int, tuple[TenantPolicy, Limits]] = Snapshots("tenant-policies")


def tenant_policy(db: Session, tenant: Tenant) -> TenantPolicy:
    """The tenant's policy (in a request, the per-worker snapshot)."""
    if has_request_context():
        return POLICY_ROWS.get(tenant.id, lambda: _read_policy_row(db, tenant.id))[0]
    return _read_policy_row(db, tenant.id)[0]


def limits(db: Session, tenant_id: int) -> Limits:
    """The tenant's attempt thresholds for the guard (the same snapshot as the policy)."""
    return POLICY_ROWS.get(tenant_id, lambda: _read_policy_row(db, tenant_id))[1]


def _read_policy_row(db: Session, tenant_id: int) -> tuple[TenantPolicy, Limits]:
    row = db.get(TenantPolicyRow, tenant_id)
    if row is None:
        return TenantPolicy(), Limits()
    return policy_from_row(row), Limits(row.captcha_after, row.lock_after, row.lock_minutes * 60)


def policy_from_row(row: TenantPolicyRow) -> TenantPolicy:
    return TenantPolicy(
        mode=Mode(row.mode), everyone=row.everyone, groups=frozenset(row.groups),
        users=frozenset(row.users), grace_until=row.grace_until, grace_skips=row.grace_skips,
        allowed_factors=frozenset(row.allowed_factors), roles_allowed=frozenset(row.roles_allowed),
        self_disable=row.self_disable, login_token_bypass=row.login_token_bypass,
    )


