"""authorization codes keep their nonce's digest, indexed with the client

Revision ID: 0007
Revises: 0006

A nonce already bound to one of the client's codes is a replayed request (OpenID Connect Core
3.1.2.1, 15.5.2). The check read every code of the client still kept (a day's, until `idp
tokens purge`) to compare nonces: one read of thousands of rows per authorization for a busy
portal. A nonce may be 4,096 characters, too long for an index entry, so its SHA-256 is kept
and indexed with the client. Codes from before get theirs here, so a nonce they bound is still
refused after the upgrade.
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# The table as of this revision (not the model, which later revisions may change).
codes = sa.table("authorization_codes", sa.column("id", sa.Integer),
                 sa.column("nonce", sa.Text), sa.column("nonce_hash", sa.String))
BATCH = 1000


def digest(nonce: str) -> str:
    """idp.oidc.hashing.digest("nonce", nonce), as of this revision."""
    return hashlib.sha256(f"nonce\x00{nonce}".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('nonce_hash', sa.String(length=64), nullable=True))
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.select(codes.c.id, codes.c.nonce)
            .where(codes.c.nonce.is_not(None), codes.c.id > last)
            .order_by(codes.c.id).limit(BATCH)).all()
        if not rows:
            break
        bind.execute(codes.update().where(codes.c.id == sa.bindparam("b_id"))
                     .values(nonce_hash=sa.bindparam("b_hash")),
                     [{"b_id": row.id, "b_hash": digest(row.nonce)} for row in rows])
        last = rows[-1].id
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.create_index('ix_authorization_codes_client_pk_nonce_hash',
                              ['client_pk', 'nonce_hash'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('authorization_codes', schema=None) as batch_op:
        batch_op.drop_index('ix_authorization_codes_client_pk_nonce_hash')
        batch_op.drop_column('nonce_hash')
