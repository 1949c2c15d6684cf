"""tenants from before MFA policies keep asking for the factors their users enrolled

Revision ID: 0006
Revises: 0005

Before 0003 there was no tenant policy: whoever had enrolled a second factor was asked for it
at every sign-in. 0003 made a policy row per tenant, but wrote none for the tenants already
there, and a tenant without a row is ``disabled`` (the default for new tenants): after the
upgrade their users signed in with a password alone, their second factors silently ignored.

A tenant without a policy row whose users hold authenticators can only be such a tenant (under
``disabled`` nobody can enroll), so it gets what it had: ``optional``, users who set up a
factor are asked for it, with every other setting at its default. Tenants with a row, and
tenants whose users enrolled nothing, are left alone. Nothing to undo on downgrade: the rows
are a tenant's policy like any other from then on.
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

# The tables as of this revision (not the models, which later revisions may change).
tenants = sa.table("tenants", sa.column("id", sa.Integer))
authenticators = sa.table("authenticators", sa.column("tenant_id", sa.Integer))
policies = sa.table(
    "tenant_policies",
    sa.column("tenant_id", sa.Integer), sa.column("mode", sa.String),
    sa.column("everyone", sa.Boolean), sa.column("groups", sa.JSON), sa.column("users", sa.JSON),
    sa.column("grace_until", sa.DateTime(timezone=True)), sa.column("grace_skips", sa.Integer),
    sa.column("allowed_factors", sa.JSON), sa.column("roles_allowed", sa.JSON),
    sa.column("self_disable", sa.Boolean), sa.column("login_token_bypass", sa.Boolean),
    sa.column("federation_jit", sa.Boolean), sa.column("captcha_after", sa.Integer),
    sa.column("lock_after", sa.Integer), sa.column("lock_minutes", sa.Integer),
    sa.column("lock_email_admins", sa.Boolean),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    bind = op.get_bind()
    without_policy = bind.scalars(
        sa.select(tenants.c.id)
        .where(sa.exists().where(authenticators.c.tenant_id == tenants.c.id))
        .where(~sa.exists().where(policies.c.tenant_id == tenants.c.id))
    ).all()
    now = datetime.now(timezone.utc)
    for tenant_id in without_policy:
        bind.execute(policies.insert().values(
            tenant_id=tenant_id, mode="optional", everyone=True, groups=[], users=[],
            grace_until=None, grace_skips=None,
            allowed_factors=["webauthn", "totp", "sms", "kba", "backup"],
            roles_allowed=["admin", "member"], self_disable=True, login_token_bypass=True,
            federation_jit=False, captcha_after=3, lock_after=5, lock_minutes=60,
            lock_email_admins=False, updated_at=now))


def downgrade() -> None:
    pass
