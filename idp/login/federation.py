"""Sign in with an upstream OpenID provider: the hosted pages that start it and take it back.

A tenant lists upstream providers (``idp upstream add``); the login page offers "Sign in with
{name}" (``upstream_choices``). ``start`` sends the browser to the upstream with PKCE S256,
``state`` and ``nonce``; ``callback`` takes its answer, has the code exchanged and the ID token
checked (``idp.federation.client``), finds the local account (``idp.federation.linking``), and
hands the sign-in to the journey.

The pending request (state, nonce, code_verifier, upstream, our login transaction) waits in
Redis under ``upstream_request:<state>`` with a TTL and is spent once. It is bound to the
browser through our login transaction, which only the browser that started it can load.

What the upstream proved becomes the transaction's methods (``upstream_trust``, the one place
that decides how much of it we vouch for), and then the policy decides as for any other primary
sign-in (``idp.journey.signin.with_upstream``).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass

import requests
from authlib.integrations.base_client.errors import OAuthError
from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask_babel import force_locale, gettext as _, lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from idp import audit, db, store, user_status
from idp.cache import Snapshots
from idp.federation.client import (UntrustedToken, UpstreamMisconfigured, UpstreamUnavailable,
                                   exchange_code, oauth_client, upstream_metadata,
                                   verified_claims)
from idp.federation.linking import NoAccount, creates_accounts, linked_user, resolve_user
from idp.guard import Limits, Locked
from idp.journey import signin, transaction
from idp.journey.upstream_trust import progress_for, upstream_methods
from idp.login.views import respond
from idp.models import TenantPolicyRow, Upstream
from idp.web import error_page, expired_page, load_tenant_following, settings

log = logging.getLogger(__name__)

bp = Blueprint("federation", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant_following)


# --- The pending request ------------------------------------------------------------------------


def _pending_key(state: str) -> str:
    return f"upstream_request:{state}"


@dataclass(frozen=True)
class Pending:
    tenant_id: int
    upstream_id: int
    tx: str
    browser: str
    nonce: str
    verifier: str
    max_age: int | None = None


# --- Pages -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpstreamChoice:
    slug: str
    name: str


UPSTREAM_CHOICES: Snapshots[int, tuple[UpstreamChoice, ...]] = Snapshots("upstream-choices")


@bp.app_template_global()
def upstream_choices() -> tuple[UpstreamChoice, ...]:
    """The tenant's upstreams, for the login page's "Sign in with {name}" buttons (cached per
    worker like tenants and clients: every login page shows them)."""
    if "tenant" not in g:
        return ()
    tenant_id = g.tenant.id
    return UPSTREAM_CHOICES.get(tenant_id, lambda: tuple(
        UpstreamChoice(slug, name) for slug, name in db.session().execute(
            select(Upstream.slug, Upstream.name).where(Upstream.tenant_id == tenant_id)
            .order_by(Upstream.name))))


def _upstream(slug: str) -> Upstream | None:
    return db.session().scalar(select(Upstream).where(
        Upstream.tenant_id == g.tenant.id, Upstream.slug == slug))


def _problem(status: int, title: str, message: str, tx: transaction.Transaction | None = None,
             detail: str | None = None):
    """A page that explains, with a way back to the sign-in when the transaction lives on."""
    back = url_for("login.login", tenant=g.tenant.slug, tx=tx.id) if tx else None
    return render_template("login/upstream_error.html", title=title, message=message,
                           back=back, detail=detail), status


def _expired():
    return expired_page()


def _failed(upstream: Upstream, reason: str, **data) -> None:
    audit.record(db.session(), g.tenant.id, "upstream.sign_in_failed",
                 actor=f"upstream:{upstream.slug}", upstream=upstream.slug, reason=reason[:300],
                 **data)


def _misconfigured(upstream: Upstream, e: UpstreamMisconfigured, tx):
    """Nothing was sent to the upstream's back channel; the admin must look at its settings."""
    log.warning("upstream %s refused: %s", upstream.slug, e)
    _failed(upstream, f"discovery refused: {e}")
    return _problem(502, _("%(provider)s is not available", provider=upstream.name),
                    _("Signing in with %(provider)s is not set up correctly here. Sign in "
                      "another way, and tell your administrator.", provider=upstream.name), tx)


UPSTREAM_ERRORS = {
    "access_denied": _l("You cancelled signing in with %(provider)s, or %(provider)s did not allow it."),
    "login_required": _l("%(provider)s needs you to sign in there first."),
    "interaction_required": _l("%(provider)s needs you to complete a step there first."),
    "temporarily_unavailable": _l("%(provider)s is busy right now. Try again in a moment."),
    "server_error": _l("%(provider)s ran into a problem. Try again in a moment."),
}
UPSTREAM_FAILED = _l("%(provider)s could not sign you in.")


@bp.post("/login/upstream/<upstream>")
def start(upstream):
    """The "Sign in with {name}" button: off to the upstream's authorization endpoint."""
    row = _upstream(upstream)
    if row is None:
        return error_page(404, _("No such sign-in option"),
                          _("This organisation does not offer that way of signing in."))
    try:
        if request.form.get("tx"):
            tx = transaction.load(g.tenant.id, request.form["tx"])
        else:
            tx = transaction.pending(g.tenant.id, {},
                                     next_url=url_for("login.home", tenant=g.tenant.slug))
    except transaction.TransactionGone:
        return _expired()
    if tx.authenticated:
        return _expired()
    try:
        doc = upstream_metadata(row)
        client = oauth_client(row, doc)
    except UpstreamMisconfigured as e:
        return _misconfigured(row, e, tx)
    except (UpstreamUnavailable, ValueError) as e:
        log.warning("upstream %s unusable: %s", row.slug, e)
        _failed(row, f"unavailable: {e}")
        return _problem(502, _("%(provider)s is not available", provider=row.name),
                        _("We could not reach %(provider)s to sign you in. Try again in a few "
                          "minutes, or sign in another way.", provider=row.name), tx)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # RFC 7636 4.1: 43-128 characters
    extra = {}
    # A relying party that asked us for a fresh sign-in gets one upstream too (OIDC Core 3.1.2.1).
    prompts = set(tx.params.get("prompt", "").split())
    max_age = None
    if "max_age" in tx.params:
        try:
            max_age = max(int(tx.params["max_age"]), 0)
        except ValueError:
            max_age = None
    if "login" in prompts:
        # max_age=0 too: then the upstream MUST send auth_time, and we can check it (3.1.2.1).
        extra["prompt"] = "login"
        max_age = 0 if max_age is None else max_age
    if max_age is not None:
        extra["max_age"] = str(max_age)
    if tx.params.get("login_hint"):
        extra["login_hint"] = tx.params["login_hint"][:320]
    # The verifier and nonce must wait for the upstream's answer on the server, for anyone who
    # pressed the button: bounded per client address (like wrong passwords, ``flow.ip_guard``).
    limit = settings().upstream_starts_per_10_minutes
    starts = current_app.extensions["idp.guard"].with_limits(
        Limits(captcha_after=limit + 1, lock_after=limit, lock_seconds=10 * 60))
    try:
        starts.reserve(f"guard:upstream-starts:{request.remote_addr}")
    except Locked:
        return error_page(429, _("Too many sign-ins"),
                          _("There were too many sign-ins from your network. Wait a few minutes "
                            "and try again."))
    pending = Pending(g.tenant.id, row.id, tx.id, tx.browser, nonce, verifier, max_age)
    store.get().set(_pending_key(state), json.dumps(asdict(pending)),
                    ex=settings().login_transaction_ttl)
    url, _state = client.create_authorization_url(doc["authorization_endpoint"], state=state,
                                                  nonce=nonce, code_verifier=verifier, **extra)
    return redirect(url, code=302)


@bp.get("/login/upstream/<upstream>/callback")
def callback(upstream):
    """The upstream sends the browser back here with a code (or an error)."""
    row = _upstream(upstream)
    if row is None:
        return error_page(404, _("No such sign-in option"),
                          _("This organisation does not offer that way of signing in."))
    state = request.args.get("state", "")
    key = _pending_key(state)
    raw = store.get().get(key) if 20 <= len(state) <= 128 else None
    if not raw:
        return error_page(400, _("This sign-in cannot continue"),
                          _("The answer from %(provider)s was already used, has expired, or was "
                            "not meant for this page. Start signing in again.", provider=row.name))
    try:
        pending = Pending(**json.loads(raw))
    except TypeError:  # kept by another version of this code
        return _expired()
    if pending.tenant_id != g.tenant.id or pending.upstream_id != row.id:
        return error_page(400, _("This sign-in cannot continue"),
                          _("The answer from %(provider)s does not belong to this sign-in.",
                            provider=row.name))
    try:
        # Our login transaction only loads in the browser that started it.
        tx = transaction.load(g.tenant.id, pending.tx)
    except transaction.TransactionGone:
        return _expired()
    if tx.authenticated or tx.browser != pending.browser:
        return _expired()
    # Spend the request: of two callbacks with this state, only the one that deletes it goes on.
    if not store.get().delete(key):
        return error_page(400, _("This sign-in cannot continue"),
                          _("The answer from %(provider)s was already used. Start signing in "
                            "again.", provider=row.name))
    try:
        doc = upstream_metadata(row)
    except UpstreamMisconfigured as e:
        return _misconfigured(row, e, tx)
    except UpstreamUnavailable as e:
        _failed(row, f"unavailable: {e}")
        return _problem(502, _("%(provider)s is not available", provider=row.name),
                        _("We could not reach %(provider)s to finish signing you in. Try again "
                          "in a few minutes.", provider=row.name), tx)
    # RFC 9207 2.4: the response names its issuer; it must be the one we sent the user to, and
    # an upstream that promises to name it must do so (mix-up attack defence).
    answered_by = request.args.get("iss")
    if answered_by != row.issuer and (answered_by is not None or
                                      doc.get("authorization_response_iss_parameter_supported")):
        _failed(row, "iss mismatch in the authorization response")
        return _problem(400, _("This sign-in cannot continue"),
                        _("The answer did not come from %(provider)s.", provider=row.name), tx)
    if request.args.get("error"):
        error = request.args["error"][:64]
        _failed(row, f"upstream error: {error}")
        text = UPSTREAM_ERRORS.get(error, UPSTREAM_FAILED) % {"provider": row.name}
        return _problem(400, _("Not signed in with %(provider)s", provider=row.name), text, tx,
                        detail=error)
    code = request.args.get("code", "")
    if not code or len(code) > 2048:
        _failed(row, "no code in the authorization response")
        return _problem(400, _("This sign-in cannot continue"),
                        _("%(provider)s did not send the expected answer.", provider=row.name), tx)

    # The code for tokens, over the back channel, with the PKCE verifier (RFC 7636 4.5).
    try:
        token = exchange_code(row, doc, code, pending.verifier)
    except OAuthError as e:
        _failed(row, f"token endpoint: {e.error}")
        return _problem(400, _("Not signed in with %(provider)s", provider=row.name),
                        _("%(provider)s did not confirm the sign-in. Start again.",
                          provider=row.name), tx)
    except (requests.RequestException, ValueError) as e:
        log.warning("upstream %s token endpoint: %s", row.slug, e)
        _failed(row, f"token endpoint unavailable: {e}")
        return _problem(502, _("%(provider)s is not available", provider=row.name),
                        _("We could not reach %(provider)s to finish signing you in. Try again "
                          "in a few minutes.", provider=row.name), tx)

    try:
        claims = verified_claims(row, doc, token, nonce=pending.nonce, max_age=pending.max_age)
    except UntrustedToken as e:
        log.warning("upstream %s sign-in refused: %s", row.slug, e)
        _failed(row, f"ID token or userinfo refused: {e}")
        return _problem(400, _("Could not verify your %(provider)s sign-in", provider=row.name),
                        _("The sign-in from %(provider)s could not be verified, so you are not "
                          "signed in. Start again; if it keeps happening, tell your "
                          "administrator.", provider=row.name), tx, detail=str(e))
    except UpstreamUnavailable as e:
        log.warning("upstream %s unavailable after the code: %s", row.slug, e)
        _failed(row, f"keys or userinfo unavailable: {e}")
        return _problem(502, _("%(provider)s is not available", provider=row.name),
                        _("We could not reach %(provider)s to finish signing you in. Try again "
                          "in a few minutes.", provider=row.name), tx)

    session = db.session()
    jit = creates_accounts(row, session.get(TenantPolicyRow, g.tenant.id))
    try:
        user, how = resolve_user(session, g.tenant, row, claims, jit)
    except NoAccount as e:
        with force_locale("en"):  # the audit log is read in English
            reason = str(e.title)
        _failed(row, reason, subject=claims["sub"][:255], why=e.why)
        return error_page(403, e.title, e.message)
    except IntegrityError:
        # A second sign-in of the same new person raced this one and created the account
        # first; nothing of ours was written yet (audit events are added again below).
        session.rollback()
        user = linked_user(session, g.tenant, row, claims["sub"])
        if user is None:
            return _problem(409, _("Please try again"),
                            _("Your account was being set up at the same time by another "
                              "sign-in. Start again."), tx)
        how = "linked"

    proof = progress_for(row.trust_mfa, row.trusted_acrs or [], claims)
    if user_status.may_sign_in(user.status):  # else the journey refuses it, and audits that
        audit.record(session, g.tenant.id, "user.signed_in_upstream", user_id=user.id,
                     actor=user.email, upstream=row.slug, how=how, trusted=proof.primary.value,
                     upstream_amr=upstream_methods(claims))
    # A fresh, full authentication: never a step-up of whoever was signed in before.
    return respond(signin.with_upstream(tx, user, proof.methods, proof.primary, row.slug))
