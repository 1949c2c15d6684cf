"""accounts without a password by choice: when the user removed it (a passkey is their way in)

Revision ID: 0014
Revises: 0013

Only such an account may set a first password on its account page, and gets reset links by
mail whatever it holds: an account that never had a password (created through an upstream
provider, or invited) keeps signing in the way it was made to.
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('password_removed_at', sa.DateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('password_removed_at')
