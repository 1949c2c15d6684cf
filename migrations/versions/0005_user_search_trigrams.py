"""trigram indexes for the console's user search (PostgreSQL only)

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: the search scans the tenant's users
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_users_email_trgm", "users", ["email"], postgresql_using="gin",
                    postgresql_ops={"email": "gin_trgm_ops"})
    op.create_index("ix_users_name_trgm", "users", ["name"], postgresql_using="gin",
                    postgresql_ops={"name": "gin_trgm_ops"})


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_users_name_trgm", table_name="users")
    op.drop_index("ix_users_email_trgm", table_name="users")
