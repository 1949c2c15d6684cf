"""The tenant's sign-in policy, its branding, its protocol settings and its clients. Reads need ``admin:read``,
changes ``admin:write``. A client's secret is returned once, when it is created or rotated."""

from __future__ import annotations

from flask import g, request
from sqlalchemy import select

from idp import admin, branding, db, web
from idp.admin import branding as brand_admin
from idp.admin import protocol as protocol_admin
from idp.api import models
from idp.api.base import bp, current_caller, not_found, operation
from idp.clients import API_SCOPES
from idp.models import Client
from idp.oidc.bearer import Refused
from idp.problems import Problem

POLICY, BRANDING, CLIENTS = ("policy",), ("branding",), ("clients",)
PROTOCOL = ("protocol",)


@bp.get("/policy")
@operation("admin:read", ok={"HTTP_200": models.Policy}, tags=POLICY)
def get_policy():
    """The sign-in policy

    Two-step verification (mode, who, which factors, grace), lockout, passwords, sign-up and
    remembered browsers."""
    return models.Policy(**_policy_fields(admin.policy_dict(db.session(), g.tenant)))


def _no_nulls(changes: dict) -> None:
    """Settings that have no "none": null is refused (422), not taken as "keep it"."""
    bad = [k for k, v in changes.items() if v is None]
    if bad:
        raise Problem(422, "A setting cannot be null; leave it out to keep it.",
                      errors=[{"field": k, "message": "null"} for k in bad])


def _policy_fields(policy: dict) -> dict:
    return {k: v for k, v in policy.items() if k in models.Policy.model_fields}


@bp.put("/policy")
@operation("admin:write", body=models.PolicyChange, ok={"HTTP_200": models.Policy},
           tags=POLICY)
def put_policy():
    """Change the sign-in policy

    The settings given change, the others stay; every value is checked as the console checks
    it, and nothing changes when one is refused (422). Needs `admin:write`."""
    body: models.PolicyChange = request.context.json
    changes = body.model_dump(exclude_unset=True)
    _no_nulls(changes)
    after = admin.set_policy(db.session(), g.tenant, current_caller().actor, **changes)
    return models.Policy(**_policy_fields(after))


# -- branding -------------------------------------------------------------------------------

def _branding() -> models.Branding:
    brand = branding.load(db.session(), g.tenant.id)
    logo = (f"{web.issuer()}/branding/logo/{brand.logo_name}" if brand.logo_name else None)
    return models.Branding(display_name=brand.display_name, accent=brand.accent,
                           support_url=brand.support_url, support_email=brand.support_email,
                           logo_url=logo)


@bp.get("/branding")
@operation("admin:read", ok={"HTTP_200": models.Branding}, tags=BRANDING)
def get_branding():
    """The branding

    The display name, primary colour, support link and address the tenant's sign-in pages,
    console and mail show, and the URL of its logo (uploaded in the console)."""
    return _branding()


@bp.patch("/branding")
@operation("admin:write", body=models.BrandingChange, ok={"HTTP_200": models.Branding},
           tags=BRANDING)
def update_branding():
    """Change the branding

    The settings given change (null or "" clears one), the others stay; nothing changes when
    one is refused (422, each refusal under its field). Needs `admin:write`."""
    body: models.BrandingChange = request.context.json
    changes = {k: v or "" for k, v in body.model_dump(exclude_unset=True).items()}
    try:
        brand_admin.update(db.session(), g.tenant.id, current_caller().actor, **changes)
    except brand_admin.BrandingRefused as refused:
        raise Problem(422, "Some branding settings were refused.",
                      errors=[{"field": k, "message": m} for k, m in refused.errors.items()])
    db.session().flush()
    return _branding()


# -- protocol -------------------------------------------------------------------------------

@bp.get("/protocol")
@operation("admin:read", ok={"HTTP_200": models.Protocol}, tags=PROTOCOL)
def get_protocol():
    """The protocol settings

    What the tenant asks of its portals beyond the defaults: PAR for every authorization
    request, a nonce in DPoP proofs, the hosts self-registered portals may send people to."""
    return models.Protocol(**protocol_admin.as_dict(
        protocol_admin.settings(db.session(), g.tenant.id)))


@bp.patch("/protocol")
@operation("admin:write", body=models.ProtocolChange, ok={"HTTP_200": models.Protocol},
           tags=PROTOCOL)
def update_protocol():
    """Change the protocol settings

    The settings given change, the others stay; nothing changes when one is refused (422,
    each refusal under its field). Discovery says the change at once. Needs `admin:write`."""
    body: models.ProtocolChange = request.context.json
    changes = body.model_dump(exclude_unset=True)
    _no_nulls(changes)
    try:
        after = protocol_admin.update(db.session(), g.tenant.id, current_caller().actor,
                                      **changes)
    except protocol_admin.ProtocolRefused as refused:
        raise Problem(422, "Some protocol settings were refused.",
                      errors=[{"field": k, "message": m} for k, m in refused.errors.items()])
    return models.Protocol(**protocol_admin.as_dict(after))


# -- clients --------------------------------------------------------------------------------

def _client(client_id: str) -> Client:
    client = db.session().scalar(select(Client).where(Client.tenant_id == g.tenant.id,
                                                      Client.client_id == client_id[:64]))
    if client is None:
        raise not_found("client")
    return client


def _fields(client: Client) -> dict:
    return dict(client_id=client.client_id, name=client.name, public=client.is_public,
                redirect_uris=list(client.redirect_uris),
                post_logout_redirect_uris=list(client.post_logout_redirect_uris),
                grant_types=list(client.grant_types), scope=client.scope,
                id_token_signed_response_alg=client.id_token_signed_response_alg,
                min_acr=client.min_acr, backchannel_logout_uri=client.backchannel_logout_uri,
                backchannel_logout_session_required=client.backchannel_logout_session_required,
                token_endpoint_auth_method=client.token_endpoint_auth_method or (
                    "none" if client.is_public else "client_secret_basic"),
                jwks=client.jwks, jwks_uri=client.jwks_uri,
                subject_type=client.subject_type or "public",
                sector_identifier_uri=client.sector_identifier_uri,
                require_pushed_authorization_requests=bool(client.require_par),
                require_signed_request_object=bool(client.require_signed_request_object),
                request_object_signing_alg=client.request_object_signing_alg,
                dpop_bound_access_tokens=client.dpop_bound_access_tokens,
                created_at=client.created_at)


def _no_more_than_caller(scope: str | None, what: str) -> None:
    """A service gives no client an API scope it does not hold itself: otherwise
    ``admin:write`` alone would mint a client with every scope (403 ``insufficient_scope``)."""
    if scope is None:
        return
    beyond = [s for s in dict.fromkeys(scope.split()) if s in API_SCOPES
              and s not in current_caller().scopes]
    if beyond:
        raise Refused(403, "insufficient_scope",
                      f"{what} a client the scope {' '.join(beyond)} needs that scope yourself.",
                      " ".join(beyond))


def _within_caller(client) -> None:
    """A client that holds an API scope the caller does not is beyond the caller: its secret
    is not the caller's to rotate, nor is it the caller's to change or delete."""
    beyond = [s for s in client.scope.split() if s in API_SCOPES
              and s not in current_caller().scopes]
    if beyond:
        raise Refused(403, "insufficient_scope",
                      f"This client holds {' '.join(beyond)}, which this service does not: "
                      "change it in the console.", " ".join(beyond))


@bp.get("/clients")
@operation("admin:read", ok={"HTTP_200": models.Clients}, tags=CLIENTS)
def list_clients():
    """List clients

    The tenant's portals and services, oldest first (never a secret)."""
    rows = db.session().scalars(select(Client).where(Client.tenant_id == g.tenant.id)
                                .order_by(Client.id))
    return models.Clients(items=[models.Client(**_fields(c)) for c in rows])


@bp.post("/clients")
@operation("admin:write", body=models.ClientCreate, ok={"HTTP_201": models.ClientWithSecret},
           tags=CLIENTS, idempotent_create=True)
def create_client():
    """Register a client

    The response holds its secret (a confidential client's), the only time it is shown.
    API scopes go only to a confidential client with the client_credentials grant. Needs
    `admin:write`. Honours `Idempotency-Key` (a replay returns the same secret)."""
    body: models.ClientCreate = request.context.json
    _no_more_than_caller(body.scope, "Giving")
    made = admin.register_client(
        db.session(), g.tenant, current_caller().actor, body.name, body.redirect_uris,
        public=body.public, post_logout_redirect_uris=body.post_logout_redirect_uris,
        grant_types=body.grant_types, id_token_alg=body.id_token_signed_response_alg,
        min_acr=body.min_acr, backchannel_logout_uri=body.backchannel_logout_uri,
        backchannel_logout_session_required=body.backchannel_logout_session_required,
        scope=body.scope, auth_method=body.token_endpoint_auth_method, jwks=body.jwks,
        jwks_uri=body.jwks_uri, subject_type=body.subject_type,
        sector_identifier_uri=body.sector_identifier_uri,
        private_allowed=web.settings().calls_private_addresses,
        require_par=body.require_pushed_authorization_requests,
        require_signed_request_object=body.require_signed_request_object,
        request_object_signing_alg=body.request_object_signing_alg,
        dpop_bound_access_tokens=body.dpop_bound_access_tokens)
    location = f"{web.issuer()}/api/v1/clients/{made.client.client_id}"
    return (models.ClientWithSecret(**_fields(made.client), client_secret=made.secret), 201,
            {"Location": location})


@bp.get("/clients/<client_id>")
@operation("admin:read", ok={"HTTP_200": models.Client}, tags=CLIENTS)
def get_client(client_id):
    """Get a client"""
    return models.Client(**_fields(_client(client_id)))


@bp.patch("/clients/<client_id>")
@operation("admin:write", body=models.ClientUpdate, ok={"HTTP_200": models.ClientUpdated},
           tags=CLIENTS)
def update_client(client_id):
    """Change a client

    What is given changes (`min_acr` or `backchannel_logout_uri` null: none). A change that
    gives every user a new `sub` at the client (its `subject_type`, a pairwise client's sector)
    needs `"confirm_new_subjects": true`; without it, 409 and nothing changes. Needs
    `admin:write`."""
    client = _client(client_id)
    body: models.ClientUpdate = request.context.json
    _within_caller(client)
    _no_more_than_caller(body.scope, "Giving")
    if body.scope is not None and client.client_id == current_caller().client.client_id:
        raise Problem(409, "A service cannot change its own scopes; an administrator does, in "
                           "the console.")
    credentials = body.token_endpoint_auth_method or body.jwks or body.jwks_uri
    if credentials and client.client_id == current_caller().client.client_id:
        raise Problem(409, "A service cannot change how it proves itself; an administrator "
                           "does, in the console.")
    given = body.model_dump(exclude_unset=True)
    try:
        updated = _update_client(client, body, given)
    except admin.NewSubjects:
        raise Problem(409, "Every user of this client would get a new sub (subject identifier), "
                           "so the portal would no longer recognise the people it knows. Nothing "
                           "was changed; to go ahead, send the change again with "
                           "\"confirm_new_subjects\": true.",
                      errors=[{"field": "confirm_new_subjects",
                               "message": "must be true for this change"}]) from None
    secret = None
    if credentials:
        secret = admin.set_client_credentials(
            db.session(), g.tenant, client.client_id, current_caller().actor,
            auth_method=body.token_endpoint_auth_method or updated.token_endpoint_auth_method
            or "client_secret_basic", jwks=body.jwks, jwks_uri=body.jwks_uri)
    return models.ClientUpdated(**_fields(updated), client_secret=secret)


def _update_client(client: Client, body: models.ClientUpdate, given: dict) -> Client:
    """``admin.update_client`` with what the body gives (a field given as null: none)."""
    return admin.update_client(
        db.session(), g.tenant, client.client_id, current_caller().actor,
        name=body.name, redirect_uris=body.redirect_uris,
        post_logout_redirect_uris=body.post_logout_redirect_uris,
        min_acr=given["min_acr"] if "min_acr" in given else False,
        backchannel_logout_uri=(given["backchannel_logout_uri"]
                                if "backchannel_logout_uri" in given else False),
        backchannel_logout_session_required=body.backchannel_logout_session_required,
        scope=body.scope, subject_type=body.subject_type,
        sector_identifier_uri=(given["sector_identifier_uri"]
                               if "sector_identifier_uri" in given else False),
        private_allowed=web.settings().calls_private_addresses,
        require_par=body.require_pushed_authorization_requests,
        require_signed_request_object=body.require_signed_request_object,
        request_object_signing_alg=(given["request_object_signing_alg"]
                                    if "request_object_signing_alg" in given else False),
        dpop_bound_access_tokens=body.dpop_bound_access_tokens,
        confirm_new_subjects=body.confirm_new_subjects)


@bp.post("/clients/<client_id>/secret")
@operation("admin:write", ok={"HTTP_200": models.Secret}, tags=CLIENTS)
def rotate_secret(client_id):
    """Rotate a client's secret

    A new secret, shown once here; the old one stops working now. Needs `admin:write`."""
    client = _client(client_id)
    _within_caller(client)
    secret = admin.rotate_client_secret(db.session(), g.tenant, client.client_id,
                                        current_caller().actor)
    return models.Secret(client_id=client.client_id, client_secret=secret)


@bp.delete("/clients/<client_id>")
@operation("admin:write", ok={"HTTP_204": None}, tags=CLIENTS)
def delete_client(client_id):
    """Delete a client

    Its codes and tokens go with it. A service cannot delete the client it calls with (409).
    Needs `admin:write`."""
    client = _client(client_id)
    _within_caller(client)
    if client.client_id == current_caller().client.client_id:
        raise Problem(409, "A service cannot delete the client it calls with; use another "
                           "client or the console.")
    admin.delete_client(db.session(), g.tenant, client.client_id, current_caller().actor)
    return "", 204
