"""The one interface every factor type implements.

A factor is a class with four methods, each a step of a ceremony:

- ``enroll_begin(ctx)`` → a ``Step``: what the enrollment page shows, and the state to keep;
- ``enroll_finish(ctx, state, form)`` → the new ``Authenticator`` (not yet added), or another
  ``Step`` when the ceremony has more pages (an SMS number, then its code);
- ``challenge_begin(ctx, factors)`` → a ``Step`` asking the user for proof;
- ``verify(ctx, factors, state, form)`` → a ``Proof`` (the authenticator and the ``amr``
  values it proved, e.g. ``["hwk", "user"]`` after WebAuthn with user verification), or
  another ``Step`` (resend, "try another question").

Both finishers raise ``WrongAnswer`` for a wrong code or answer (the guard counts it) and
``NotNow`` for a refusal that is not a guess (a resend too soon). State is plain JSON kept by
the caller in Redis between the steps; secrets never enter it in the clear. The generic flow
(``idp.mfa.flow``) does the rest: storing state, the guard, audit, ``last_used_at``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from redis import Redis
from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from idp import audit
from idp.config import Settings
from idp.mfa.secrets import SecretBox
from idp.models import Authenticator, Tenant, User


class WrongAnswer(Exception):
    """The proof was wrong; the message is safe to show and reveals nothing."""

    def __init__(self, message: str | None = None):
        message = str(message or _("That code is not right. Try again."))
        super().__init__(message)
        self.message = message


class NotNow(Exception):
    """A refusal that is not a wrong guess (resend throttled, ceremony expired)."""

    def __init__(self, message: str):
        message = str(message)  # a lazy text becomes the page's language here
        super().__init__(message)
        self.message = message


@dataclass
class Proof:
    """A passed challenge: the authenticator used and the ``amr`` values it proved."""

    authenticator: Authenticator
    methods: list[str]


@dataclass
class Step:
    """A page to show (``context`` for its template) and what to remember until the answer."""

    context: dict = field(default_factory=dict)
    state: dict = field(default_factory=dict)


@dataclass
class FactorContext:
    db: Session
    store: Redis
    settings: Settings
    box: SecretBox
    tenant: Tenant
    user: User
    now: float = field(default_factory=time.time)
    # Which kind of this factor the user chose to set up, where a type has kinds (WebAuthn:
    # "passkey", a discoverable credential that verifies its user, or any key).
    variant: str | None = None

    @property
    def rp_id(self) -> str:
        return urlsplit(self.settings.base_url).hostname

    @property
    def origin(self) -> str:
        parts = urlsplit(self.settings.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def audit(self, action: str, **data) -> None:
        audit.record(self.db, self.tenant.id, action, actor=self.user.email, user_id=self.user.id,
                     **data)


class Factor(ABC):
    """A factor type: its facts (the class attributes, the only place they are written down:
    the policy, the console and the account page read them through ``idp.mfa``) and the four
    steps of its ceremonies. Its pages are ``templates/mfa/<type>/enroll.html`` and
    ``challenge.html``."""

    type: ClassVar[str]  # stored in Authenticator.type and the tenant's allowed factors
    label: ClassVar[str]  # what users read: "Authenticator app" (``_l``: translated)
    # What an admin reads where they choose the types the tenant allows (the policy page).
    policy_help: ClassVar[str]
    # RFC 8176 value added to the token when it is used; the level its proof reaches follows
    # from it (``idp.policy.levels``): "kba" stays at pwd, "otp" reaches mfa, "hwk" phr.
    amr: ClassVar[str]
    rank: ClassVar[int]  # lower is stronger and offered first
    several: ClassVar[bool] = True  # may a user hold more than one of this type?
    challengeable: ClassVar[bool] = True
    # Does a challenge keep state until its answer (a nonce, a code sent, a question picked)?
    # One that does not (an app's code) is answered without storing anything when shown.
    keeps_challenge: ClassVar[bool] = True
    # A way back in when the usual factor is lost: never the first factor a user is asked to
    # set up; offered once they hold one (the sign-in's offer, the account page).
    recovery: ClassVar[bool] = False
    # Is its proof delivered through the account's own mailbox (codes by email)? Then it is no
    # second step after a reset link or an invitation mailed there (``FactorKind``).
    via_mailbox: ClassVar[bool] = False
    # Another name admins may type for the type (``idp policy set --factors``, the policy
    # form), where the type itself reads badly: "questions" for "kba".
    alias: ClassVar[str | None] = None

    @property
    def in_sentence(self) -> str:
        """The label inside a sentence ("Add %(method)s", "Use %(method)s instead"), in lower
        case where the language writes it so: each factor sets its own (``_l("authenticator
        app")``, German keeps its nouns' capitals); this is only the fallback."""
        return str(self.label).lower()

    @abstractmethod
    def enroll_begin(self, ctx: FactorContext) -> Step:
        """See the module docstring."""

    @abstractmethod
    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator | Step:
        """See the module docstring."""

    @abstractmethod
    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        """See the module docstring."""

    @abstractmethod
    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof | Step:
        """See the module docstring."""

    def proved_by_enrollment(self, authenticator: Authenticator) -> list[str]:
        """The ``amr`` values a just-finished enrollment proved (it counts only as a forced
        first setup inside a sign-in)."""
        return [self.amr]

    def usable(self, authenticator: Authenticator) -> bool:
        """Can this authenticator still answer a challenge (a spent set of codes cannot)?"""
        return True

    def proves_address(self, authenticator: Authenticator, user: User) -> bool:
        """Did setting up ``authenticator`` prove that ``user`` reads mail at their account's
        address (a code mailed there and typed back)? Then the address counts as verified."""
        return False

    def usable_where(self) -> ColumnElement[bool]:
        """``usable`` as SQL on ``Authenticator``, to count many users at once (the MFA
        report); the default counts every row of the type."""
        return true()

    def describe(self, authenticator: Authenticator) -> str:
        """A line for the factor list; never a secret."""
        return ""
