"""tenant policy login tokens upstreams

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 01:05:22.740516
"""

from alembic import op
import sqlalchemy as sa



revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('tenant_policies',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('everyone', sa.Boolean(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('users', sa.JSON(), nullable=False),
    sa.Column('grace_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('grace_skips', sa.Integer(), nullable=True),
    sa.Column('allowed_factors', sa.JSON(), nullable=False),
    sa.Column('roles_allowed', sa.JSON(), nullable=False),
    sa.Column('self_disable', sa.Boolean(), nullable=False),
    sa.Column('login_token_bypass', sa.Boolean(), nullable=False),
    sa.Column('federation_jit', sa.Boolean(), nullable=False),
    sa.Column('captcha_after', sa.Integer(), nullable=False),
    sa.Column('lock_after', sa.Integer(), nullable=False),
    sa.Column('lock_minutes', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_policies_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenant_policies'))
    )
    op.create_table('upstreams',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('issuer', sa.Text(), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret_sealed', sa.Text(), nullable=False),
    sa.Column('email_domains', sa.JSON(), nullable=False),
    sa.Column('trust_mfa', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_upstreams_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstreams')),
    sa.UniqueConstraint('tenant_id', 'slug', name=op.f('uq_upstreams_tenant_id'))
    )
    with op.batch_alter_table('upstreams', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstreams_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('login_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=320), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_login_tokens_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_login_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_tokens_token_hash'))
    )
    with op.batch_alter_table('login_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_tokens_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_login_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('upstream_identities',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('upstream_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['upstream_id'], ['upstreams.id'], name=op.f('fk_upstream_identities_upstream_id_upstreams'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_upstream_identities_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_upstream_identities')),
    sa.UniqueConstraint('upstream_id', 'subject', name=op.f('uq_upstream_identities_upstream_id'))
    )
    with op.batch_alter_table('upstream_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upstream_identities_upstream_id'), ['upstream_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upstream_identities_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('min_acr', sa.String(length=10), nullable=True))

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('mfa_admin_state', sa.String(length=10), server_default='default', nullable=False))
        batch_op.add_column(sa.Column('mfa_must_reenroll', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('mfa_skips_used', sa.Integer(), server_default='0', nullable=False))



def downgrade() -> None:
    
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('mfa_skips_used')
        batch_op.drop_column('mfa_must_reenroll')
        batch_op.drop_column('mfa_admin_state')

    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('min_acr')

    with op.batch_alter_table('upstream_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstream_identities_user_id'))
        batch_op.drop_index(batch_op.f('ix_upstream_identities_upstream_id'))

    op.drop_table('upstream_identities')
    with op.batch_alter_table('login_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_tokens_user_id'))
        batch_op.drop_index(batch_op.f('ix_login_tokens_tenant_id'))

    op.drop_table('login_tokens')
    with op.batch_alter_table('upstreams', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upstreams_tenant_id'))

    op.drop_table('upstreams')
    op.drop_table('tenant_policies')
