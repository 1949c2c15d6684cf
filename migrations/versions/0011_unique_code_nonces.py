"""a client's nonce binds one code: the index on (client, nonce digest) is unique

Revision ID: 0011
Revises: 0010

A nonce already bound to one of the client's codes is a replayed request (OpenID Connect Core
3.1.2.1, 15.5.2). It was refused by a read before the code was saved (two reads per sign-in,
at the request and again at the code); the database now refuses the second code itself, as
the code is saved (``INSERT ... ON CONFLICT DO NOTHING``), which also closes the window
between the read and the insert. Codes without a nonce (NULL) are not constrained.

Codes kept from before may hold the same nonce twice (issued before the check existed): the
earliest keeps its digest, the later ones lose theirs (they were replays; the earliest still
refuses the nonce).
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

codes = sa.table("authorization_codes", sa.column("id", sa.Integer),
                 sa.column("client_pk", sa.Integer), sa.column("nonce_hash", sa.String))


def upgrade() -> None:
    first = (sa.select(sa.func.min(codes.c.id))
             .where(codes.c.nonce_hash.is_not(None))
             .group_by(codes.c.client_pk, codes.c.nonce_hash))
    op.get_bind().execute(codes.update()
                          .where(codes.c.nonce_hash.is_not(None), codes.c.id.not_in(first))
                          .values(nonce_hash=None))
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_authorization_codes_client_pk_nonce_hash')
        batch_op.create_index('uq_authorization_codes_client_pk_nonce_hash',
                              ['client_pk', 'nonce_hash'], unique=True,
                              postgresql_where=sa.text('nonce_hash IS NOT NULL'),
                              sqlite_where=sa.text('nonce_hash IS NOT NULL'))


def downgrade() -> None:
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index('uq_authorization_codes_client_pk_nonce_hash')
        batch_op.create_index('ix_authorization_codes_client_pk_nonce_hash',
                              ['client_pk', 'nonce_hash'], unique=False)
