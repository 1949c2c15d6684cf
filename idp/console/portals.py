"""The console's portals (OAuth clients): list, register, edit, rotate the secret, delete.

A new or rotated secret is shown once, on the page that answers the POST (never cached, never
shown again: only its hash is stored). Every change goes through ``idp.admin``, which checks
it as ``directory.create_client`` does and audits it with the admin as actor and the client_id.
"""

from __future__ import annotations

import json

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import select

from idp import admin, db, jwks
from idp.admin import registration_tokens
from idp.console.views import bp
from idp.clients import API_SCOPES, DEFAULT_SCOPE
from idp.directory import (CLIENT_SIGNING_ALGS, DEFAULT_GRANT_TYPES, GRANT_TYPES, ID_TOKEN_ALGS,
                           DirectoryError, RequestRulesNeedSignIn, _check_uri)
from idp.models import Client
from idp.web import settings

MAX_URIS = 50
MAX_URI_LENGTH = 2000
MAX_URI_TEXT = MAX_URIS * (MAX_URI_LENGTH + 2)  # what a textarea of URIs may hold
ACR_CHOICES = [("", _l("No floor: whatever the policy asks")),
               ("mfa", _l("Two-factor: a second factor every time (acr mfa)")),
               ("phr", _l("Phishing-resistant: a passkey or security key (acr phr)"))]
MINIMUMS = {"mfa": _l("Two-factor"), "phr": _l("Phishing-resistant")}
GRANT_HELP = {
    "authorization_code": _l("Sign people in (authorization code with PKCE)"),
    "refresh_token": _l("Stay signed in (refresh tokens, with offline_access)"),
    "client_credentials": _l("Machine to machine (client credentials, confidential portals only)"),
}

# What a service may do through the admin API and SCIM, in an administrator's words.
API_SCOPE_HELP = {
    "admin:read": _l("See users, groups, sessions, the sign-in policy, portals and the audit log"),
    "admin:write": _l("Change users, groups, sessions, the sign-in policy and portals"),
    "mfa:manage": _l("Require, exempt or reset a person's second step, unlock them, forget their "
                     "browsers"),
    "users:provision": _l("Create, update, deactivate and delete people and groups (SCIM too)"),
}
assert API_SCOPE_HELP.keys() == API_SCOPES.keys()


class BadForm(DirectoryError):
    """A form refused; ``field``: the field it is about, under which the page says why."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _uris(field: str, what: str) -> list[str]:
    """One URI a line, blank lines ignored, duplicates dropped."""
    lines = [line.strip() for line in request.form.get(field, "").splitlines()]
    uris = list(dict.fromkeys(line for line in lines if line))
    if len(uris) > MAX_URIS:
        raise BadForm(_("at most %(num)d %(what)s", num=MAX_URIS, what=what))
    for uri in uris:
        if len(uri) > MAX_URI_LENGTH:
            raise BadForm(_("%(what)s: at most %(num)d characters each", what=what, num=MAX_URI_LENGTH))
    return uris


def _backchannel_form() -> dict:
    """The back-channel logout fields as typed (re-shown on an error)."""
    return {"backchannel_logout_uri": request.form.get("backchannel_logout_uri", "")[:MAX_URI_TEXT],
            "backchannel_logout_session_required":
                request.form.get("backchannel_logout_session_required") == "1"}


def _backchannel(form: dict) -> dict:
    """The back-channel logout registration to save (blank: none)."""
    uri = form["backchannel_logout_uri"].strip()
    if len(uri) > MAX_URI_LENGTH:
        raise BadForm(_("a back-channel logout URI is at most %(num)d characters", num=MAX_URI_LENGTH))
    return {"backchannel_logout_uri": uri or None,
            "backchannel_logout_session_required": form["backchannel_logout_session_required"]}


MAX_JWKS_TEXT = 64 * 1024  # as a fetched jwks_uri document


def _proof_form(client: Client | None = None) -> dict:
    """How the portal proves itself, as typed (``client``: as registered, for the edit page)."""
    if client is not None:
        keyed = client.token_endpoint_auth_method == admin.KEY_METHOD
        return {"proof": "key" if keyed else "secret",
                "jwks": json.dumps(client.jwks, indent=2) if client.jwks else "",
                "jwks_uri": client.jwks_uri or ""}
    proof = request.form.get("proof")  # absent: unchanged (a form from before this field)
    return {"proof": {"key": "key", "secret": "secret"}.get(proof, None if proof is None else "secret"),
            "jwks": request.form.get("jwks", "")[:MAX_JWKS_TEXT],
            "jwks_uri": request.form.get("jwks_uri", "")[:MAX_URI_TEXT]}


def _proof(form: dict) -> dict:
    """The credentials to register from the proof fields: nothing for a secret; for a key,
    the JWKS (checked) or the address where the portal publishes it (checked)."""
    if form["proof"] != "key":
        return {}
    text, uri = form["jwks"].strip(), form["jwks_uri"].strip()
    if bool(text) == bool(uri):
        raise BadForm(_("A portal that proves itself with a key needs its public keys: paste "
                        "them, or give the address where it publishes them (one of the two)."),
                      field="jwks")
    if len(uri) > MAX_URI_LENGTH:
        raise BadForm(_("The address of the public keys is at most %(num)d characters",
                        num=MAX_URI_LENGTH), field="jwks_uri")
    try:
        return {"auth_method": admin.KEY_METHOD, "jwks": jwks.parse(text) if text else None,
                "jwks_uri": _check_uri(uri, _("The address of the public keys"), server=True)
                if uri else None}
    except jwks.BadKeySet as error:
        if isinstance(error, jwks.PrivateKeyShown):
            form["jwks"] = ""  # not echoed back into the page
        raise BadForm(_("The public keys are refused: %(why)s", why=str(error)),
                      field="jwks") from None


def _subject_form() -> dict:
    """Which id the portal gets of a person (``idp.subjects``), as typed."""
    return {"subject_type": "pairwise" if request.form.get("subject_type") == "pairwise"
            else "public",
            "sector_identifier_uri": request.form.get("sector_identifier_uri", "")[:MAX_URI_TEXT]}


def _subjects(form: dict) -> dict:
    uri = form["sector_identifier_uri"].strip()
    if len(uri) > MAX_URI_LENGTH:
        raise BadForm(_("a sector identifier URI is at most %(num)d characters", num=MAX_URI_LENGTH))
    return {"subject_type": form["subject_type"], "sector_identifier_uri": uri or None,
            "private_allowed": settings().calls_private_addresses}


def _request_rules_of(client: Client) -> dict:
    """How the portal must send its sign-in requests (PAR, request objects), as saved."""
    return {"require_par": bool(client.require_par),
            "require_signed_request_object": bool(client.require_signed_request_object),
            "request_object_signing_alg": client.request_object_signing_alg or ""}


def _request_rules_form() -> dict:
    """The same, as ticked (an unknown algorithm is refused by ``directory.create_client`` and
    ``admin.update_client``)."""
    return {"require_par": request.form.get("require_par") == "1",
            "require_signed_request_object":
                request.form.get("require_signed_request_object") == "1",
            "request_object_signing_alg": request.form.get("request_object_signing_alg", "")[:16]}


def _request_rules(form: dict) -> dict:
    """The rules to save from the ticked ones (no algorithm chosen: any the server accepts)."""
    return {"require_par": form["require_par"],
            "require_signed_request_object": form["require_signed_request_object"],
            "request_object_signing_alg": form["request_object_signing_alg"] or None}


def _tokens_form() -> dict:
    """Whether the portal gets only DPoP-bound tokens (RFC 9449), as ticked."""
    return {"dpop_bound_access_tokens": request.form.get("dpop_bound_access_tokens") == "1"}


def _api_scopes() -> list[str]:
    """The admin API scopes ticked (an unknown one is refused by ``directory.check_scope``)."""
    return list(dict.fromkeys(request.form.getlist("api_scopes")))[:len(API_SCOPES) + 1]


def _with_api_scopes(scope: str, api_scopes: list[str]) -> list[str]:
    """``scope`` with its API scopes replaced by ``api_scopes``: the sign-in scopes stay."""
    return [s for s in scope.split() if s not in API_SCOPES] + api_scopes


def _min_acr() -> str | None:
    value = request.form.get("min_acr", "")
    return value or None


def no_store(response):
    """A page that shows a secret once: kept by no cache."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _portal(client_id: str) -> Client:
    client = db.session().scalar(select(Client).where(Client.tenant_id == g.tenant.id,
                                                      Client.client_id == client_id[:64]))
    if client is None:
        abort(404, description=_("There is no such portal in this organisation."))
    return client


def _render_list(status: int = 200, error: DirectoryError | None = None,
                 form: dict | None = None, token_error: DirectoryError | None = None,
                 token_form: dict | None = None,
                 issued: registration_tokens.IssuedToken | None = None):
    """The tenant's portals, the form that registers one (re-shown as typed on an error), and
    the tokens with which developers register portals themselves (``issued``: just created,
    its token shown on this answer only)."""
    clients = db.session().scalars(
        select(Client).where(Client.tenant_id == g.tenant.id).order_by(Client.name, Client.id)
        .limit(1000)).all()
    form = form or {"name": "", "redirect_uris": "", "post_logout_redirect_uris": "",
                    "backchannel_logout_uri": "", "backchannel_logout_session_required": False,
                    "public": False, "grant_types": list(DEFAULT_GRANT_TYPES), "min_acr": "",
                    "id_token_alg": "RS256", "api_scopes": [], "proof": "secret", "jwks": "",
                    "jwks_uri": "", "subject_type": "public", "sector_identifier_uri": "",
                    "dpop_bound_access_tokens": False, "require_par": False,
                    "require_signed_request_object": False, "request_object_signing_alg": ""}
    return render_template("console/portals.html", clients=clients, form=form,
                           error=error and str(error), error_at=_field_of(error),
                           minimums=MINIMUMS, max_uri_length=MAX_URI_LENGTH,
                           api_scope_help=API_SCOPE_HELP,
                           grant_help=GRANT_HELP, acr_choices=ACR_CHOICES, algs=ID_TOKEN_ALGS,
                           request_object_algs=CLIENT_SIGNING_ALGS,
                           tokens=registration_tokens.listed(db.session(), g.tenant),
                           token_states=TOKEN_STATES, registration_state=registration_tokens.state,
                           token_error=token_error and str(token_error),
                           token_error_at=_field_of(token_error),
                           token_form=token_form or {"name": "", "days": "30", "uses": ""},
                           issued=issued), status


@bp.get("/portals", endpoint="portals")
def portals_list():
    return _render_list()


@bp.post("/portals")
def portal_register():
    form = {
        "name": request.form.get("name", "")[:200],
        "redirect_uris": request.form.get("redirect_uris", "")[:MAX_URI_TEXT],
        "post_logout_redirect_uris":
            request.form.get("post_logout_redirect_uris", "")[:MAX_URI_TEXT],
        **_backchannel_form(),
        "public": request.form.get("public") == "1",
        "grant_types": [t for t in request.form.getlist("grant_types") if t in GRANT_TYPES],
        "min_acr": request.form.get("min_acr", ""),
        "id_token_alg": request.form.get("id_token_alg", "RS256"),
        "api_scopes": _api_scopes(),
        **_proof_form(),
        **_tokens_form(),
        **_subject_form(),
        **_request_rules_form(),
    }
    unknown = [t for t in request.form.getlist("grant_types") if t not in GRANT_TYPES]
    try:
        if unknown:
            raise BadForm(_("grant types must be among %(types)s", types=", ".join(GRANT_TYPES)))
        redirect_uris = _uris("redirect_uris", _("redirect URIs"))
        if "authorization_code" in form["grant_types"] and not redirect_uris:
            # Said here in the console's words (the directory's names the CLI's option).
            raise BadForm(_("A portal that signs people in needs at least one redirect URI."))
        try:
            new = admin.register_client(
                db.session(), g.tenant, g.admin.email, form["name"],
                redirect_uris, public=form["public"],
                post_logout_redirect_uris=_uris("post_logout_redirect_uris", _("post-logout redirect URIs")),
                grant_types=form["grant_types"], id_token_alg=form["id_token_alg"], min_acr=_min_acr(),
                scope=_with_api_scopes(DEFAULT_SCOPE, form["api_scopes"]), **_backchannel(form),
                **({} if form["public"] else _proof(form)),
                dpop_bound_access_tokens=form["dpop_bound_access_tokens"], **_request_rules(form),
                **_subjects(form))
        except RequestRulesNeedSignIn:
            # Said in the console's words (the form shows them to every portal it registers).
            raise BadForm(_("The rules for sign-in requests are for a portal that signs people "
                            "in: choose authorization_code under Grant types, or leave them off."
                            )) from None
    except DirectoryError as e:
        return _render_list(400, e, form)
    flash(_("%(name)s is registered.", name=new.client.name))
    return no_store(make_response(_render_portal(new.client, secret=new.secret)))


def _field_of(error: DirectoryError | None) -> str | None:
    """The field an error is about (shown under it), or None (shown above the form)."""
    return getattr(error, "field", None)


def _render_portal(client: Client, status: int = 200, error: DirectoryError | None = None,
                   form: dict | None = None, secret: str | None = None):
    """One portal's page; ``secret`` (just created or rotated) is shown on this answer only."""
    form = form or {"name": client.name, "redirect_uris": "\n".join(client.redirect_uris),
                    "post_logout_redirect_uris": "\n".join(client.post_logout_redirect_uris),
                    "min_acr": client.min_acr or "",
                    "backchannel_logout_uri": client.backchannel_logout_uri or "",
                    "backchannel_logout_session_required":
                        client.backchannel_logout_session_required,
                    "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
                    "api_scopes": [s for s in client.scope.split() if s in API_SCOPES],
                    "subject_type": client.subject_type or "public",
                    "sector_identifier_uri": client.sector_identifier_uri or "",
                    **_proof_form(client), **_request_rules_of(client)}
    return render_template("console/portal.html", client=client, form=form,
                           error=error and str(error), error_at=_field_of(error),
                           signs_people_in="authorization_code" in client.grant_types,
                           request_object_algs=CLIENT_SIGNING_ALGS,
                           max_uri_length=MAX_URI_LENGTH, api_scope_help=API_SCOPE_HELP,
                           takes_api_scopes=(not client.is_public
                                             and "client_credentials" in client.grant_types),
                           grant_help=GRANT_HELP, acr_choices=ACR_CHOICES, secret=secret), status


# A token's state in an administrator's words (registration_tokens.state).
TOKEN_STATES = {"active": _l("Active"), "expired": _l("Expired"), "used up": _l("Used up"),
                "revoked": _l("Revoked")}
MAX_TOKEN_FIELD = 20


@bp.post("/portals/registration-tokens")
def registration_token_create():
    form = {"name": request.form.get("name", "")[:200],
            "days": request.form.get("days", "").strip()[:MAX_TOKEN_FIELD],
            "uses": request.form.get("uses", "").strip()[:MAX_TOKEN_FIELD]}
    try:
        days = _whole_number(form["days"], _("Valid for (days)"), "days")
        uses = _whole_number(form["uses"], _("Number of portals"), "uses")
        issued = registration_tokens.create(db.session(), g.tenant, g.admin.email, form["name"],
                                            expires_in_days=days, uses=uses)
    except DirectoryError as e:
        return _render_list(400, token_error=e, token_form=form)
    flash(_("The registration token for %(name)s is created.", name=issued.row.name))
    return no_store(make_response(_render_list(issued=issued)))


def _whole_number(value: str, what: str, field: str) -> int | None:
    """A whole number typed in a field (blank: none)."""
    if not value:
        return None
    if not value.isdigit():
        raise BadForm(_("%(what)s must be a whole number, or empty", what=what), field=field)
    return int(value)


@bp.post("/portals/registration-tokens/<token_id>/revoke")
def registration_token_revoke(token_id):
    try:
        row = registration_tokens.revoke(db.session(), g.tenant, token_id, g.admin.email)
    except DirectoryError:
        abort(404, description=_("There is no such registration token in this organisation."))
    flash(_("The registration token for %(name)s is revoked: it registers no more portals. "
            "Portals it registered stay.", name=row.name))
    return redirect(url_for("console.portals", tenant=g.tenant.slug) + "#self-registration")


@bp.get("/portals/<client_id>")
def portal(client_id):
    return _render_portal(_portal(client_id))


@bp.post("/portals/<client_id>")
def portal_update(client_id):
    client = _portal(client_id)
    form = {"name": request.form.get("name", "")[:200],
            "redirect_uris": request.form.get("redirect_uris", "")[:MAX_URI_TEXT],
            "post_logout_redirect_uris":
                request.form.get("post_logout_redirect_uris", "")[:MAX_URI_TEXT],
            "min_acr": request.form.get("min_acr", ""), **_backchannel_form(),
            **_tokens_form(), "api_scopes": _api_scopes(), **_proof_form(), **_subject_form(),
            **_request_rules_form()}
    if "subject_type" not in request.form:  # a service's page has no such field: unchanged
        form.update(subject_type=client.subject_type or "public",
                    sector_identifier_uri=client.sector_identifier_uri or "")
    takes = not client.is_public and "client_credentials" in client.grant_types
    secret = None
    try:
        proof = _proof(form) if not client.is_public else {}  # checked before anything changes
        redirect_uris = _uris("redirect_uris", _("redirect URIs"))
        try:
            admin.update_client(
                db.session(), g.tenant, client.client_id, g.admin.email, name=form["name"],
                redirect_uris=redirect_uris,
                post_logout_redirect_uris=_uris("post_logout_redirect_uris",
                                                _("post-logout redirect URIs")),
                min_acr=_min_acr(), **_backchannel(form), **_subjects(form),
                scope=_with_api_scopes(client.scope, form["api_scopes"]) if takes else None,
                dpop_bound_access_tokens=form["dpop_bound_access_tokens"],
                **(_request_rules(form) if "authorization_code" in client.grant_types
                   else {}),
                confirm_new_subjects=request.form.get("confirm_subject_change") == "1")
        except admin.NewSubjects:
            raise BadForm(_("Changing what the portal learns of who signs in gives every person "
                            "a new id there: tick the box to confirm."),
                          field="confirm_subject_change") from None
        keyed = client.token_endpoint_auth_method == admin.KEY_METHOD
        if proof:
            secret = admin.set_client_credentials(db.session(), g.tenant, client.client_id,
                                                  g.admin.email, **proof)
        elif keyed and form["proof"] == "secret":  # back to a secret: a new one, shown once
            secret = admin.set_client_credentials(db.session(), g.tenant, client.client_id,
                                                  g.admin.email, auth_method="client_secret_basic")
    except DirectoryError as e:  # update_client checks everything before it changes anything
        return _render_portal(client, 400, e, form)
    flash(_("%(name)s is saved.", name=client.name))
    if secret:
        flash(_("%(name)s now proves itself with a secret: copy it now.", name=client.name))
        return no_store(make_response(_render_portal(client, secret=secret)))
    return redirect(url_for("console.portal", tenant=g.tenant.slug, client_id=client.client_id))


@bp.post("/portals/<client_id>/rotate")
def portal_rotate(client_id):
    client = _portal(client_id)
    try:
        secret = admin.rotate_client_secret(db.session(), g.tenant, client.client_id, g.admin.email)
    except DirectoryError as e:
        flash(str(e))
        return redirect(url_for("console.portal", tenant=g.tenant.slug, client_id=client.client_id))
    flash(_("The secret of %(name)s is rotated: the old one no longer works.", name=client.name))
    return no_store(make_response(_render_portal(client, secret=secret)))


@bp.post("/portals/<client_id>/delete")
def portal_delete(client_id):
    client = _portal(client_id)
    name = admin.delete_client(db.session(), g.tenant, client.client_id, g.admin.email)
    flash(_("%(name)s is deleted: its sign-ins, codes and tokens no longer work.", name=name))
    return redirect(url_for("console.portals", tenant=g.tenant.slug))
