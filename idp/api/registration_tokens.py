"""Initial access tokens for dynamic client registration (RFC 7591 3): list, create (the token
is in the answer once), revoke. Reads need ``admin:read``, changes ``admin:write``; every
change goes through ``idp.admin.registration_tokens``, as the console's and the CLI's do."""

from __future__ import annotations

from datetime import datetime

from flask import g, request
from pydantic import BaseModel, Field

from idp import db, web
from idp.admin import registration_tokens
from idp.api.base import bp, current_caller, not_found, operation
from idp.api.models import Request
from idp.directory import NotFound

TAGS = ("registration tokens",)


class RegistrationToken(BaseModel):
    id: str
    name: str = Field(description="Who the token is for.")
    created_by: str
    created_at: datetime
    expires_at: datetime | None = Field(description="None: it does not expire.")
    uses_left: int | None = Field(description="Registrations it may still make; None: any number.")
    revoked_at: datetime | None
    state: str = Field(description='"active", "expired", "used up" or "revoked".')


class RegistrationTokens(BaseModel):
    items: list[RegistrationToken]


class RegistrationTokenIssued(RegistrationToken):
    token: str = Field(description="The initial access token, shown once here: only its hash "
                                   "is kept. Developers send it as `Authorization: Bearer` to "
                                   "`registration_endpoint`.")
    registration_endpoint: str


class RegistrationTokenCreate(Request):
    name: str = Field(min_length=1, max_length=200, description="Who the token is for.")
    expires_in_days: int | None = Field(None, ge=1, le=registration_tokens.MAX_DAYS)
    expires_at: datetime | None = Field(None, description="Instead of expires_in_days.")
    uses: int | None = Field(None, ge=1, le=registration_tokens.MAX_USES,
                             description="How many clients it may register; none: any number.")


def _fields(row) -> dict:
    return dict(id=row.public_id, name=row.name, created_by=row.created_by,
                created_at=row.created_at, expires_at=row.expires_at, uses_left=row.uses_left,
                revoked_at=row.revoked_at, state=registration_tokens.state(row))


@bp.get("/registration-tokens")
@operation("admin:read", ok={"HTTP_200": RegistrationTokens}, tags=TAGS)
def list_registration_tokens():
    """List initial access tokens

    Newest first; never the token itself."""
    rows = registration_tokens.listed(db.session(), g.tenant)
    return RegistrationTokens(items=[RegistrationToken(**_fields(r)) for r in rows])


@bp.post("/registration-tokens")
@operation("admin:write", body=RegistrationTokenCreate,
           ok={"HTTP_201": RegistrationTokenIssued}, tags=TAGS)
def create_registration_token():
    """Create an initial access token

    With it, a portal's developers register clients themselves at the tenant's
    `registration_endpoint` (RFC 7591). The token is in this answer only. Needs `admin:write`."""
    body: RegistrationTokenCreate = request.context.json
    issued = registration_tokens.create(
        db.session(), g.tenant, current_caller().actor, body.name,
        expires_in_days=body.expires_in_days, expires_at=body.expires_at, uses=body.uses)
    return (RegistrationTokenIssued(**_fields(issued.row), token=issued.token,
                                    registration_endpoint=f"{web.issuer()}/register"), 201)


@bp.delete("/registration-tokens/<token_id>")
@operation("admin:write", ok={"HTTP_204": None}, tags=TAGS)
def revoke_registration_token(token_id):
    """Revoke an initial access token

    It registers nothing more; clients it registered stay. Needs `admin:write`."""
    try:
        registration_tokens.revoke(db.session(), g.tenant, token_id, current_caller().actor)
    except NotFound:
        raise not_found("registration token") from None
    return "", 204
