"""a copy of lockout mail to the tenant's admins

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_email_admins', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        batch_op.drop_column('lock_email_admins')
