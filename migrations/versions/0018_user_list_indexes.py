"""indexes for the admin API's users list (filters walked in id order)

Revision ID: 0018
Revises: 0017

The API pages a tenant's users by id (a stable cursor) under filters: by status
(``ix_users_tenant_status_id`` reads one status's users already in id order), by the
beginning of the address (0017's ``ix_users_tenant_email_pattern`` serves it), and by group (``ix_user_groups_group``: a group's members
without reading every membership).
"""

from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_users_tenant_status_id", "users", ["tenant_id", "status", "id"])
    op.create_index("ix_user_groups_group", "user_groups", ["group_id", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_user_groups_group", table_name="user_groups")
    op.drop_index("ix_users_tenant_status_id", table_name="users")
