"""SQLAlchemy tables: what lasts. No rules live here."""

from idp.models.base import Base
from idp.models.tenancy import Group, Tenant, User, user_groups
from idp.models.oauth import AuthorizationCode, Client, RegistrationToken, Token
from idp.models.audit import AuditEvent
from idp.models.policy import LoginToken, TenantPolicyRow, Upstream, UpstreamIdentity
from idp.models.factors import Authenticator, BackupCode, SecurityQuestion
from idp.models.outbox import OutboxMessage
from idp.models.accounts import AccountLink, RememberedDevice
from idp.models.webhooks import WebhookEndpoint
from idp.models.branding import TenantBranding
from idp.models.protocol import TenantProtocol

__all__ = [
    "AccountLink",
    "AuditEvent",
    "Authenticator",
    "BackupCode",
    "OutboxMessage",
    "RememberedDevice",
    "SecurityQuestion",
    "AuthorizationCode",
    "Base",
    "Client",
    "Group",
    "LoginToken",
    "Tenant",
    "TenantBranding",
    "TenantPolicyRow",
    "RegistrationToken",
    "TenantProtocol",
    "Token",
    "Upstream",
    "UpstreamIdentity",
    "User",
    "WebhookEndpoint",
    "user_groups",
]
