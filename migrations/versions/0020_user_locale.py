"""the language a user reads: mail speaks it

Revision ID: 0020
Revises: 0019

``users.locale``: the language of the pages on which the user last signed in or chose one
(``idp.i18n.LANGUAGES``); None until then. Mail to a user is written in it
(``idp.notify.outbox.mail``), not in the language of whoever caused the message.
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('locale', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_column('locale')
