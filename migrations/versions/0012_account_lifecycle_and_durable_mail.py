"""the account lifecycle and durable mail: user status and verified address, single-use
account links, the tenant's account settings, and delivery state in the outbox

Revision ID: 0012
Revises: 0011

Existing users stay active and unverified (nothing proved their address). Existing outbox rows
stay where they are: mail rows become pending, and the sender never sends a message older
than its maximum age (``idp.notify.outbox.MAX_AGE``), so an old outbox is not mailed out when
SMTP is configured later. SMS rows are only kept.

A login link remembers the mail that tells its owner about it: an administrator's link works
only once that mail has left (``idp.journey.login_links.owner_told``).
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=12), server_default='active',
                                      nullable=False))
        batch_op.add_column(sa.Column('email_verified', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', UTC, nullable=True))

    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_min_length', sa.Integer(), server_default='8',
                                      nullable=False))
        batch_op.add_column(sa.Column('self_service_reset', sa.Boolean(), server_default=sa.true(),
                                      nullable=False))
        batch_op.add_column(sa.Column('reset_link_minutes', sa.Integer(), server_default='30',
                                      nullable=False))
        batch_op.add_column(sa.Column('require_verified_email', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('self_registration', sa.Boolean(), server_default=sa.false(),
                                      nullable=False))
        batch_op.add_column(sa.Column('registration_domains', sa.JSON(), server_default='[]',
                                      nullable=False))

    op.create_table(
        'account_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('purpose', sa.String(length=10), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_by', sa.String(length=320), nullable=False),
        sa.Column('created_at', UTC, nullable=False),
        sa.Column('expires_at', UTC, nullable=False),
        sa.Column('used_at', UTC, nullable=True),
        sa.Column('voided_at', UTC, nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_account_links_tenant_id_tenants'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_account_links_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_account_links')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_account_links_token_hash')),
    )
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_links_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_account_links_user_purpose', ['user_id', 'purpose'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('kind', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('html', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('state', sa.String(length=10), server_default='pending',
                                      nullable=False))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('claimed_until', UTC, nullable=True))
        batch_op.add_column(sa.Column('sent_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=200), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_tenant_id_tenants'), 'tenants',
                                    ['tenant_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index('ix_outbox_due', ['state', 'next_attempt_at'], unique=False)
    op.execute("UPDATE outbox SET state = 'kept' WHERE channel = 'sms'")

    with op.batch_alter_table('login_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notice_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_login_tokens_notice_id_outbox'), 'outbox',
                                    ['notice_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('login_tokens', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_login_tokens_notice_id_outbox'), type_='foreignkey')
        batch_op.drop_column('notice_id')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_constraint(batch_op.f('fk_outbox_tenant_id_tenants'), type_='foreignkey')
        for column in ('message_id', 'last_error', 'sent_at', 'claimed_until', 'next_attempt_at',
                       'attempts', 'state', 'html', 'kind', 'tenant_id'):
            batch_op.drop_column(column)
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.drop_index('ix_account_links_user_purpose')
        batch_op.drop_index(batch_op.f('ix_account_links_tenant_id'))
    op.drop_table('account_links')
    with op.batch_alter_table('tenant_policies', schema=None) as batch_op:
        for column in ('registration_domains', 'self_registration', 'require_verified_email',
                       'reset_link_minutes', 'self_service_reset', 'password_min_length'):
            batch_op.drop_column(column)
    with op.batch_alter_table('users', schema=None) as batch_op:
        for column in ('password_changed_at', 'email_verified', 'status'):
            batch_op.drop_column(column)
