"""Portals (OAuth clients) as the console registers, edits, rotates and deletes them. A
client's secret is shown once to the caller and stored only as a hash (``idp.hashing``).
"""

from __future__ import annotations

from types import SimpleNamespace

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import audit, subjects
from idp import jwks as client_jwks
from idp.directory import (CLIENT_SIGNING_ALGS, SUBJECT_TYPES, DirectoryError, NotFound,
                           _check_uri, check_backchannel_uri, check_request_rules, check_scope,
                           check_sector, create_client)
from idp.models import Client, Tenant
from idp import hashing
from idp.policy import LEVELS

MIN_ACRS = (None, *LEVELS)  # a client's floor: none, or a level


class NewSubjects(DirectoryError):
    """A change that would give every user a new ``sub`` at the portal (``subjects.new_subjects``),
    asked without ``confirm_new_subjects``: refused, nothing changed. Each caller says how
    to confirm it (the console's box, the CLI's flag, the API's field)."""


def _client(db: Session, tenant: Tenant, client_id: str):
    client = db.scalar(select(Client).where(Client.tenant_id == tenant.id,
                                            Client.client_id == (client_id or "")))
    if client is None:
        raise NotFound(f"no portal {client_id!r} in {tenant.slug}")
    return client


def register_client(db: Session, tenant: Tenant, actor: str, name: str, redirect_uris: list[str],
                    **options):
    """``directory.create_client`` (same checks, same options), audited with the admin as actor."""
    return create_client(db, tenant, name, redirect_uris, actor=actor, **options)


def update_client(db: Session, tenant: Tenant, client_id: str, actor: str, *,
                  name: str | None = None, redirect_uris: list[str] | None = None,
                  post_logout_redirect_uris: list[str] | None = None,
                  min_acr: str | None | bool = False,
                  backchannel_logout_uri: str | None | bool = False,
                  backchannel_logout_session_required: bool | None = None,
                  scope: str | list[str] | None = None,
                  subject_type: str | None = None,
                  sector_identifier_uri: str | None | bool = False,
                  private_allowed: bool = False,
                  require_par: bool | None = None,
                  require_signed_request_object: bool | None = None,
                  request_object_signing_alg: str | None | bool = False,
                  dpop_bound_access_tokens: bool | None = None,
                  confirm_new_subjects: bool = False):
    """Change what is given (``min_acr=False``: unchanged; None or "pwd": no floor;
    ``backchannel_logout_uri=False``: unchanged, None or "": none; the session flag None:
    unchanged; ``scope`` None: unchanged; ``subject_type`` None: unchanged;
    ``sector_identifier_uri=False``: unchanged, None or "": none; the PAR and request object
    flags None: unchanged; ``request_object_signing_alg=False``: unchanged, None: any the
    server accepts). Exact URIs are checked as ``create_client`` checks them; nothing changes if
    one is wrong. A pairwise client's sector is checked again (its sector identifier URI
    fetched, ``idp.subjects``) when its redirect URIs, sector URI or subject type change.
    A new subject type or sector gives the portal a new ``sub`` for every user, so that
    portal no longer knows its people: refused (``NewSubjects``) unless
    ``confirm_new_subjects``, before anything is fetched."""
    client = _client(db, tenant, client_id)
    changes: dict = {}
    if name is not None:
        if not name.strip():
            raise DirectoryError(_("a client needs a name"))
        if name.strip() != client.name:
            changes["name"] = name.strip()
    if redirect_uris is not None:
        uris = [_check_uri(u, _("redirect URI")) for u in dict.fromkeys(redirect_uris)]
        if "authorization_code" in client.grant_types and not uris:
            raise DirectoryError("the authorization_code grant needs at least one redirect URI")
        if uris != list(client.redirect_uris):
            changes["redirect_uris"] = uris
    if post_logout_redirect_uris is not None:
        uris = [_check_uri(u, _("post-logout redirect URI"))
                for u in dict.fromkeys(post_logout_redirect_uris)]
        if uris != list(client.post_logout_redirect_uris):
            changes["post_logout_redirect_uris"] = uris
    if min_acr is not False:
        if min_acr not in MIN_ACRS:
            raise DirectoryError("the minimum acr must be pwd, mfa or phr")
        floor = min_acr if min_acr != "pwd" else None
        if floor != client.min_acr:
            changes["min_acr"] = floor
    if backchannel_logout_uri is not False:
        uri = check_backchannel_uri(backchannel_logout_uri)
        if uri != client.backchannel_logout_uri:
            changes["backchannel_logout_uri"] = uri
    if (backchannel_logout_session_required is not None
            and bool(backchannel_logout_session_required)
            != client.backchannel_logout_session_required):
        changes["backchannel_logout_session_required"] = bool(backchannel_logout_session_required)
    if scope is not None:
        checked = check_scope(scope, client.grant_types, client.is_public)
        if checked != client.scope:
            changes["scope"] = checked
    if subject_type is not None:
        if subject_type not in SUBJECT_TYPES:
            raise DirectoryError(f"the subject type must be one of {', '.join(SUBJECT_TYPES)}")
        if subject_type != client.subject_type:
            changes["subject_type"] = subject_type
    if sector_identifier_uri is not False:
        uri = (sector_identifier_uri or "").strip() or None
        if uri != client.sector_identifier_uri:
            changes["sector_identifier_uri"] = uri
    if {"redirect_uris", "subject_type", "sector_identifier_uri"} & changes.keys():
        _confirmed_subjects(client, changes, confirm_new_subjects)
        checked_sector = check_sector(
            changes.get("subject_type", client.subject_type),
            changes.get("redirect_uris", client.redirect_uris),
            changes.get("sector_identifier_uri", client.sector_identifier_uri),
            private_allowed=private_allowed)
        if "sector_identifier_uri" in changes:
            changes["sector_identifier_uri"] = checked_sector
    for flag, value in (("require_par", require_par),
                        ("require_signed_request_object", require_signed_request_object)):
        if value is not None and bool(value) != bool(getattr(client, flag)):
            changes[flag] = bool(value)
    if request_object_signing_alg is not False:
        alg = request_object_signing_alg or None
        if alg is not None and alg not in CLIENT_SIGNING_ALGS:
            raise DirectoryError("the request object algorithm must be one of "
                                 f"{', '.join(CLIENT_SIGNING_ALGS)}")
        if alg != client.request_object_signing_alg:
            changes["request_object_signing_alg"] = alg
    check_request_rules(client.grant_types, **{
        key: changes.get(key) for key in ("require_par", "require_signed_request_object",
                                          "request_object_signing_alg")})
    if (dpop_bound_access_tokens is not None
            and bool(dpop_bound_access_tokens) != client.dpop_bound_access_tokens):
        changes["dpop_bound_access_tokens"] = bool(dpop_bound_access_tokens)
    for key, value in changes.items():
        setattr(client, key, value)  # new lists: JSON columns see assignment, not mutation
    db.flush()
    audit.record(db, tenant.id, "client.updated", actor=actor, client_id=client.client_id,
                 changes=changes)
    return client


def _confirmed_subjects(client: Client, changes: dict, confirmed: bool) -> None:
    """Refuse ``changes`` that give every user a new ``sub`` at ``client``, unless confirmed."""
    after = SimpleNamespace(**{key: changes.get(key, getattr(client, key)) for key in
                               ("subject_type", "redirect_uris", "sector_identifier_uri")})
    if not confirmed and subjects.new_subjects(client, after):
        raise NewSubjects(_("every user of %(name)s would get a new subject identifier (sub) "
                            "there, so the portal would no longer recognise the people it knows",
                            name=client.name))


KEY_METHOD = "private_key_jwt"


def set_client_credentials(db: Session, tenant: Tenant, client_id: str, actor: str, *,
                           auth_method: str, jwks: dict | None = None,
                           jwks_uri: str | None = None) -> str | None:
    """How a confidential client proves itself: a secret (``client_secret_basic`` or
    ``client_secret_post``) or its key pair (``private_key_jwt`` with ``jwks`` or ``jwks_uri``).
    Moving to keys drops its secret (it stops working now); moving back to a secret makes a new
    one, returned here once (the keys are dropped). New keys for a keyed client replace its
    old ones. A public client stays public (it has neither). Returns the new secret, if any."""
    client = _client(db, tenant, client_id)
    if auth_method not in ("client_secret_basic", "client_secret_post", KEY_METHOD):
        raise DirectoryError("the authentication method must be client_secret_basic, "
                             "client_secret_post or private_key_jwt")
    if client.is_public:
        raise DirectoryError(_("a public client has no secret and no keys: it stays public"))
    changes: dict = {}
    secret = None
    if auth_method == KEY_METHOD:
        if bool(jwks) == bool(jwks_uri):
            raise DirectoryError(_("a portal that proves itself with a key needs its public "
                                   "keys: a JWKS or its address (one of them)"))
        if jwks:
            try:
                jwks = client_jwks.check(jwks)
            except client_jwks.BadKeySet as error:
                raise DirectoryError(str(error)) from None
        uri = _check_uri(jwks_uri, "jwks_uri", server=True) if jwks_uri else None
        changes.update(token_endpoint_auth_method=KEY_METHOD, secret_hash=None,
                       jwks=jwks or None, jwks_uri=uri)
    else:
        changes["token_endpoint_auth_method"] = (
            "client_secret_post" if auth_method == "client_secret_post" else None)
        if client.token_endpoint_auth_method == KEY_METHOD or client.secret_hash is None:
            secret = hashing.new_secret()
            changes.update(secret_hash=hashing.digest("client-secret", secret), jwks=None,
                           jwks_uri=None)
    changed = {k: v for k, v in changes.items() if getattr(client, k) != v}
    for key, value in changed.items():
        setattr(client, key, value)
    db.flush()
    if changed:
        audit.record(db, tenant.id, "client.credentials_changed", actor=actor,
                     client_id=client.client_id, auth_method=auth_method,
                     keys=("jwks_uri" if client.jwks_uri else "jwks" if client.jwks else None),
                     new_secret=secret is not None)
    return secret


def rotate_client_secret(db: Session, tenant: Tenant, client_id: str, actor: str) -> str:
    """A new secret, returned once; the old one stops working now."""
    client = _client(db, tenant, client_id)
    if client.is_public:
        raise DirectoryError(_("a public client has no secret to rotate"))
    if client.token_endpoint_auth_method == KEY_METHOD:
        raise DirectoryError(_("this portal proves itself with a key, not a secret"))
    secret = hashing.new_secret()
    client.secret_hash = hashing.digest("client-secret", secret)
    db.flush()
    audit.record(db, tenant.id, "client.secret_rotated", actor=actor, client_id=client.client_id)
    return secret


def delete_client(db: Session, tenant: Tenant, client_id: str, actor: str) -> str:
    """Remove a client; its codes and tokens go with it (ON DELETE CASCADE). Returns its name."""
    client = _client(db, tenant, client_id)
    name, cid = client.name, client.client_id
    db.expunge(client)
    db.execute(delete(Client).where(Client.id == client.id, Client.tenant_id == tenant.id))
    audit.record(db, tenant.id, "client.deleted", actor=actor, client_id=cid, name=name)
    return name
