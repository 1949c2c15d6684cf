"""what SCIM provisioning keeps (RFC 7643): a client's own id for users and groups, a user's
given and family names, when each was last changed, and a public id for groups

Revision ID: 0017
Revises: 0016

``external_id``: the provisioning client's identifier (``externalId``), looked up by the
client, so indexed per tenant. ``given_name``/``family_name``: ``name.givenName`` and
``name.familyName`` as sent (the full name stays ``name``). ``updated_at``: ``meta.lastModified``
(None: not changed since it was created). Groups get ``public_id``, the stable id SCIM and the
admin API show (never the row's number), filled in here for the groups there are, and
``created_at``/``updated_at`` (None for the groups there are: their creation was not recorded).

On PostgreSQL, ``ix_users_tenant_email_pattern`` serves a SCIM ``userName sw "..."`` (a LIKE
prefix) as a range of the tenant's addresses: the unique (tenant, email) index cannot, its
collation's order is not the bytes' (``varchar_pattern_ops``, as the PostgreSQL manual's
"Operator Classes" says), and the trigram index finds a short prefix among too many rows.
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('given_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('family_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('updated_at', UTC, nullable=True))
        batch_op.create_index('ix_users_tenant_external_id', ['tenant_id', 'external_id'],
                              unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_users_tenant_email_pattern", "users", ["tenant_id", "email"],
                        postgresql_ops={"email": "varchar_pattern_ops"})

    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('external_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('created_at', UTC, nullable=True))
        batch_op.add_column(sa.Column('updated_at', UTC, nullable=True))

    groups = sa.table('groups', sa.column('id', sa.Integer), sa.column('public_id', sa.String))
    bind = op.get_bind()
    for (group_id,) in bind.execute(sa.select(groups.c.id)).all():
        bind.execute(groups.update().where(groups.c.id == group_id)
                     .values(public_id=secrets.token_urlsafe(16)))

    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.alter_column('public_id', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_groups_public_id'), ['public_id'])
        batch_op.create_index('ix_groups_tenant_external_id', ['tenant_id', 'external_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('groups', schema=None) as batch_op:
        batch_op.drop_index('ix_groups_tenant_external_id')
        batch_op.drop_constraint(batch_op.f('uq_groups_public_id'), type_='unique')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('created_at')
        batch_op.drop_column('external_id')
        batch_op.drop_column('public_id')

    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_tenant_email_pattern", table_name="users")
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_tenant_external_id')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('family_name')
        batch_op.drop_column('given_name')
        batch_op.drop_column('external_id')
