"""The console's areas beyond users: each module adds its pages to the console blueprint."""

from idp.console import (audit_log, branding, groups, invitations, policy_page,  # noqa: F401
                         portals, protocol_page, report, upstreams, webhooks)
