"""What a relying party's request asks for, as a level, and which level its ID token reports.

Both read the same request: ``acr_values`` (voluntary, OIDC Core 3.1.2.1), an essential ``acr``
claim in the ``claims`` parameter (OIDC Core 5.5.1.1: one of its values, or the sign-in
fails) and the client's registered minimum. ``decide()`` pursues the level wanted; the
authorization code grant reports what was reached, in the request's terms.
"""

from __future__ import annotations

from idp.policy.facts import Requirements
from idp.policy.levels import LEVELS, level_at_least

UNKNOWN = "unknown"  # an essential acr none of whose values is a level we offer


def requested_level(req: Requirements) -> tuple[str, bool]:
    """(level wanted, must it be met) from the request and the client. Of an essential claim's
    values the lowest is enough; ``UNKNOWN`` when none is ours."""
    levels = []
    if req.client_min_acr in LEVELS:
        levels.append((req.client_min_acr, True))
    essential = [v for v in req.essential_acr if v in LEVELS]
    if essential:
        levels.append((min(essential, key=LEVELS.index), True))
    elif req.essential_acr:
        return UNKNOWN, True
    voluntary = [v for v in req.acr_values if v in LEVELS]
    if voluntary:
        levels.append((min(voluntary, key=LEVELS.index), False))
    if not levels:
        return "pwd", False
    top = max(LEVELS.index(level) for level, _ in levels)
    must = any(LEVELS.index(level) == top and must for level, must in levels)
    return LEVELS[top], must


def reported_acr(reached: str, req: Requirements) -> str:
    """The ``acr`` the ID token says: the level reached, or for an essential request one of its
    values (OIDC Core 5.5.1.1) — the highest one the sign-in meets. ``decide()`` has already
    refused a sign-in that meets none."""
    essential = req.essential_acr
    if not essential or reached in essential:
        return reached
    met = [v for v in essential if v in LEVELS and level_at_least(reached, v)]
    return max(met, key=LEVELS.index) if met else reached
