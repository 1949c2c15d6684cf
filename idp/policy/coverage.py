"""Whom the tenant's policy covers, and how strongly it asks them: the reading of the facts
that ``decide()`` (a sign-in) and ``standing()`` (the console, the account page) share, so the
two can never disagree about a user.
"""

from __future__ import annotations

from datetime import datetime

from idp.policy.facts import AdminState, Mode, TenantPolicy, UserFacts


def mfa_available(policy: TenantPolicy, user: UserFacts) -> bool:
    """May this user use second factors at all? ("Two-factor authentication is not available")"""
    return policy.mode is not Mode.DISABLED and user.role in policy.roles_allowed


def policy_applies(policy: TenantPolicy, user: UserFacts) -> bool:
    """Is the tenant's policy in force for this user (before bypasses and progress)?"""
    if not mfa_available(policy, user) or user.admin_state is AdminState.EXEMPT:
        return False
    if user.admin_state is AdminState.ENFORCED or user.must_reenroll:
        return True
    return policy.everyone or bool(user.groups & policy.groups) or user.id in policy.users


def policy_demand(policy: TenantPolicy, user: UserFacts) -> str | None:
    """"required", "optional" or None: how strongly the policy asks this user for a second step.
    An admin's enforcement and an admin's reset make it required, whatever the tenant's mode."""
    if not policy_applies(policy, user):
        return None
    if user.admin_state is AdminState.ENFORCED or user.must_reenroll:
        return "required"
    return policy.mode.value


def in_grace(policy: TenantPolicy, user: UserFacts, now: datetime) -> tuple[bool, int | None]:
    """(still in grace, skips left) — reset and admin enforcement allow no grace."""
    if user.must_reenroll or user.admin_state is AdminState.ENFORCED:
        return False, None
    skips_left = None
    if policy.grace_skips is not None:
        skips_left = max(policy.grace_skips - user.skips_used, 0)
    by_date = policy.grace_until is not None and now < policy.grace_until
    by_skips = skips_left is not None and skips_left > 0
    if policy.grace_until is not None and policy.grace_skips is not None:
        return by_date and by_skips, skips_left  # both limits hold when both are set
    return by_date or by_skips, skips_left


def remember_covers(policy: TenantPolicy, user: UserFacts) -> bool:
    """May a remembered browser stand in for this user's second step? Only where the tenant
    remembers browsers at all (``remember_days``), for the roles it names, and for everyone or
    the members of its groups. An admin's reset asks for a factor set up again, which no
    remembered browser replaces."""
    return (policy.remember_days > 0 and user.role in policy.remember_roles
            and not user.must_reenroll
            and (policy.remember_everyone or bool(user.groups & policy.remember_groups)))
