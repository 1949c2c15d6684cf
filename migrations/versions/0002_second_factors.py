"""second factors

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 00:55:45.075297
"""

from alembic import op
import sqlalchemy as sa



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=300), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_recipient'), ['recipient'], unique=False)

    op.create_table('security_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=300), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_security_questions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_security_questions')),
    sa.UniqueConstraint('tenant_id', 'position', name=op.f('uq_security_questions_tenant_id'))
    )
    with op.batch_alter_table('security_questions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_security_questions_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('authenticators',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('lookup', sa.String(length=255), nullable=True),
    sa.Column('counter', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_authenticators_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_authenticators_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authenticators')),
    sa.UniqueConstraint('lookup', name=op.f('uq_authenticators_lookup'))
    )
    with op.batch_alter_table('authenticators', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authenticators_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_authenticators_user_id'), ['user_id'], unique=False)

    op.create_table('backup_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authenticator_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['authenticator_id'], ['authenticators.id'], name=op.f('fk_backup_codes_authenticator_id_authenticators'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_codes')),
    sa.UniqueConstraint('authenticator_id', 'code_hash', name=op.f('uq_backup_codes_authenticator_id'))
    )
    with op.batch_alter_table('backup_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_backup_codes_authenticator_id'), ['authenticator_id'], unique=False)



def downgrade() -> None:
    
    with op.batch_alter_table('backup_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_backup_codes_authenticator_id'))

    op.drop_table('backup_codes')
    with op.batch_alter_table('authenticators', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authenticators_user_id'))
        batch_op.drop_index(batch_op.f('ix_authenticators_tenant_id'))

    op.drop_table('authenticators')
    with op.batch_alter_table('security_questions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_security_questions_tenant_id'))

    op.drop_table('security_questions')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outbox_recipient'))
        batch_op.drop_index(batch_op.f('ix_outbox_created_at'))

    op.drop_table('outbox')
