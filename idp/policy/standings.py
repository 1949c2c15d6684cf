"""What a user's two-step verification is, outside a sign-in: ``standing()`` for the console's
users list, user page and report and for the user's own account page, and ``console_demand()``
for what the console asks of an admin before they act.

Both read the facts the way ``decide()`` reads them (``idp.policy.coverage``), so the console
shows "On" exactly for whom a password sign-in is challenged, and "Required" wherever the
sign-in would make the user set a factor up — an admin's reset included.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from idp.policy.coverage import policy_demand
from idp.policy.facts import AdminState, Mode, TenantPolicy, UserFacts
from idp.policy.levels import level_at_least
from idp.policy.words import _, role_name


class Standing(str, Enum):
    """A user's two-step verification as the console shows it (list, user page, report)."""

    OFF = "off"  # not asked: the tenant has it off, the role may not use it, or not covered
    EXEMPT = "exempt"  # an admin turned it off for this user: password only
    OPTIONAL = "optional"  # may set it up, has not: password only for now
    ON = "on"  # asked at every sign-in, from ``factors``
    REQUIRED = "required"  # must set it up at the next sign-in (or when the grace ends)


@dataclass(frozen=True)
class MfaStanding:
    state: Standing
    reason: str  # as an admin reads it ("this user")
    factors: tuple[str, ...] = ()  # asked at sign-in (ON), strongest first
    required: bool = False  # the policy or an admin asks it outright: the user cannot turn it off
    # May the user remove their last factor on their account page? Not when it is required,
    # nor when the tenant does not let users turn it off themselves.
    may_turn_off: bool = True
    # ``reason`` as said to the user on their account page, where it differs.
    to_you: str = ""
    # The types the user may add on their account page, strongest first: the tenant's allowed
    # ones where second factors are available to them, else none.
    may_add: tuple[str, ...] = ()

    @property
    def available(self) -> bool:
        """May the user set up and use second factors here at all?"""
        return self.state in (Standing.OPTIONAL, Standing.ON, Standing.REQUIRED)

    @property
    def reason_for_you(self) -> str:
        return self.to_you or self.reason


NOT_FOR_YOUR_ACCOUNT = _("Two-factor authentication is not available for your account; ask an "
                         "administrator.")


def standing(policy: TenantPolicy, user: UserFacts) -> MfaStanding:
    """What a password sign-in of this user is asked for, in the words of the console (and of
    the account page, ``to_you``). It reads the same facts as ``decide()`` the same way
    (``mfa_available``, ``policy_demand``, the enrolled factors the tenant allows), so a user
    shown "On" is challenged and one shown "Off" is not; tests/unit/test_policy_properties.py
    checks the two against each other."""
    if policy.mode is Mode.DISABLED:
        return MfaStanding(Standing.OFF, _("Two-step verification is off in this organisation."),
                           to_you=_("Two-factor authentication is not available."))
    if user.role not in policy.roles_allowed:
        return MfaStanding(Standing.OFF, _("Two-step verification is not available to the role "
                                           "%(role)s.", role=role_name(user.role)),
                           to_you=_("Two-factor authentication is not available for your role."))
    if user.admin_state is AdminState.EXEMPT:
        return MfaStanding(Standing.EXEMPT, _("An administrator turned two-step verification "
                                              "off for this user: they sign in with their "
                                              "password only."),
                           to_you=NOT_FOR_YOUR_ACCOUNT)
    demand = policy_demand(policy, user)
    if demand is None:
        return MfaStanding(Standing.OFF, _("The policy does not cover this user."),
                           to_you=NOT_FOR_YOUR_ACCOUNT)
    required = demand == "required"
    may_turn_off = not required and policy.self_disable
    may_add = user.kinds.ranked(policy.allowed_factors)
    usable = user.kinds.ranked(user.enrolled & policy.allowed_factors)
    if usable:
        return MfaStanding(Standing.ON, _("Asked for a second step at every sign-in."), usable,
                           required, may_turn_off, may_add=may_add)
    if required:
        return MfaStanding(Standing.REQUIRED, _("Must set up a second step at the next sign-in."),
                           required=True, may_turn_off=False, may_add=may_add)
    return MfaStanding(Standing.OPTIONAL, _("May set up a second step; has not yet."),
                       may_turn_off=may_turn_off, may_add=may_add)


# -- what the console asks of an admin ------------------------------------------------------

@dataclass(frozen=True)
class ConsoleDemand:
    """What an admin proves, fresh, before the console lets them act: a second step from
    ``factors`` reaching ``level``; ``level`` None when no second step is possible for them."""

    level: str | None
    factors: tuple[str, ...]
    reason: str
    methods: frozenset[str] = frozenset()  # the amr values a proof of one of ``factors`` adds

    def met_by(self, acr: str, amr) -> bool:
        """Does a session at ``acr`` with methods ``amr`` satisfy it (freshness is the
        console's)? At ``pwd`` the level says nothing: a question must have been answered."""
        if self.level is None or level_at_least(acr, "mfa"):
            return True
        return self.level == "pwd" and bool(self.methods & set(amr))


def console_demand(policy: TenantPolicy, admin: UserFacts) -> ConsoleDemand:
    """The console asks for the strongest second step the tenant lets this admin reach, capped
    at ``mfa``: a possession factor whenever the tenant allows one the admin holds or can set
    up (``decide()`` with ``second_step`` has them set one up after their own step); else a
    security question (a Klearcom-style tenant: never a level its admins cannot reach, which
    would lock them out of the console that could fix it); else the password alone, and the
    policy page says so before such a policy is saved."""
    if policy.mode is Mode.DISABLED:
        return ConsoleDemand(None, (), _("Two-step verification is off, so the console asks "
                                         "administrators for their password only."))
    if admin.role not in policy.roles_allowed:
        return ConsoleDemand(None, (), _("Administrators may not use two-step verification, so "
                                         "the console asks them for their password only."))
    kinds = admin.kinds
    allowed = policy.allowed_factors
    held = admin.enrolled & allowed
    strong = kinds.reaching(allowed, "mfa")
    if any(f in strong for f in held) or kinds.first_setups(allowed, "mfa"):
        return ConsoleDemand("mfa", strong, _("The console asks administrators for a second "
                                              "factor they hold, such as an authenticator app "
                                              "or a passkey."), _methods(kinds, strong))
    settable = kinds.first_setups(allowed, "pwd")
    weak = tuple(f for f in kinds.ranked(allowed) if f not in strong
                 and (f in held or f in settable))
    if weak:
        return ConsoleDemand("pwd", weak,
                             _("The console asks administrators to answer a security question. "
                               "Questions are knowledge like the password, not a second factor."),
                             _methods(kinds, weak))
    return ConsoleDemand(None, (), _("No method administrators can set up is allowed, so the "
                                     "console asks them for their password only."))


def _methods(kinds, factors) -> frozenset[str]:
    return frozenset(kinds.amr(f) for f in factors)
