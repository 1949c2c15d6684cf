"""The tenant admin console at ``{issuer}/admin``."""
