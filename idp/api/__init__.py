"""The admin REST API under ``{issuer}/api/v1``: what a portal's back office drives without a
person in the console — users and their two-step verification, sessions, groups, the sign-in
policy, clients and the audit trail — with OAuth 2 client credentials and scopes
(``idp.oidc.bearer``), RFC 9457 problem details and an OpenAPI 3.1 document at
``{issuer}/api/v1/openapi.json``. Every change goes through the ``idp.admin`` function the
console and the command line call."""

from idp.api import events, groups, registration_tokens, settings, users  # noqa: F401  (each adds its routes)
from idp.api.base import bp

__all__ = ["bp"]
