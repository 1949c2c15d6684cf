"""tenant branding: display name, logo, primary colour, support contacts

Revision ID: 0019
Revises: 0018

``tenant_branding``: one row per tenant that set any (``idp.branding``). The logo is kept in
the database as we re-encoded it (no file system to share between hosts), with its content
type and SHA-256, which names it in its URL.
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'tenant_branding',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('display_name', sa.String(length=100), nullable=True),
        sa.Column('accent', sa.String(length=7), nullable=True),
        sa.Column('support_url', sa.String(length=500), nullable=True),
        sa.Column('support_email', sa.String(length=320), nullable=True),
        sa.Column('logo', sa.LargeBinary(), nullable=True),
        sa.Column('logo_type', sa.String(length=20), nullable=True),
        sa.Column('logo_hash', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_tenant_branding_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenant_branding')),
    )


def downgrade() -> None:
    op.drop_table('tenant_branding')
