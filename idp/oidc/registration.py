"""Dynamic client registration: ``POST {issuer}/register`` (RFC 7591) behind an initial
access token an administrator issued (``idp.admin.registration_tokens``), and the client
configuration endpoint ``{issuer}/register/{client_id}`` (RFC 7592: read, replace, delete)
behind the registration access token the registration returned.

Plain Flask views rather than Authlib's ``ClientRegistrationEndpoint`` /
``ClientConfigurationEndpoint``: those validate with their own claims classes and save through
their own hooks, while a registered portal must pass exactly the checks an admin's does
(``directory.create_client``) plus the tenant's redirect-host rules (``client_metadata``).

Both tokens are stored only as hashes (``idp.hashing``) and looked up inside the tenant of the
URL, so a token of another tenant or of another client never works. A use of an initial access
token is taken by one conditional UPDATE after the client is made: two registrations racing
for its last use cannot both win.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import case, delete, or_, select, update

from idp import audit, db, hashing, subjects
from idp.directory import DirectoryError, create_client
from idp.models import Client, RegistrationToken, Tenant
from idp.oidc import client_metadata
from idp.oidc.client_metadata import Refused
from idp.web import issuer, load_tenant, settings

bp = Blueprint("registration", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)

INITIAL_TOKEN = "registration-token"  # idp.admin.registration_tokens.PURPOSE
ACCESS_TOKEN = "registration-access-token"
MAX_TOKEN = 512
# What a client sends in a PUT but may not set itself (RFC 7592 2.2): ignored.
SERVER_FIELDS = ("registration_access_token", "registration_client_uri",
                 "client_secret_expires_at", "client_id_issued_at")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _answer(body: dict | None, status: int, headers: dict | None = None):
    response = jsonify(body) if body is not None else current_app.response_class()
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _unauthorized(description: str):
    """401 with the bearer challenge (RFC 6750 3); nothing this request wrote is kept."""
    db.session().rollback()
    return _answer({"error": "invalid_token", "error_description": description}, 401,
                   {"WWW-Authenticate": f'Bearer error="invalid_token", '
                                        f'error_description="{description}"'})


def _refused(refused: Refused):
    db.session().rollback()  # error responses commit too (idp.db): drop the half-made client
    return _answer({"error": refused.error, "error_description": refused.description}, 400)


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value or len(value) > MAX_TOKEN:
        return None
    return value


def _body() -> dict:
    try:
        body = request.get_json(silent=True) if request.is_json else None
    except RecursionError:  # nested deeper than json reads: no metadata either
        body = None
    if not isinstance(body, dict):
        raise Refused("invalid_client_metadata",
                      "the body must be a JSON object of client metadata "
                      "(Content-Type: application/json)")
    return body


def _live_initial_token(token: str) -> RegistrationToken | None:
    now = _now()
    return db.session().scalar(select(RegistrationToken).where(
        RegistrationToken.tenant_id == g.tenant.id,
        RegistrationToken.token_hash == hashing.digest(INITIAL_TOKEN, token),
        RegistrationToken.revoked_at.is_(None),
        or_(RegistrationToken.expires_at.is_(None), RegistrationToken.expires_at > now),
        or_(RegistrationToken.uses_left.is_(None), RegistrationToken.uses_left > 0)))


def _take_one_use(row: RegistrationToken) -> bool:
    """One registration's use of the token, if it still has one (one conditional UPDATE)."""
    now = _now()
    taken = db.session().execute(
        update(RegistrationToken)
        .where(RegistrationToken.id == row.id, RegistrationToken.revoked_at.is_(None),
               or_(RegistrationToken.expires_at.is_(None), RegistrationToken.expires_at > now),
               or_(RegistrationToken.uses_left.is_(None), RegistrationToken.uses_left > 0))
        .values(uses_left=case((RegistrationToken.uses_left.is_(None), None),
                               else_=RegistrationToken.uses_left - 1))
        .execution_options(synchronize_session=False))
    return taken.rowcount == 1


def _information(client: Client, access_token: str, secret: str | None = None) -> dict:
    """The client information response (RFC 7591 3.2.1, RFC 7592 3)."""
    body = client_metadata.written(client)
    if secret is not None:
        body |= {"client_secret": secret, "client_secret_expires_at": 0}
    return body | {"registration_access_token": access_token,
                   "registration_client_uri": f"{issuer()}/register/{client.client_id}"}


@bp.post("/register")
def register():
    """RFC 7591 3: register a client with an initial access token."""
    token = _bearer()
    if token is None:
        return _unauthorized("An initial access token is required: "
                             "Authorization: Bearer <token from an administrator>.")
    row = _live_initial_token(token)
    if row is None:
        return _unauthorized("The initial access token is not valid: unknown, expired, "
                             "revoked or used up.")
    try:
        asked = client_metadata.read(_body(), g.tenant.protocol.registration_redirect_hosts)
        new = create_client(db.session(), _tenant_row(), asked.name, asked.redirect_uris,
                            actor=f"registration token {row.name}",
                            private_allowed=settings().calls_private_addresses, **asked.options)
    except Refused as refused:
        return _refused(refused)
    except DirectoryError as e:
        return _refused(Refused("invalid_client_metadata", str(e)))
    if not _take_one_use(row):
        return _unauthorized("The initial access token was used up by another registration.")
    access_token = hashing.new_secret()
    new.client.registration_token_hash = hashing.digest(ACCESS_TOKEN, access_token)
    db.session().flush()
    audit.record(db.session(), g.tenant.id, "client.registered",
                 actor=f"registration token {row.name}", client_id=new.client.client_id,
                 token_id=row.public_id)
    body = _information(new.client, access_token, new.secret)
    return _answer(body, 201, {"Location": body["registration_client_uri"]})


def _tenant_row() -> Tenant:
    return db.session().get(Tenant, g.tenant.id)


def _registered(client_id: str) -> tuple[Client | None, str | None]:
    """The client of this tenant whose registration access token was presented."""
    token = _bearer()
    if token is None:
        return None, None
    client = db.session().scalar(select(Client).where(Client.tenant_id == g.tenant.id,
                                                      Client.client_id == client_id[:64]))
    if client is None or not hashing.matches(ACCESS_TOKEN, token, client.registration_token_hash):
        return None, token
    return client, token


REFUSED_ACCESS = ("The registration access token is not valid for this client (RFC 7592 3): "
                  "use the one its registration returned.")


@bp.get("/register/<client_id>")
def read_client(client_id):
    """RFC 7592 2.1: the client's current metadata."""
    client, token = _registered(client_id)
    if client is None:
        return _unauthorized(REFUSED_ACCESS)
    return _answer(_information(client, token), 200)


# What a PUT replaces (RFC 7592 2.2: the metadata sent replaces all of it; what is left out
# goes back to its default). min_acr is an administrator's and stays.
REPLACED = ("name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "scope",
            "id_token_signed_response_alg", "backchannel_logout_uri",
            "backchannel_logout_session_required", "token_endpoint_auth_method", "jwks",
            "jwks_uri", "subject_type", "sector_identifier_uri", "require_par",
            "dpop_bound_access_tokens", "request_object_signing_alg",
            "require_signed_request_object", "registration_metadata")


@bp.put("/register/<client_id>")
def replace_client(client_id):
    """RFC 7592 2.2: replace the client's metadata. The registration access token stays the
    same (no new one is issued); a client that newly needs a secret gets one, shown once."""
    client, token = _registered(client_id)
    if client is None:
        return _unauthorized(REFUSED_ACCESS)
    session = db.session()
    try:
        body = _body()
        if body.get("client_id") != client.client_id:
            raise Refused("invalid_client_metadata",
                          "client_id in the body must be this client's (RFC 7592 2.2)")
        if "client_secret" in body and not hashing.matches("client-secret", body["client_secret"],
                                                           client.secret_hash):
            raise Refused("invalid_client_metadata", "client_secret is not this client's secret")
        asked = client_metadata.read({k: v for k, v in body.items() if k not in SERVER_FIELDS},
                                     g.tenant.protocol.registration_redirect_hosts)
        # The same checks as a registration, on a client made and dropped in a savepoint
        # (its audit event goes with it; the access line forgets it too).
        noted = list(g.get("log_outcomes", [])), g.get("log_client_id")
        savepoint = session.begin_nested()
        try:
            checked = create_client(session, _tenant_row(), asked.name, asked.redirect_uris,
                                    actor="registration access token",
                                    private_allowed=settings().calls_private_addresses,
                                    **asked.options)
            fields = {key: getattr(checked.client, key) for key in REPLACED}
            new_secret = checked.secret
        finally:
            savepoint.rollback()
            g.log_outcomes, g.log_client_id = noted
        _same_subjects(client, fields)
    except Refused as refused:
        return _refused(refused)
    except DirectoryError as e:
        return _refused(Refused("invalid_client_metadata", str(e)))
    secret = None
    if new_secret is None:
        client.secret_hash = None
    elif client.secret_hash is None:
        secret = new_secret
        client.secret_hash = hashing.digest("client-secret", secret)
    for key, value in fields.items():
        setattr(client, key, value)
    session.flush()
    audit.record(session, g.tenant.id, "client.updated", actor="registration access token",
                 client_id=client.client_id, changes={"replaced": True})
    return _answer(_information(client, token, secret), 200)


def _same_subjects(client: Client, fields: dict) -> None:
    """A replacement keeps the ``sub`` the client sees of each user: its subject type, and a
    pairwise client's sector. Else a client holding refresh tokens could move its sector to
    another portal's host and refresh into that portal's pairwise ``sub`` of its users (or
    from public to pairwise), linking the two."""
    if not subjects.new_subjects(client, SimpleNamespace(**fields)):
        return
    before = client.subject_type or subjects.PUBLIC
    if before != (fields["subject_type"] or subjects.PUBLIC):
        raise Refused("invalid_client_metadata", f"subject_type stays {before}: the sub of "
                                                 "every user would change (register a new client)")
    raise Refused("invalid_client_metadata",
                  f"the sector of this pairwise client stays {subjects.sector_of(client)!r} "
                  "(the host of its redirect URIs or sector_identifier_uri): the sub of every "
                  "user would change (register a new client)")


@bp.delete("/register/<client_id>")
def delete_client(client_id):
    """RFC 7592 2.3: deregister; the client's codes and tokens go with it."""
    client, _token = _registered(client_id)
    if client is None:
        return _unauthorized(REFUSED_ACCESS)
    session = db.session()
    pk, name = client.id, client.name
    session.expunge(client)
    session.execute(delete(Client).where(Client.id == pk, Client.tenant_id == g.tenant.id))
    audit.record(session, g.tenant.id, "client.deleted", actor="registration access token",
                 client_id=client_id, name=name)
    return _answer(None, 204)
