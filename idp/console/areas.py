"""The console's areas beyond users: each module adds its pages to the console blueprint."""

from idp.console import audit_log, groups, policy_page, portals, report, upstreams  # noqa: F401
