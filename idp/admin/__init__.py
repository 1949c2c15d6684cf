"""What tenant admins do — policy, groups, per-user MFA state, login tokens, an account's life
(deactivate, reactivate, delete, role), upstreams, portals —
as functions the CLI and the console both call. Each records an audit event; callers commit.

One module per area; the names below are the package's interface (``admin.set_policy``,
``admin.add_upstream``...), so its callers need not know how it is split.
"""

from idp.admin.lifecycle import (Ended, LastAdministrator, NotOnYourself, deactivate,
                                 delete_user, end_session, end_sessions_and_tokens, reactivate,
                                 set_role, sign_out_everywhere)
from idp.admin.portals import (MIN_ACRS, delete_client, register_client, rotate_client_secret,
                               update_client)
from idp.admin.sign_in_policy import policy_dict, policy_row, set_policy
from idp.admin.upstreams import KEEP, add_upstream, find_upstream, update_upstream
from idp.admin.users import (GroupInUse, IssuedLoginToken, PasswordRefused,
                             PrivilegedLinkRefused, add_to_group, create_group,
                             create_login_token, create_user, delete_group,
                             forget_browsers, remove_from_group, set_user_mfa, unlock,
                             update_user)

__all__ = [
    "GroupInUse", "PasswordRefused", "create_user", "delete_group", "end_session", "forget_browsers", "update_user",
    "KEEP", "MIN_ACRS", "Ended", "IssuedLoginToken", "LastAdministrator", "NotOnYourself",
    "PrivilegedLinkRefused", "add_to_group", "add_upstream", "create_group",
    "create_login_token", "deactivate", "delete_client", "delete_user",
    "end_sessions_and_tokens", "find_upstream", "policy_dict", "policy_row", "reactivate",
    "register_client", "remove_from_group", "rotate_client_secret", "set_policy", "set_role",
    "set_user_mfa", "sign_out_everywhere", "unlock", "update_client", "update_upstream",
]
