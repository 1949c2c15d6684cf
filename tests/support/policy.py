"""The policy's facts for tests that call it directly: the kinds of factor the registry has
(the real ones, so a decision table tests what the factor classes say) and a tenant policy that
allows every one of them unless told otherwise (what a new policy row allows)."""

from __future__ import annotations

from idp import mfa
from idp.policy import TenantPolicy, UserFacts

KINDS = mfa.kinds()
EVERY_FACTOR = KINDS.types  # strongest first


def tenant_policy(**fields) -> TenantPolicy:
    fields.setdefault("allowed_factors", frozenset(EVERY_FACTOR))
    return TenantPolicy(**fields)


def user_facts(**fields) -> UserFacts:
    """``enrolled`` and ``groups`` may be any iterable."""
    fields.setdefault("kinds", KINDS)
    for name in ("enrolled", "groups"):
        if name in fields:
            fields[name] = frozenset(fields[name])
    return UserFacts(**fields)
