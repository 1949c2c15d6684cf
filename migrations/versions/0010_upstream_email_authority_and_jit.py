"""upstreams: whether the upstream vouches for addresses in its domains, and its own JIT switch

Revision ID: 0010
Revises: 0009

An upstream's email now matches or creates an account only when it says ``email_verified:
true``, or when an admin marks the upstream authoritative for its email domains. No upstream is
made authoritative here: the safe side until an admin says so.

Accounts created on first sign-in may be switched per upstream; NULL keeps following the
tenant's policy, as every existing upstream did.
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upstreams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_authoritative', sa.Boolean(),
                                      server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('jit', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('upstreams', schema=None) as batch_op:
        batch_op.drop_column('jit')
        batch_op.drop_column('email_authoritative')
