"""What a sign-in proved, as ``amr`` (RFC 8176) and ``acr`` (DESIGN.md's three levels).

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
    "fed": "federation",
    "login_token": None,  # an admin's one-time link: proves no factor of the user's own
}
LEVELS = ("pwd", "mfa", "phr")


def amr_and_acr(methods: list[str]) -> tuple[list[str], str]:
    amr = list(dict.fromkeys(m for m in methods if m != "mfa"))
    kinds = {KIND.get(m) for m in amr} - {None, "federation"}
    if len(kinds) >= 2:
        amr.append("mfa")
    if "hwk" in amr and "mfa" in amr:
        acr = "phr"
    elif "mfa" in amr:
        acr = "mfa"
    else:
        acr = "pwd"
    return amr, acr


def level_at_least(acr: str, wanted: str) -> bool:
    return LEVELS.index(acr) >= LEVELS.index(wanted)
