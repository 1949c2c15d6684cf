"""The one place that decides whether a sign-in needs a second factor, and which.

``decide()`` is a pure function of typed facts — the tenant's policy, the user, the client's
and the request's requirements, what the sign-in has proved so far — to a ``Decision``: what is
still needed and a sentence saying why. The sign-in journey, the console's "what happens if…"
panel and the tests all call it; nothing else decides whether MFA is needed.

Two different questions are answered here:

- **the tenant's policy** asks for a *second step* from the factor types it allows. Security
  questions may be one of them (a Klearcom-style tenant), and then ``pwd`` + ``kba`` satisfies
  the policy — while the token still says ``acr`` ``pwd``, since questions are knowledge;
- **the relying party** asks for a *level* (``acr_values``, an essential ``acr`` claim, the
  client's minimum): ``mfa`` needs a possession factor, ``phr`` needs WebAuthn.

A voluntary request that cannot be met is answered at the level reached (OIDC Core 3.1.2.1:
``acr_values`` is a voluntary claim); an essential one, or the client's minimum, ends in
``unmet_authentication_requirements`` (OIDC Core 5.5.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from idp.oidc.claims import LEVELS, amr_and_acr, level_at_least

# Factor types, the amr each one proves, and the level its proof reaches with a password.
FACTOR_AMR = {"webauthn": "hwk", "totp": "otp", "sms": "sms", "backup": "otp", "kba": "kba"}
FACTOR_LEVEL = {"webauthn": "phr", "totp": "mfa", "sms": "mfa", "backup": "mfa", "kba": "pwd"}
ALL_FACTORS = ("webauthn", "totp", "sms", "kba", "backup")


class Mode(str, Enum):
    DISABLED = "disabled"
    OPTIONAL = "optional"
    REQUIRED = "required"


class AdminState(str, Enum):
    DEFAULT = "default"
    ENFORCED = "enforced"  # an admin switched MFA on for this user; the user cannot turn it off
    EXEMPT = "exempt"  # an admin switched MFA off for this user


class Primary(str, Enum):
    """How the user proved who they are before any second factor."""

    PASSWORD = "password"
    LOGIN_TOKEN = "login_token"
    FEDERATION = "federation"  # an upstream the tenant does not trust for MFA
    FEDERATION_TRUSTED = "federation_trusted"  # the upstream's MFA counts here


@dataclass(frozen=True)
class TenantPolicy:
    mode: Mode = Mode.DISABLED
    everyone: bool = True  # else only ``groups`` and ``users``
    groups: frozenset[str] = frozenset()
    users: frozenset[int] = frozenset()
    grace_until: datetime | None = None
    grace_skips: int | None = None
    allowed_factors: frozenset[str] = frozenset(ALL_FACTORS)
    roles_allowed: frozenset[str] = frozenset({"admin", "member"})
    self_disable: bool = True
    login_token_bypass: bool = True


@dataclass(frozen=True)
class UserFacts:
    id: int
    role: str = "member"
    groups: frozenset[str] = frozenset()
    admin_state: AdminState = AdminState.DEFAULT
    must_reenroll: bool = False  # an admin reset MFA: set up again at next sign-in
    skips_used: int = 0
    enrolled: frozenset[str] = frozenset()  # factor types the user can answer now


@dataclass(frozen=True)
class Requirements:
    """What the relying party asked for."""

    acr_values: tuple[str, ...] = ()  # voluntary, at least the lowest listed
    essential_acr: tuple[str, ...] = ()  # from the claims parameter: one of these, or fail
    client_min_acr: str | None = None  # the client's registered floor: must be met
    # Our own console asks for a fresh second step from the allowed types, whatever the policy's
    # scope and grace say (``console_demand``): an admin action is never password-only when a
    # second step is possible.
    second_step: bool = False


@dataclass(frozen=True)
class Progress:
    """What this sign-in (or the SSO session it steps up) has proved so far."""

    primary: Primary = Primary.PASSWORD
    methods: tuple[str, ...] = ("pwd",)
    enrollment_skipped: bool = False  # the user used a grace skip in this sign-in


class Need(str, Enum):
    NOTHING = "nothing"
    CHALLENGE = "challenge"
    ENROLL = "enroll"
    REFUSE = "refuse"


@dataclass(frozen=True)
class Decision:
    need: Need
    reason: str
    factors: tuple[str, ...] = ()  # to challenge (enrolled) or to enroll (allowed), strongest first
    skippable: bool = False
    skips_left: int | None = None
    grace_until: datetime | None = None
    error: str | None = None  # the OAuth error when refused
    counts_for_policy: bool = True  # does the policy (not only the RP) ask for this?
    target_acr: str = "pwd"
    # ``reason`` as said to the person signing in ("your account"), where it differs from what
    # an admin reads in the console and the audit ("this account"). Neither names a level.
    to_you: str = ""

    @property
    def reason_for_you(self) -> str:
        return self.to_you or self.reason

    @property
    def satisfied(self) -> bool:
        return self.need is Need.NOTHING


# Backup codes recover an account; they are never the factor a user is asked to set up first.
ENROLLABLE = ("webauthn", "totp", "sms", "kba")


# What each level asks of a person, in words people use: level names never reach a page.
NEEDS = {
    "pwd": "a password",
    "mfa": "a second step, such as an authenticator app or a text message",
    "phr": "a passkey or security key",
}


def _unreachable(wanted: str) -> Decision:
    return Decision(Need.REFUSE, f"Signing in here needs {NEEDS[wanted]}, and this account has "
                    f"none it can use here.", error="unmet_authentication_requirements",
                    to_you=f"Signing in here needs {NEEDS[wanted]}, and your account has none "
                    f"it can use here. Ask your administrator for help.")


def _rank(factors) -> tuple[str, ...]:
    factors = set(factors)
    return tuple(f for f in ALL_FACTORS if f in factors)


def _enrollable(allowed, wanted: str) -> tuple[str, ...]:
    return _rank(f for f in ENROLLABLE if f in allowed and level_at_least(FACTOR_LEVEL[f], wanted))


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


def _policy_demand(policy: TenantPolicy, user: UserFacts) -> str | None:
    """"required", "optional" or None: how strongly the policy asks this user for a second step."""
    if not policy_applies(policy, user):
        return None
    if user.admin_state is AdminState.ENFORCED or user.must_reenroll:
        return "required"
    return policy.mode.value


def _in_grace(policy: TenantPolicy, user: UserFacts, now: datetime) -> tuple[bool, int | None]:
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


def _requested_level(req: Requirements) -> tuple[str, bool]:
    """(level wanted, must it be met) from the request and the client."""
    levels = []
    if req.client_min_acr in LEVELS:
        levels.append((req.client_min_acr, True))
    essential = [v for v in req.essential_acr if v in LEVELS]
    if essential:
        levels.append((min(essential, key=LEVELS.index), True))
    elif req.essential_acr:
        levels.append(("unknown", True))
    voluntary = [v for v in req.acr_values if v in LEVELS]
    if voluntary:
        levels.append((min(voluntary, key=LEVELS.index), False))
    if not levels:
        return "pwd", False
    if any(level == "unknown" for level, _ in levels):
        return "unknown", True
    top = max(LEVELS.index(level) for level, _ in levels)
    must = any(LEVELS.index(level) == top and must for level, must in levels)
    return LEVELS[top], must


def decide(policy: TenantPolicy, user: UserFacts, req: Requirements, progress: Progress,
           now: datetime) -> Decision:
    """What this sign-in still needs. Pure: same facts, same answer."""
    methods = set(progress.methods)
    _, reached = amr_and_acr(list(progress.methods))
    allowed = policy.allowed_factors
    enrolled = user.enrolled & allowed if mfa_available(policy, user) else frozenset()
    wanted, must = _requested_level(req)
    if wanted == "unknown":
        return Decision(Need.REFUSE, "The application asked for a kind of sign-in this "
                        "organisation does not offer.", error="unmet_authentication_requirements")

    # A factor already proved in this sign-in cannot lift it further: never ask for it again.
    unproved = frozenset(f for f in enrolled if FACTOR_AMR[f] not in methods)

    # An essential level no path can reach is refused now, before asking for anything.
    if must and not level_at_least(reached, wanted):
        reachable = any(level_at_least(FACTOR_LEVEL[f], wanted) for f in unproved) or (
            _may_enroll_for(req, enrolled) and mfa_available(policy, user)
            and _enrollable(allowed, wanted))
        if not reachable:
            return _unreachable(wanted)

    # 1. The tenant's policy: a second step from the allowed types, unless bypassed.
    demand = _policy_demand(policy, user)
    if req.second_step and mfa_available(policy, user):
        demand = "required"
    bypass = None
    if progress.primary is Primary.FEDERATION_TRUSTED:
        bypass = "The upstream sign-in is trusted for the second factor."
    elif progress.primary is Primary.LOGIN_TOKEN and policy.login_token_bypass:
        bypass = "Sign-in with a login token skips the second factor in this organisation."
    proved_step = any(FACTOR_AMR[f] in methods for f in allowed if f in FACTOR_AMR)
    if demand and not bypass and not proved_step:
        if enrolled:
            if not level_at_least(reached, wanted):
                usable = tuple(f for f in _rank(unproved) if level_at_least(FACTOR_LEVEL[f], wanted))
                if usable:
                    return Decision(Need.CHALLENGE, f"The organisation's policy asks for a second "
                                    f"step, and this sign-in needs {NEEDS[wanted]}.",
                                    factors=usable, target_acr=wanted)
            return Decision(Need.CHALLENGE, _policy_reason(demand, user),
                            factors=_rank(enrolled), target_acr=reached)
        if demand == "required" and not progress.enrollment_skipped:
            in_grace, skips_left = (False, None) if req.second_step else _in_grace(policy, user, now)
            candidates = _enrollable(allowed, wanted) or _enrollable(allowed, "pwd")
            if not candidates:
                # Only backup codes allowed (they recover an account, they are not set up
                # first): nothing to set up, and the policy is not waived for that.
                return Decision(Need.REFUSE, "The organisation requires a second step, but "
                                "allows no method that can be set up; ask an administrator.",
                                error="access_denied")
            return Decision(Need.ENROLL, _enroll_reason(policy, user, in_grace, skips_left),
                            factors=candidates, skippable=in_grace, skips_left=skips_left,
                            grace_until=policy.grace_until if in_grace else None,
                            to_you=_enroll_reason(policy, user, in_grace, skips_left, you=True))

    # 2. The relying party: a level.
    if level_at_least(reached, wanted):
        if bypass and demand:
            return Decision(Need.NOTHING, bypass)
        return Decision(Need.NOTHING, _satisfied_reason(policy, user, demand, reached))
    usable = tuple(f for f in _rank(unproved) if level_at_least(FACTOR_LEVEL[f], wanted))
    if usable:
        return Decision(Need.CHALLENGE, f"This sign-in needs {NEEDS[wanted]}; so far it has "
                        f"{NEEDS[reached]}.", factors=usable, counts_for_policy=False,
                        target_acr=wanted)
    if not must:
        floor = Requirements(essential_acr=req.essential_acr, client_min_acr=req.client_min_acr)
        if floor != req and _requested_level(floor)[1]:
            # A wish above what must be met cannot be reached: what must be met still must
            # (a voluntary acr_values never lowers the client's floor or an essential acr).
            return decide(policy, user, floor, progress, now)
        return Decision(Need.NOTHING, f"The application would like {NEEDS[wanted]}, but this "
                        f"account has no way to provide it; the sign-in goes on, and the token "
                        f"says what was done.")
    if _may_enroll_for(req, enrolled) and mfa_available(policy, user):
        candidates = _enrollable(allowed, wanted)
        if candidates:
            return Decision(Need.ENROLL, f"Signing in here needs {NEEDS[wanted]}: this account "
                            f"must set one up first.", factors=candidates,
                            counts_for_policy=False, target_acr=wanted,
                            to_you=f"Signing in here needs {NEEDS[wanted]}. Set one up now to "
                            f"continue.")
    return _unreachable(wanted)


def _may_enroll_for(req: Requirements, enrolled) -> bool:
    """May a factor be set up to reach the wanted level? For a user with none; and for our
    console, also once the user's own weaker step is proved (the policy's branch above asks it
    first): an admin holding only security questions sets up an app rather than being locked
    out of the console."""
    return not enrolled or req.second_step


def _policy_reason(demand: str, user: UserFacts) -> str:
    if user.admin_state is AdminState.ENFORCED:
        return "An administrator turned on two-step verification for this account."
    if demand == "required":
        return "The organisation requires a second step at sign-in."
    return "This account has a second step set up, and the organisation allows it."


def _enroll_reason(policy: TenantPolicy, user: UserFacts, in_grace: bool, skips_left,
                   you: bool = False) -> str:
    """Why setup is asked for; ``you``: said to the person signing in."""
    account = "your account" if you else "this account"
    if user.must_reenroll:
        return (f"An administrator reset {'your' if you else 'this account’s'} second steps: "
                f"set one up again.")
    if user.admin_state is AdminState.ENFORCED:
        return f"An administrator turned on two-step verification for {account}: set it up now."
    if in_grace:
        left = []
        if policy.grace_until is not None:
            left.append(f"until {policy.grace_until:%Y-%m-%d}")
        if skips_left is not None:
            left.append(f"{skips_left} more skip{'s' if skips_left != 1 else ''}")
        return "The organisation requires a second step; setup can wait (" + ", ".join(left) + ")."
    if policy.grace_until is not None or policy.grace_skips is not None:
        return "The organisation requires a second step and the grace period is over: set it up now."
    return "The organisation requires a second step: set it up now."


def _satisfied_reason(policy: TenantPolicy, user: UserFacts, demand: str | None, reached: str) -> str:
    if policy.mode is Mode.DISABLED:
        return "Two-factor authentication is not available in this organisation."
    if user.role not in policy.roles_allowed:
        return f"Two-factor authentication is not available to the role {user.role}."
    if user.admin_state is AdminState.EXEMPT:
        return "An administrator exempted this account from two-step verification."
    if demand is None:
        return "The organisation's policy does not cover this account."
    if demand == "optional" and not user.enrolled:
        return "Two-step verification is optional and this account has not set it up."
    return "Everything asked for is done."


# -- what a user's two-step verification looks like to an admin ------------------------------

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
    reason: str
    factors: tuple[str, ...] = ()  # asked at sign-in (ON), strongest first
    required: bool = False  # the policy or an admin asks it outright: the user cannot turn it off


def standing(policy: TenantPolicy, user: UserFacts) -> MfaStanding:
    """What a password sign-in of this user is asked for, in the words of the console. It
    reads the same facts as ``decide()`` the same way (``mfa_available``, ``_policy_demand``,
    the enrolled factors the tenant allows), so a user shown "On" is challenged and one shown
    "Off" is not; tests/unit/test_policy.py checks the two against each other."""
    if policy.mode is Mode.DISABLED:
        return MfaStanding(Standing.OFF, "Two-step verification is off in this organisation.")
    if user.role not in policy.roles_allowed:
        return MfaStanding(Standing.OFF, f"Two-step verification is not available to the role "
                                         f"{user.role}.")
    if user.admin_state is AdminState.EXEMPT:
        return MfaStanding(Standing.EXEMPT, "An administrator turned two-step verification off "
                                            "for this user: they sign in with their password only.")
    demand = _policy_demand(policy, user)
    if demand is None:
        return MfaStanding(Standing.OFF, "The policy does not cover this user.")
    required = demand == "required"
    usable = _rank(user.enrolled & policy.allowed_factors)
    if usable:
        return MfaStanding(Standing.ON, "Asked for a second step at every sign-in.", usable,
                           required)
    if required:
        return MfaStanding(Standing.REQUIRED, "Must set up a second step at the next sign-in.",
                           required=True)
    return MfaStanding(Standing.OPTIONAL, "May set up a second step; has not yet.")


# -- what the console asks of an admin ------------------------------------------------------

@dataclass(frozen=True)
class ConsoleDemand:
    """What an admin proves, fresh, before the console lets them act: a second step from
    ``factors`` reaching ``level``; ``level`` None when no second step is possible for them."""

    level: str | None
    factors: tuple[str, ...]
    reason: str

    def met_by(self, acr: str, amr) -> bool:
        """Does a session at ``acr`` with methods ``amr`` satisfy it (freshness is the
        console's)? At ``pwd`` the level says nothing: a question must have been answered."""
        if self.level is None or level_at_least(acr, "mfa"):
            return True
        return self.level == "pwd" and any(FACTOR_AMR[f] in amr for f in self.factors)


def console_demand(policy: TenantPolicy, admin: UserFacts) -> ConsoleDemand:
    """The console asks for the strongest second step the tenant lets this admin reach, capped
    at ``mfa``: a possession factor whenever the tenant allows one the admin holds or can set
    up (``decide()`` with ``second_step`` has them set one up after their own step); else a
    security question (a Klearcom-style tenant: never a level its admins cannot reach, which
    would lock them out of the console that could fix it); else the password alone, and the
    policy page says so before such a policy is saved."""
    if policy.mode is Mode.DISABLED:
        return ConsoleDemand(None, (), "Two-step verification is off, so the console asks "
                                       "administrators for their password only.")
    if admin.role not in policy.roles_allowed:
        return ConsoleDemand(None, (), "Administrators may not use two-step verification, so "
                                       "the console asks them for their password only.")
    allowed = policy.allowed_factors
    held = admin.enrolled & allowed
    strong = _rank(f for f in allowed if level_at_least(FACTOR_LEVEL[f], "mfa"))
    if any(f in strong for f in held) or _enrollable(allowed, "mfa"):
        return ConsoleDemand("mfa", strong, "The console asks administrators for a second "
                                            "factor they hold, such as an authenticator app or "
                                            "a passkey.")
    weak = _rank(f for f in allowed if f not in strong)
    if held or _enrollable(allowed, "pwd"):
        return ConsoleDemand("pwd", tuple(f for f in weak if f in held or f in ENROLLABLE),
                             "The console asks administrators to answer a security question. "
                             "Questions are knowledge like the password, not a second factor.")
    return ConsoleDemand(None, (), "No method administrators can set up is allowed, so the "
                                   "console asks them for their password only.")
