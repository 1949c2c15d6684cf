"""The admin REST API at ``{issuer}/api/v1/`` (issue 20): the portal back office's way to drive
users, their second step, sessions, groups, the sign-in policy, clients and the audit log."""
