"""sign-in links for administrators: a tenant setting, off

Revision ID: 0008
Revises: 0007

A sign-in link lets its holder in without the password (and, with login_token_bypass, without
the second factor): for an administrator, that is the tenant's console. Tenants that exist
get the setting off like new ones; an admin who needs such links turns it on.
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin_login_links', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        batch_op.drop_column('admin_login_links')
