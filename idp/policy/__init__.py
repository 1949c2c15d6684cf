"""The one place that decides whether a sign-in needs a second factor, and which.

``decide()`` is a pure function of typed facts — the tenant's policy, the user, the client's
and the request's requirements, what the sign-in has proved so far — to a ``Decision``: what is
still needed and a sentence saying why. The sign-in journey, the console's "what happens if…"
panel and the tests all call it; nothing else decides whether MFA is needed. ``standing()``
answers the same question for the console and the account page, outside a sign-in.

Pure, and the bottom of the layers: this package imports only the standard library. What it
knows of each factor type (its ``amr``, its strength, whether it is set up first) comes in as
data, ``FactorKinds``, which the registry in ``idp.mfa`` builds from the factor classes.

- ``facts``: the typed inputs;
- ``levels``: ``amr`` and ``acr``, the rule from the methods used to the level reached;
- ``requested``: the level a request asks for, and the ``acr`` its token reports;
- ``coverage``: whom the tenant's policy covers, and how strongly;
- ``decision``: ``decide()``, what a sign-in still needs;
- ``standings``: ``standing()``, a user's two-step verification outside a sign-in, and the console's demand.

The names below are the package's interface: callers import them from ``idp.policy``.
"""

from idp.policy.coverage import mfa_available, policy_applies, remember_covers
from idp.policy.decision import Decision, Need, decide
from idp.policy.facts import (AdminState, FactorKind, FactorKinds, Mode, Primary, Progress,
                              Requirements, TenantPolicy, UserFacts)
from idp.policy.levels import KIND, LEVELS, amr_and_acr, level_at_least
from idp.policy.requested import reported_acr, requested_level
from idp.policy.standings import ConsoleDemand, MfaStanding, Standing, console_demand, standing

__all__ = [
    "KIND", "LEVELS", "AdminState", "ConsoleDemand", "Decision", "FactorKind", "FactorKinds",
    "MfaStanding", "Mode", "Need", "Primary", "Progress", "Requirements", "Standing",
    "TenantPolicy", "UserFacts", "amr_and_acr", "console_demand", "decide", "level_at_least",
    "mfa_available", "policy_applies", "remember_covers", "reported_acr", "requested_level", "standing",
]
