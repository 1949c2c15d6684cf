"""upstreams: the acr values that prove MFA, and the hosts their back channel may use

Revision ID: 0009
Revises: 0008

An upstream's MFA was trusted when its acr merely contained "mfa" (``urn:example:loa:nomfa``
did too); from now on only acr values an admin lists for the upstream count, exactly. No list
is guessed for the upstreams already there: until an admin lists values, their sign-ins count
as MFA only when their amr proves it, and otherwise our own second step follows (the safe side).

A discovery document may no longer send the back channel (token endpoint, keys, userinfo) of
an https upstream to a host other than the issuer's, unless the admin lists that host.
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('upstreams', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trusted_acrs', sa.JSON(), server_default=sa.text("'[]'"),
                                      nullable=False))
        batch_op.add_column(sa.Column('back_channel_hosts', sa.JSON(),
                                      server_default=sa.text("'[]'"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('upstreams', schema=None) as batch_op:
        batch_op.drop_column('back_channel_hosts')
        batch_op.drop_column('trusted_acrs')
