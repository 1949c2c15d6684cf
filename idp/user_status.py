"""A user's status: whether the account may sign in, and what the person is told when not.

``active`` signs in; ``invited`` waits for its invitation to be accepted; ``unverified`` signed
itself up and waits for its address to be verified (the link mailed at sign-up); ``deactivated``
was stopped by an administrator (kept, with everything it owns, until reactivated or deleted).
Only an active account signs in, by any path: password, sign-in link, upstream provider, or an
SSO session or refresh token from before (``idp.journey``, the token endpoint). A person is
told why only once they proved who they are (the right password, a link, an upstream sign-in),
so the message gives nothing away to someone guessing addresses.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ACTIVE = "active"
INVITED = "invited"
UNVERIFIED = "unverified"
DEACTIVATED = "deactivated"
STATUSES = (ACTIVE, INVITED, UNVERIFIED, DEACTIVATED)

LABELS = {ACTIVE: "Active", INVITED: "Invited", UNVERIFIED: "Signed up, not verified",
          DEACTIVATED: "Deactivated"}

# (title, message) for the person whose account cannot sign in.
REFUSALS = {
    DEACTIVATED: (_l("This account is deactivated"),
                  _l("This account is deactivated. Contact your organisation's administrator.")),
    UNVERIFIED: (_l("Verify your email address first"),
                 _l("Open the link we mailed you when you signed up. Nothing arrived? Sign up "
                    "again with the same address and password to get a new link.")),
    INVITED: (_l("This account is not set up yet"),
              _l("This account is waiting for its invitation to be accepted. Open the "
                 "invitation mail to set it up, or ask your organisation's administrator for "
                 "a new one.")),
}


def may_sign_in(status: str) -> bool:
    return status == ACTIVE


def refusal(status: str) -> tuple[str, str]:
    """(title, message) for an account of ``status`` that may not sign in."""
    return REFUSALS.get(status, REFUSALS[DEACTIVATED])


def label(status: str) -> str:
    return LABELS.get(status, status)
