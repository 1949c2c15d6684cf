"""The console's areas beyond users: each module adds its pages to the console blueprint."""

from idp.console import (audit_log, groups, invitations, policy_page, portals,  # noqa: F401
                         report, upstreams, webhooks)
