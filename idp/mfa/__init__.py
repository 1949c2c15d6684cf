"""Second factors: one module per type, each one class behind ``idp.mfa.base.Factor``.

``REGISTRY`` maps a type name to its factor; adding a type means one module here, its
templates in ``templates/mfa/<type>/``, and one line below.
"""

from __future__ import annotations

from idp.mfa.base import Factor

REGISTRY: dict[str, Factor] = {}


def register(cls: type[Factor]) -> type[Factor]:
    REGISTRY[cls.type] = cls()
    return cls


def get(type_name: str) -> Factor | None:
    return REGISTRY.get(type_name)


def answerable(authenticator) -> bool:
    """Can this authenticator answer a sign-in challenge now (a known type that challenges,
    and usable: a spent set of backup codes is not)? The one rule, for the policy's facts and
    for the challenge page alike."""
    factor = get(authenticator.type)
    return factor is not None and factor.challengeable and factor.usable(authenticator)


def ordered() -> list[Factor]:
    """Every factor type, strongest first."""
    return sorted(REGISTRY.values(), key=lambda f: f.rank)


from idp.mfa import backup_codes, questions, sms, totp, webauthn  # noqa: E402,F401  (registers)
