"""SCIM 2.0 (RFC 7643/7644) at ``{issuer}/scim/v2/``: Users and Groups provisioned by a
service holding ``users:provision``."""
