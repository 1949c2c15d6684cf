"""The typed facts the policy decides from: the tenant's policy, the user, what the relying
party asked for, what the sign-in proved so far, and the kinds of factor there are.

Plain frozen dataclasses, read from the database and the request by the layers above
(``idp.tenant_policy``, ``idp.journey.facts``). The kinds of factor are data too: each factor
class in ``idp.mfa`` states its own facts, and ``idp.mfa.kinds()`` hands them here, so the
policy never keeps a table of factor types of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from idp.policy.levels import amr_and_acr, level_at_least


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
    PASSKEY = "passkey"  # a passkey alone: the whole sign-in when it verified the user
    LOGIN_TOKEN = "login_token"
    FEDERATION = "federation"  # an upstream the tenant does not trust for MFA
    FEDERATION_TRUSTED = "federation_trusted"  # the upstream's MFA counts here


@dataclass(frozen=True)
class FactorKind:
    """What the policy needs to know of one factor type, as its class in ``idp.mfa`` says it."""

    type: str  # the factor type: "totp"
    amr: str  # the RFC 8176 value its proof adds to the token
    rank: int  # lower is stronger, and offered first
    # A way back in when the usual factor is lost (backup codes): never the first factor a
    # user is asked to set up.
    recovery: bool = False
    # Its proof comes through the account's mailbox (codes by email): the same mailbox a
    # reset link or an invitation went to.
    via_mailbox: bool = False

    @property
    def level(self) -> str:
        """The level its proof reaches on top of a password (``kba``: still ``pwd``)."""
        return amr_and_acr(["pwd", self.amr])[1]


@dataclass(frozen=True)
class FactorKinds:
    """Every kind of factor there is (``idp.mfa.kinds()``), strongest first. Types it does not
    know (a type a tenant's row still names after its module was removed) are never offered."""

    kinds: tuple[FactorKind, ...]
    _by_type: dict[str, FactorKind] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        ordered = tuple(sorted(self.kinds, key=lambda k: k.rank))
        object.__setattr__(self, "kinds", ordered)
        object.__setattr__(self, "_by_type", {k.type: k for k in ordered})

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(k.type for k in self.kinds)

    def amr(self, type_: str) -> str | None:
        kind = self._by_type.get(type_)
        return kind.amr if kind else None

    def ranked(self, types) -> tuple[str, ...]:
        """The known ones of ``types``, strongest first."""
        types = set(types)
        return tuple(k.type for k in self.kinds if k.type in types)

    def reaching(self, types, wanted: str) -> tuple[str, ...]:
        """The known ones of ``types`` whose proof reaches ``wanted``, strongest first."""
        types = set(types)
        return tuple(k.type for k in self.kinds if k.type in types and level_at_least(k.level, wanted))

    def first_setups(self, allowed, wanted: str) -> tuple[str, ...]:
        """What a user may be asked to set up, of ``allowed``, to reach ``wanted``: never a
        recovery kind (it recovers an account, it is not set up first)."""
        return tuple(t for t in self.reaching(allowed, wanted) if not self._by_type[t].recovery)

    def beyond_mailbox(self, types):
        """``types`` without those whose proof comes through the mailbox, unless nothing else
        is left (then the account is only as strong as its mailbox, and says so)."""
        kept = [t for t in types if not (t in self._by_type and self._by_type[t].via_mailbox)]
        return type(types)(kept) if kept else types

    def proved(self, types, methods) -> bool:
        """Did ``methods`` (amr values) prove one of ``types``?"""
        return any(self.amr(t) in methods for t in types if t in self._by_type)


@dataclass(frozen=True)
class TenantPolicy:
    mode: Mode = Mode.DISABLED
    everyone: bool = True  # else only ``groups`` and ``users``
    groups: frozenset[str] = frozenset()
    users: frozenset[int] = frozenset()
    grace_until: datetime | None = None
    grace_skips: int | None = None
    # Factor types the tenant allows. A tenant without a policy row has MFA off and allows
    # none; a new row allows every type there is (``idp.admin``).
    allowed_factors: frozenset[str] = frozenset()
    roles_allowed: frozenset[str] = frozenset({"admin", "mfa-admin", "member"})
    self_disable: bool = True
    login_token_bypass: bool = True
    # A passkey may be the first step (it counts only where WebAuthn is allowed).
    passkey_first: bool = True
    # Remember this device: days a browser that passed the second step may skip the
    # *policy's* second step (0: off), and for whom: the roles of ``remember_roles``, and
    # everyone or only the members of ``remember_groups``.
    remember_days: int = 0
    remember_everyone: bool = True
    remember_groups: frozenset[str] = frozenset()
    remember_roles: frozenset[str] = frozenset({"admin", "mfa-admin", "member"})


@dataclass(frozen=True)
class UserFacts:
    id: int
    # The kinds of factor there are: what the user holds, and could set up, is read against
    # them. The facts every decision about a user reads, so they travel with the user's.
    kinds: FactorKinds
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
    # The relying party asked for a new authentication (``prompt=login``, or a ``max_age`` the
    # browser's session had exceeded, OIDC Core 3.1.2.1): what an earlier sign-in left behind
    # (a remembered browser) does not stand in for any of it.
    fresh_authentication: bool = False


@dataclass(frozen=True)
class Progress:
    """What this sign-in (or the SSO session it steps up) has proved so far."""

    primary: Primary = Primary.PASSWORD
    methods: tuple[str, ...] = ("pwd",)
    enrollment_skipped: bool = False  # the user used a grace skip in this sign-in
    # The browser holds a live remembered device of this user (``idp.journey.remembered``):
    # it may stand in for the tenant's policy's second step, never for a level.
    remembered: bool = False
    # The first step came through the account's mailbox (a reset link, an invitation): a
    # second step through that same mailbox would prove nothing more, so another is asked
    # for where the account has one (``FactorKinds.beyond_mailbox``).
    mailbox_proved: bool = False
