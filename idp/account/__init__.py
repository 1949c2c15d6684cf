"""User self-service: the account security page, factors, backup codes."""
