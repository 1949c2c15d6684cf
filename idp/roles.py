"""The roles a user can have in a tenant, and what each may do to other people's accounts.

- ``admin``: the whole console (policy, portals, people, roles) and every action on a user.
- ``mfa-admin``: a two-factor administrator (Claromentis' seed): the users list and user pages,
  and a user's two-step verification (turn on, turn off, reset) and lock, for members and
  other two-factor administrators only — never an administrator's, whose sign-in they could
  otherwise weaken. Nothing else: no policy, portals, groups, roles, audit log, sign-in links,
  sign-out, deactivation or deletion.
- ``member``: no console at all.

Pure data and rules, no I/O: the console's gate, the directory, the CLI and the journey ask
here.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ADMIN = "admin"
MFA_ADMIN = "mfa-admin"
MEMBER = "member"
ROLES = (ADMIN, MFA_ADMIN, MEMBER)

# What the console says, where a person reads the role.
LABELS = {ADMIN: _l("Administrator"), MFA_ADMIN: _l("Two-factor administrator"), MEMBER: _l("Member")}

# Who may open the console at all (each role's pages are the gate's: ``idp.console.gate``).
CONSOLE = frozenset({ADMIN, MFA_ADMIN})

# What a two-factor administrator may do to a user, of the console's actions (forgetting the
# browsers remembered for a user's second step is part of that second step).
MFA_ACTIONS = frozenset({"enforce", "exempt", "reset", "unlock", "forget-browser",
                         "forget-browsers"})


def label(role: str) -> str:
    return str(LABELS.get(role, role))  # English outside a page


def privileged(role: str) -> bool:
    """Can this role act on other people's accounts? Every role but member counts, so a role
    added later is guarded until someone decides otherwise."""
    return role != MEMBER


# The scope a service needs, beside its call's own, to touch an administrator's account.
SERVICE_ADMIN_SCOPE = "admin:write"


def service_may_act(scopes, target_role: str) -> bool:
    """May a service holding ``scopes`` create, end, move or change the second step of an
    account of ``target_role``? An administrator's account (``privileged``) holds the keys of
    the tenant: only with ``SERVICE_ADMIN_SCOPE`` too, as the console lets no two-factor
    administrator weaken an administrator's sign-in. The admin API and SCIM both ask this."""
    return not privileged(target_role) or SERVICE_ADMIN_SCOPE in scopes


def may_act(actor_role: str, action: str, target_role: str) -> bool:
    """May a user of ``actor_role`` take the console's ``action`` on a user of ``target_role``?
    Whether the actor is the target is the caller's to check (nobody changes their own
    two-step verification, role or status from the console)."""
    if actor_role == ADMIN:
        return True
    if actor_role == MFA_ADMIN:
        return action in MFA_ACTIONS and target_role != ADMIN
    return False
