"""What tenant admins do — policy, groups, per-user MFA state, login tokens, an account's life
(deactivate, reactivate, delete, role), upstreams, portals —
as functions the CLI and the console both call. Each records an audit event; callers commit.

One module per area; the names below are the package's interface (``admin.set_policy``,
``admin.add_upstream``...), so its callers need not know how it is split. Webhook endpoints
are their own namespace, ``idp.admin.webhooks`` (``webhooks.create_endpoint``, ...): their
verbs (create, rotate, delete) would collide with the portals' here; so is the branding,
``idp.admin.branding`` (``branding.update``, ``set_logo``, ``remove_logo``).
"""

from idp.admin.lifecycle import (Ended, LastAdministrator, NotOnYourself, deactivate,
                                 delete_user, end_session, end_sessions_and_tokens, reactivate,
                                 set_role, sign_out_everywhere)
from idp.admin.portals import (KEY_METHOD, MIN_ACRS, NewSubjects, delete_client,
                               register_client, rotate_client_secret, set_client_credentials,
                               update_client)
from idp.admin.provisioning import (GroupInPolicy, delete_group, set_members, update_group,
                                    update_user)
from idp.admin.sign_in_policy import policy_dict, policy_row, set_policy
from idp.admin.upstreams import KEEP, add_upstream, find_upstream, update_upstream
from idp.admin.users import (IssuedLoginToken, PasswordRefused, PrivilegedLinkRefused,
                             add_to_group, create_group, create_login_token, create_user,
                             forget_browsers, remove_from_group, set_groups, set_user_mfa,
                             unlock)

__all__ = [
    "KEY_METHOD", "KEEP", "MIN_ACRS", "NewSubjects", "GroupInPolicy", "delete_group",
    "set_members", "update_group",
    "update_user", "Ended", "IssuedLoginToken", "LastAdministrator", "NotOnYourself",
    "PasswordRefused", "create_user", "end_session", "forget_browsers", "set_groups",
    "PrivilegedLinkRefused", "add_to_group", "add_upstream", "create_group",
    "create_login_token", "deactivate", "delete_client", "delete_user",
    "end_sessions_and_tokens", "find_upstream", "policy_dict", "policy_row", "reactivate",
    "register_client", "remove_from_group", "rotate_client_secret", "set_client_credentials", "set_policy", "set_role",
    "set_user_mfa", "sign_out_everywhere", "unlock", "update_client", "update_upstream",
]
