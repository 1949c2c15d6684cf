"""What a sign-in proved, as ``amr`` (RFC 8176) and ``acr`` (DESIGN.md's three levels): the one
rule from the methods used to the level reached, which the policy decides with and the tokens say.

``KIND`` is the vocabulary of ``amr`` values, not of our factor types: each factor class in
``idp.mfa`` says which value its proof adds, and the level it reaches follows from here.

Knowledge factors (password, security questions) never make ``mfa`` together: NIST SP 800-63B
and OWASP ASVS count two things you know as one factor. WebAuthn is phishing-resistant (``phr``).
"""

from __future__ import annotations

KIND = {
    "pwd": "knowledge",
    "kba": "knowledge",
    "otp": "possession",
    "sms": "possession",
    "hwk": "possession",
    "swk": "possession",
    "user": "inherence",
    "pin": "knowledge",
    # An upstream sign-in or an admin's login link stands in for the password it replaces, so
    # either plus a local possession factor is two kinds, and plus security questions is not.
    # An upstream's own values sit next to "fed" only when they prove MFA by themselves
    # (idp/journey/upstream_trust.py): "fed" never adds a kind to the upstream's factors.
    "fed": "knowledge",
    "login_token": "knowledge",
}
LEVELS = ("pwd", "mfa", "phr")


def amr_and_acr(methods: list[str]) -> tuple[list[str], str]:
    # "mfa" next to "fed" is upstream_trust's finding that the upstream did two factors.
    upstream_mfa = "fed" in methods and "mfa" in methods
    amr = list(dict.fromkeys(m for m in methods if m != "mfa"))
    kinds = {KIND.get(m) for m in amr} - {None}
    if len(kinds) >= 2 or upstream_mfa:
        amr.append("mfa")
    if "hwk" in amr and "mfa" in amr:
        acr = "phr"
    elif "mfa" in amr:
        acr = "mfa"
    else:
        acr = "pwd"
    return amr, acr


def level_at_least(acr: str, wanted: str) -> bool:
    """Is ``acr`` at ``wanted`` or above (both levels of ``LEVELS``)?"""
    return LEVELS.index(acr) >= LEVELS.index(wanted)
