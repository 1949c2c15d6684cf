"""Second factors: one module per type, each one class behind ``idp.mfa.base.Factor``.

``REGISTRY`` maps a type name to its factor. A factor's facts (its ``amr``, strength, label,
whether it is set up first...) are its class attributes and nothing else; the policy, the
console, the account page and the journey ask for them here (``kinds()`` hands the policy the
part it decides with). Adding a type means one module here, its templates in
``templates/mfa/<type>/``, and its name in the import line at the end of this file
(tests/unit/test_factor_registry.py lists what a factor must provide).
"""

from __future__ import annotations

from idp.mfa.base import Factor
from idp.policy import FactorKind, FactorKinds

REGISTRY: dict[str, Factor] = {}


def register(cls: type[Factor]) -> type[Factor]:
    REGISTRY[cls.type] = cls()
    return cls


def get(type_name: str) -> Factor | None:
    return REGISTRY.get(type_name)


def named(name: str) -> Factor | None:
    """The factor an admin means by ``name``: its type, or its alias ("questions")."""
    return get(name) or next((f for f in REGISTRY.values() if f.alias == name), None)


def answerable(authenticator) -> bool:
    """Can this authenticator answer a sign-in challenge now (a known type that challenges,
    and usable: a spent set of backup codes is not)? The one rule, for the policy's facts and
    for the challenge page alike."""
    factor = get(authenticator.type)
    return factor is not None and factor.challengeable and factor.usable(authenticator)


def ordered() -> list[Factor]:
    """Every factor type, strongest first."""
    return sorted(REGISTRY.values(), key=lambda f: f.rank)


def types() -> list[str]:
    """Every factor type, strongest first: what a new tenant policy allows."""
    return [f.type for f in ordered()]


def recovery() -> list[Factor]:
    """The types that recover an account (backup codes), offered once a usual one is held."""
    return [f for f in ordered() if f.recovery]


def kinds() -> FactorKinds:
    """What the policy decides with, of every factor type (``idp.policy.FactorKinds``)."""
    return FactorKinds(tuple(FactorKind(f.type, f.amr, f.rank, f.recovery, f.via_mailbox)
                             for f in ordered()))


from idp.mfa import backup_codes, email_code, questions, sms, totp, webauthn  # noqa: E402,F401  (registers)
