"""``decide()``: what a sign-in still needs — nothing, a second factor from a set, a factor to
set up, or a refusal — and a sentence saying why.

Two different questions are answered here:

- **the tenant's policy** asks for a *second step* from the factor types it allows. Security
  questions may be one of them (a Klearcom-style tenant), and then ``pwd`` + ``kba`` satisfies
  the policy — while the token still says ``acr`` ``pwd``, since questions are knowledge;
- **the relying party** asks for a *level* (``acr_values``, an essential ``acr`` claim, the
  client's minimum): ``mfa`` needs a possession factor, ``phr`` needs WebAuthn.

A voluntary request that cannot be met is answered at the level reached (OIDC Core 3.1.2.1:
``acr_values`` is a voluntary claim); an essential one, or the client's minimum, ends in
``unmet_authentication_requirements`` (OIDC Core 5.5.1.1).

A **remembered browser** (``Progress.remembered``) answers the first question only, and only
where the tenant's remember settings cover the user (``remember_covers``): it adds no ``amr``,
so every level the relying party asks for is still asked in this sign-in. Nor does it stand in
when the relying party asked for a new authentication (``prompt=login``, an exceeded
``max_age``) or for our console's step-up: those want the second step proved now.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from idp.policy.coverage import in_grace, mfa_available, policy_demand, remember_covers
from idp.policy.facts import AdminState, Mode, Primary, Progress, Requirements, TenantPolicy, UserFacts
from idp.policy.levels import amr_and_acr, level_at_least
from idp.policy.requested import UNKNOWN, requested_level
from idp.policy.words import _, ngettext, role_name


class Need(str, Enum):
    NOTHING = "nothing"
    CHALLENGE = "challenge"
    ENROLL = "enroll"
    REFUSE = "refuse"
    # The first step must be the password: a passkey may not be the whole sign-in here, or it
    # did not verify its user and more than one step is needed (``_passkey_first``).
    PASSWORD = "password"


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
    # A challenge the tenant's policy asks, which a remembered browser could answer next time:
    # the challenge page may offer "don't ask again on this browser".
    rememberable: bool = False
    # Satisfied because a remembered browser stood in for the policy's second step.
    remembered: bool = False

    @property
    def reason_for_you(self) -> str:
        return self.to_you or self.reason

    @property
    def satisfied(self) -> bool:
        return self.need is Need.NOTHING


# What each level asks of a person, in words people use: level names never reach a page.
NEEDS = {
    "pwd": _("a password"),
    "mfa": _("a second step, such as an authenticator app or a text message"),
    "phr": _("a passkey or security key"),
}


def _unreachable(wanted: str) -> Decision:
    return Decision(Need.REFUSE, _("Signing in here needs %(need)s, and this account has none "
                                   "it can use here.", need=NEEDS[wanted]),
                    error="unmet_authentication_requirements",
                    to_you=_("Signing in here needs %(need)s, and your account has none it can "
                             "use here. Ask your administrator for help.", need=NEEDS[wanted]))


def decide(policy: TenantPolicy, user: UserFacts, req: Requirements, progress: Progress,
           now: datetime) -> Decision:
    """What this sign-in still needs. Pure: same facts, same answer."""
    kinds = user.kinds
    methods = set(progress.methods)
    _amr, reached = amr_and_acr(list(progress.methods))
    allowed = policy.allowed_factors
    available = mfa_available(policy, user)
    enrolled = frozenset(kinds.ranked(user.enrolled & allowed)) if available else frozenset()
    if progress.mailbox_proved:
        enrolled = kinds.beyond_mailbox(enrolled)
    wanted, must = requested_level(req)
    if wanted == UNKNOWN:
        return Decision(Need.REFUSE, _("The application asked for a kind of sign-in this "
                                       "organisation does not offer."), error="unmet_authentication_requirements")

    if progress.primary is Primary.PASSKEY:
        first = _passkey_first(policy, user, req, progress, now, available, enrolled)
        if first is not None:
            return first

    # A factor already proved in this sign-in cannot lift it further: never ask for it again.
    unproved = frozenset(f for f in enrolled if kinds.amr(f) not in methods)

    # An essential level no path can reach is refused now, before asking for anything.
    if must and not level_at_least(reached, wanted):
        reachable = kinds.reaching(unproved, wanted) or (
            _may_enroll_for(req, enrolled) and available and kinds.first_setups(allowed, wanted))
        if not reachable:
            return _unreachable(wanted)

    # 1. The tenant's policy: a second step from the allowed types, unless bypassed.
    demand = policy_demand(policy, user)
    if req.second_step and available:
        demand = "required"
    # A remembered browser may stand in for this branch only, and not for a re-authentication.
    remember = (remember_covers(policy, user) and not req.fresh_authentication
                and not req.second_step)
    stood_in = False
    bypass = None
    if progress.primary is Primary.FEDERATION_TRUSTED:
        bypass = _("The upstream sign-in is trusted for the second factor.")
    elif progress.primary is Primary.LOGIN_TOKEN and policy.login_token_bypass:
        bypass = _("Sign-in with a login token skips the second factor in this organisation.")
    proved_step = kinds.proved(allowed, methods)
    if demand and not bypass and not proved_step:
        if enrolled and remember and progress.remembered:
            stood_in = True  # on to the relying party's level, which it does not raise
        elif enrolled:
            if not level_at_least(reached, wanted):
                usable = kinds.reaching(unproved, wanted)
                if usable:
                    return Decision(Need.CHALLENGE, _("The organisation's policy asks for a "
                                                      "second step, and this sign-in needs "
                                                      "%(need)s.", need=NEEDS[wanted]),
                                    factors=usable, target_acr=wanted, rememberable=remember)
            return Decision(Need.CHALLENGE, _policy_reason(demand, user),
                            factors=kinds.ranked(enrolled), target_acr=reached,
                            rememberable=remember)
        elif demand == "required" and not progress.enrollment_skipped:
            grace, skips_left = (False, None) if req.second_step else in_grace(policy, user, now)
            candidates = kinds.first_setups(allowed, wanted) or kinds.first_setups(allowed, "pwd")
            if progress.mailbox_proved:
                candidates = kinds.beyond_mailbox(candidates)
            if not candidates:
                # Only recovery kinds allowed (backup codes recover an account, they are not
                # set up first): nothing to set up, and the policy is not waived for that.
                return Decision(Need.REFUSE, _("The organisation requires a second step, but "
                                               "allows no method that can be set up; ask an "
                                               "administrator."),
                                error="access_denied")
            return Decision(Need.ENROLL, _enroll_reason(policy, user, grace, skips_left),
                            factors=candidates, skippable=grace, skips_left=skips_left,
                            grace_until=policy.grace_until if grace else None,
                            to_you=_enroll_reason(policy, user, grace, skips_left, you=True))

    # 2. The relying party: a level.
    if level_at_least(reached, wanted):
        if bypass and demand:
            return Decision(Need.NOTHING, bypass)
        if stood_in:
            return Decision(Need.NOTHING, _("This browser passed the second step recently and "
                                            "is remembered, so the organisation's second step "
                                            "is not asked again."),
                            remembered=True)
        return Decision(Need.NOTHING, _satisfied_reason(policy, user, demand, reached))
    usable = kinds.reaching(unproved, wanted)
    if usable:
        return Decision(Need.CHALLENGE, _("This sign-in needs %(need)s; so far it has %(had)s.",
                                          need=NEEDS[wanted], had=NEEDS[reached]), factors=usable, counts_for_policy=False,
                        target_acr=wanted)
    if not must:
        floor = replace(req, acr_values=())
        if floor != req and requested_level(floor)[1]:
            # A wish above what must be met cannot be reached: what must be met still must
            # (a voluntary acr_values never lowers the client's floor or an essential acr).
            return decide(policy, user, floor, progress, now)
        return Decision(Need.NOTHING, _("The application would like %(need)s, but this "
                                        "account has no way to provide it; the sign-in goes on, "
                                        "and the token says what was done.", need=NEEDS[wanted]))
    if _may_enroll_for(req, enrolled) and available:
        candidates = kinds.first_setups(allowed, wanted)
        if progress.mailbox_proved:
            candidates = kinds.beyond_mailbox(candidates)
        if candidates:
            return Decision(Need.ENROLL, _("Signing in here needs %(need)s: this account must "
                                           "set one up first.", need=NEEDS[wanted]),
                            factors=candidates, counts_for_policy=False, target_acr=wanted,
                            to_you=_("Signing in here needs %(need)s. Set one up now to "
                                     "continue.", need=NEEDS[wanted]))
    return _unreachable(wanted)


def _passkey_first(policy: TenantPolicy, user: UserFacts, req: Requirements, progress: Progress,
                   now: datetime, available: bool, enrolled: frozenset) -> Decision | None:
    """A sign-in that began with a passkey: None when the rest of ``decide`` applies as it
    stands, else the decision.

    The tenant must allow it (``passkey_first``, WebAuthn an allowed method, second steps
    available to the user). A passkey that verified its user (PIN, fingerprint, face) is two
    kinds of factor in one, so the policy's second step and every level are met by it. One
    that did not is one step, like a password: enough where a password alone would be, and
    otherwise the sign-in starts again with the password (whose second step the passkey can
    then be). A step-up of such a session that kept nothing (the console's, which asks afresh)
    asks for a passkey again."""
    if not (policy.passkey_first and "webauthn" in policy.allowed_factors and available):
        return Decision(Need.PASSWORD, _("Passkeys cannot be the whole sign-in in this "
                                         "organisation: the password comes first."),
                        to_you=_("You cannot sign in with a passkey here. Sign in with your "
                                 "email and password."))
    if not progress.methods:
        if "webauthn" in enrolled:
            return Decision(Need.CHALLENGE, _("The sign-in began with a passkey: it is asked "
                                              "for again."), factors=("webauthn",), target_acr="phr")
        return Decision(Need.PASSWORD, _("This account has no passkey any more."),
                        to_you=_("Sign in with your email and password."))
    if "user" in progress.methods:
        return None
    alone = decide(policy, user, req, replace(progress, primary=Primary.PASSWORD,
                                              methods=("pwd",)), now)
    if alone.need is Need.NOTHING:
        return replace(alone, reason=_("A passkey that did not verify who uses it is one step, "
                                       "like a password; nothing more is asked here."), to_you="")
    if alone.need is Need.REFUSE:
        return alone
    return Decision(Need.PASSWORD, _("The passkey did not verify who uses it (no PIN, "
                                     "fingerprint or face), so it is one step, and this sign-in "
                                     "needs more."),
                    to_you=_("Your passkey did not ask for your PIN, fingerprint or face, so it "
                             "counts as one step, and signing in here needs two. Sign in with "
                             "your password, then use your passkey as the second step."))


def _may_enroll_for(req: Requirements, enrolled) -> bool:
    """May a factor be set up to reach the wanted level? For a user with none; and for our
    console, also once the user's own weaker step is proved (the policy's branch above asks it
    first): an admin holding only security questions sets up an app rather than being locked
    out of the console."""
    return not enrolled or req.second_step


def _policy_reason(demand: str, user: UserFacts) -> str:
    if user.admin_state is AdminState.ENFORCED:
        return _("An administrator turned on two-step verification for this account.")
    if demand == "required":
        return _("The organisation requires a second step at sign-in.")
    return _("This account has a second step set up, and the organisation allows it.")


def _enroll_reason(policy: TenantPolicy, user: UserFacts, grace: bool, skips_left,
                   you: bool = False) -> str:
    """Why setup is asked for; ``you``: said to the person signing in."""
    if user.must_reenroll:
        return (_("An administrator reset your second steps: set one up again.") if you else
                _("An administrator reset this account’s second steps: set one up again."))
    if user.admin_state is AdminState.ENFORCED:
        return (_("An administrator turned on two-step verification for your account: set it "
                  "up now.") if you else
                _("An administrator turned on two-step verification for this account: set it "
                  "up now."))
    if grace:
        until, skips = policy.grace_until, skips_left
        if until is not None and skips is not None:
            return ngettext("The organisation requires a second step; setup can wait (until "
                            "%(date)s, %(num)d more skip).",
                            "The organisation requires a second step; setup can wait (until "
                            "%(date)s, %(num)d more skips).", skips, date=until)
        if until is not None:
            return _("The organisation requires a second step; setup can wait (until %(date)s).",
                     date=until)
        if skips is not None:
            return ngettext("The organisation requires a second step; setup can wait (%(num)d "
                            "more skip).",
                            "The organisation requires a second step; setup can wait (%(num)d "
                            "more skips).", skips)
        return _("The organisation requires a second step; setup can wait.")
    if policy.grace_until is not None or policy.grace_skips is not None:
        return _("The organisation requires a second step and the grace period is over: set it "
                 "up now.")
    return _("The organisation requires a second step: set it up now.")


def _satisfied_reason(policy: TenantPolicy, user: UserFacts, demand: str | None, reached: str) -> str:
    if policy.mode is Mode.DISABLED:
        return _("Two-factor authentication is not available in this organisation.")
    if user.role not in policy.roles_allowed:
        return _("Two-factor authentication is not available to the role %(role)s.",
                 role=role_name(user.role))
    if user.admin_state is AdminState.EXEMPT:
        return _("An administrator exempted this account from two-step verification.")
    if demand is None:
        return _("The organisation's policy does not cover this account.")
    if demand == "optional" and not user.enrolled:
        return _("Two-step verification is optional and this account has not set it up.")
    return _("Everything asked for is done.")
