"""The facts ``policy.decide()`` needs, read from the database and the authorization request.

Reading is all this module does; the decision is ``idp.policy``'s alone.
"""

from __future__ import annotations

from flask import has_request_context
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import mfa
from idp.cache import Snapshots
from idp.guard import Limits
from idp.models import Authenticator, Client, Tenant, TenantPolicyRow, User
from idp.policy import AdminState, Mode, Requirements, TenantPolicy, UserFacts
from idp.untrusted import UntrustedInput, parse_json_object


class BadClaimsParameter(ValueError):
    """The ``claims`` request parameter is not the JSON object OIDC Core 5.5 describes."""


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


def enrolled_types(db: Session, user: User,
                   authenticators: list[Authenticator] | None = None) -> frozenset[str]:
    """Factor types the user can answer now (a spent set of backup codes cannot); from
    ``authenticators`` when the request holds all of the user's already (its own rows, so
    what it changed counts), else read."""
    if authenticators is None:
        authenticators = db.scalars(select(Authenticator).where(Authenticator.user_id == user.id))
    return frozenset(auth.type for auth in authenticators if mfa.answerable(auth))


def user_facts(db: Session, user: User,
               authenticators: list[Authenticator] | None = None) -> UserFacts:
    return facts_of(user, enrolled_types(db, user, authenticators))


def facts_of(user: User, enrolled: frozenset[str]) -> UserFacts:
    """A user's facts when the caller has read their answerable factor types already (the
    console reads a page of users' at once)."""
    return UserFacts(
        id=user.id, role=user.role, groups=frozenset(g.name for g in user.groups),
        admin_state=AdminState(user.mfa_admin_state), must_reenroll=user.mfa_must_reenroll,
        skips_used=user.mfa_skips_used, enrolled=enrolled,
    )


def essential_acr(params: dict) -> tuple[str, ...]:
    """The values of an essential ``acr`` claim in the ``claims`` parameter (OIDC Core 5.5.1.1)."""
    raw = params.get("claims")
    if not raw:
        return ()
    try:
        claims = parse_json_object(raw, what="claims parameter")
    except UntrustedInput as e:
        raise BadClaimsParameter(str(e)) from None
    request = claims.get("id_token")
    acr = request.get("acr") if isinstance(request, dict) else None
    if not isinstance(acr, dict) or not acr.get("essential"):
        return ()
    values = acr.get("values") or ([acr["value"]] if "value" in acr else [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
        raise BadClaimsParameter("An essential acr claim needs a value or a list of values.")
    return tuple(values)


def requirements(params: dict, client: Client | None) -> Requirements:
    return Requirements(
        acr_values=tuple(params.get("acr_values", "").split()),
        essential_acr=essential_acr(params),
        client_min_acr=client.min_acr if client else None,
    )
