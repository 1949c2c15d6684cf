"""protocol depth: client authentication by key, pairwise subjects, PAR, DPoP, request
objects, dynamic registration

Revision ID: 0021
Revises: 0020

- ``clients``: how a client authenticates (``token_endpoint_auth_method``, its ``jwks`` or
  ``jwks_uri``), its subject type and sector, whether it must use PAR, DPoP and signed request
  objects, and for a self-registered client its registration access token's hash and metadata.
- ``authorization_codes.dpop_jkt`` and ``tokens.jkt``: the DPoP key a code or token is bound to.
- ``tenant_protocol``: a tenant's own requirements (PAR for all, DPoP nonces, where
  self-registered clients may redirect).
- ``registration_tokens``: initial access tokens for dynamic client registration, as hashes.

Signing keys are files (``IDP_KEYS_DIR``), not rows: ``idp.oidc.keys`` moves the shared keys
into each tenant's own folder.
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

CLIENT_COLUMNS = (
    ('token_endpoint_auth_method', sa.String(length=32), {}),
    ('jwks', sa.JSON(), {}),
    ('jwks_uri', sa.Text(), {}),
    ('subject_type', sa.String(length=10), {'server_default': 'public'}),
    ('sector_identifier_uri', sa.Text(), {}),
    ('require_par', sa.Boolean(), {'server_default': sa.false()}),
    ('dpop_bound_access_tokens', sa.Boolean(), {'server_default': sa.false()}),
    ('request_object_signing_alg', sa.String(length=10), {}),
    ('require_signed_request_object', sa.Boolean(), {'server_default': sa.false()}),
    ('registration_token_hash', sa.String(length=64), {}),
    ('registration_metadata', sa.JSON(), {}),
)
NOT_NULL = {'subject_type', 'require_par', 'dpop_bound_access_tokens',
            'require_signed_request_object', 'registration_metadata'}


def upgrade() -> None:
    with op.batch_alter_table('clients') as batch:
        for name, type_, options in CLIENT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True, **options))
    op.execute("UPDATE clients SET registration_metadata = '{}'")
    with op.batch_alter_table('clients') as batch:
        for name, type_, options in CLIENT_COLUMNS:
            if name in NOT_NULL:
                batch.alter_column(name, existing_type=type_, nullable=False)
    with op.batch_alter_table('authorization_codes') as batch:
        batch.add_column(sa.Column('dpop_jkt', sa.String(length=64), nullable=True))
    with op.batch_alter_table('tokens') as batch:
        batch.add_column(sa.Column('jkt', sa.String(length=64), nullable=True))
    op.create_table(
        'tenant_protocol',
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('require_par', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('dpop_nonce_required', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('registration_redirect_hosts', sa.JSON(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_tenant_protocol_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenant_protocol')),
    )
    op.create_table(
        'registration_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.Integer(), nullable=False),
        sa.Column('public_id', sa.String(length=64), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=320), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('uses_left', sa.Integer(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_registration_tokens_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_registration_tokens')),
        sa.UniqueConstraint('public_id', name=op.f('uq_registration_tokens_public_id')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_registration_tokens_token_hash')),
    )
    op.create_index(op.f('ix_registration_tokens_tenant_id'), 'registration_tokens',
                    ['tenant_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_registration_tokens_tenant_id'), table_name='registration_tokens')
    op.drop_table('registration_tokens')
    op.drop_table('tenant_protocol')
    with op.batch_alter_table('tokens') as batch:
        batch.drop_column('jkt')
    with op.batch_alter_table('authorization_codes') as batch:
        batch.drop_column('dpop_jkt')
    with op.batch_alter_table('clients') as batch:
        for name, _, _ in reversed(CLIENT_COLUMNS):
            batch.drop_column(name)
