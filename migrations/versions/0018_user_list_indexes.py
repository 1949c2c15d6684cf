"""indexes for the admin API's users list (filters walked in id order)

Revision ID: 0018
Revises: 0015

The API pages a tenant's users by id (a stable cursor) under filters: by status
(``ix_users_tenant_status_id`` reads one status's users already in id order), by the
beginning of the address (``ix_users_tenant_email_prefix``, PostgreSQL's pattern operator
class, which serves ``LIKE 'prefix%'`` whatever the database's collation; SQLite's LIKE
scans, its tenants are small), and by group (``ix_user_groups_group``: a group's members
without reading every membership).
"""

from alembic import op

revision = '0018'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_tenant_status_id", "users", ["tenant_id", "status", "id"])
    op.create_index("ix_user_groups_group", "user_groups", ["group_id", "user_id"])
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_users_tenant_email_prefix", "users", ["tenant_id", "email"],
                        postgresql_ops={"email": "varchar_pattern_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_users_tenant_email_prefix", table_name="users")
    op.drop_index("ix_user_groups_group", table_name="user_groups")
    op.drop_index("ix_users_tenant_status_id", table_name="users")
