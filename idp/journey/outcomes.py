"""What a step of the sign-in leads to: the journey's answers to the pages (``signin``).

Each is a plain value; ``idp.login.views.respond`` is the one place that turns them into
responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from idp.journey.remembered import Issued
from idp.journey.transaction import Setup, Transaction
from idp.mfa.base import Factor
from idp.models import User
from idp.policy import Decision

@dataclass(frozen=True)
class AskFactor:
    """A second factor is needed: the challenge page of ``tx``."""

    tx: Transaction


@dataclass(frozen=True)
class AskSetup:
    """A factor must be set up first: the setup pages of ``tx``."""

    tx: Transaction


@dataclass(frozen=True)
class Refused:
    """The sign-in cannot go on; ``decision`` says why (and the OAuth error for the client)."""

    tx: Transaction
    decision: Decision


@dataclass(frozen=True)
class SignedIn:
    """Every step is done: the SSO session exists (``tx.sid``). ``recovery``: a first factor
    was just set up and the user has no way back in yet; this one is offered (backup codes).
    ``remembered``: the browser was remembered now; its cookie goes with the response."""

    tx: Transaction
    user: User
    recovery: Factor | None = None
    remembered: Issued | None = None

    @property
    def offer_backup(self) -> bool:
        return self.recovery is not None


@dataclass(frozen=True)
class LockedOut:
    """Too many failures: the account (or this network) is locked until ``until``."""

    until: float
    network: bool = False


@dataclass(frozen=True)
class AccountClosed:
    """The user proved who they are, but their account may not sign in (deactivated, or
    waiting for its invitation): ``title`` and ``message`` tell them so."""

    title: str
    message: str


@dataclass(frozen=True)
class WrongPassword:
    """The password page again, saying why (``captcha``: the check to show with it)."""

    message: str
    captcha: dict | None = None


@dataclass(frozen=True)
class PasswordFirst:
    """The sign-in page again, for a sign-in that must begin with the password (a passkey may
    not be the whole of it here): ``message`` says why, ``email`` who it was (the passkey's
    owner, or nobody), ``tx`` the sign-in to go on with; ``refused``: what was posted was
    no passkey of this organisation's, or did not check out (not merely not enough)."""

    tx: Transaction
    message: str
    email: str = ""
    refused: bool = True


@dataclass(frozen=True)
class ChallengePage:
    """The challenge of ``factor`` (``others``: the user's other choices), and the answer's
    error if one was wrong. ``remember_days``: the page offers "don't ask again on this
    browser" for so many days (0: it does not)."""

    tx: Transaction
    user: User
    factor: Factor
    others: list[Factor]
    context: dict
    error: str | None = None
    captcha: dict | None = None
    remember_days: int = 0


@dataclass(frozen=True)
class SetupChoice:
    """The methods the user may set up now (``decision.factors``), with why."""

    tx: Transaction
    user: User
    decision: Decision
    factors: list[Factor] = field(default_factory=list)


@dataclass(frozen=True)
class SetupPage:
    """A page of ``factor``'s setup ceremony (``setup.id`` binds the answer to it)."""

    tx: Transaction
    user: User
    decision: Decision
    factor: Factor
    context: dict
    setup: Setup
    error: str | None = None


Outcome = AskFactor | AskSetup | Refused | SignedIn | LockedOut | AccountClosed | PasswordFirst
