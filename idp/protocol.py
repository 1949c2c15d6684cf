"""A tenant's protocol requirements as every request reads them (``Protocol``, kept with the
tenant in each worker's cache, ``idp.web``'s ``TenantRef``). What admins may change, and its
checks, are ``idp.admin``'s; what the protocol does with them is ``idp.oidc``'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import TenantProtocol


@dataclass(frozen=True)
class Protocol:
    require_par: bool = False  # every authorization request through PAR (RFC 9126 6)
    dpop_nonce_required: bool = False  # DPoP proofs carry a nonce of ours (RFC 9449 8)
    # Where self-registered clients may redirect: host patterns; empty: the usual rules only.
    registration_redirect_hosts: tuple[str, ...] = ()


DEFAULTS = Protocol()


def from_row(row: TenantProtocol | None) -> Protocol:
    if row is None:
        return DEFAULTS
    return Protocol(bool(row.require_par), bool(row.dpop_nonce_required),
                    tuple(row.registration_redirect_hosts or ()))


def load(db: Session, tenant_id: int) -> Protocol:
    return from_row(db.scalar(select(TenantProtocol).where(TenantProtocol.tenant_id == tenant_id)))
