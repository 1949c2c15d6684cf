"""passkey-first sign-in, passwordless accounts and remembered devices: the tenant's settings
for the three, and the remembered devices themselves

Revision ID: 0013
Revises: 0012

A tenant keeps its behaviour: passkeys as the first step are on (they only count where
WebAuthn is an allowed factor, as before in the second step), passwordless accounts are off,
and remembering a device is off (0 days).
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('passkey_first', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
        batch_op.add_column(sa.Column('passwordless', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('remember_days', sa.Integer(), server_default='0',
                                      nullable=False))
        batch_op.add_column(sa.Column('remember_everyone', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
        batch_op.add_column(sa.Column('remember_groups', sa.JSON(), server_default='[]',
                                      nullable=False))
        batch_op.add_column(sa.Column('remember_roles', sa.JSON(),
                                      server_default='["admin", "mfa-admin", "member"]',
                                      nullable=False))

    op.create_table(
        'remembered_devices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('description', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('expires_at', UTC, nullable=False),
        sa.Column('last_used_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_remembered_devices_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_remembered_devices_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_remembered_devices')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_remembered_devices_token_hash')),
    )
    with op.batch_alter_table('remembered_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_remembered_devices_tenant_id'), ['tenant_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_remembered_devices_user_id'), ['user_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('remembered_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_remembered_devices_user_id'))
        batch_op.drop_index(batch_op.f('ix_remembered_devices_tenant_id'))
    op.drop_table('remembered_devices')
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        for column in ('remember_roles', 'remember_groups', 'remember_everyone', 'remember_days',
                       'passwordless', 'passkey_first'):
            batch_op.drop_column(column)
