"""clients' back-channel logout (OpenID Connect Back-Channel Logout 1.0, section 2.2)

Revision ID: 0015
Revises: 0014

``backchannel_logout_uri``: where a client hears, server to server, that a session it was
part of ended (None: it does not); ``backchannel_logout_session_required``: the client needs
the ``sid`` in every logout token (we always send it; the flag is kept as registered).
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backchannel_logout_uri', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('backchannel_logout_session_required', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('backchannel_logout_session_required')
        batch_op.drop_column('backchannel_logout_uri')
