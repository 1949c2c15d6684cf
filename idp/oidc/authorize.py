"""The authorization endpoint's decisions (OIDC Core 3.1.2), before and after sign-in.

Order matters and follows RFC 6749 4.1.2.1: while the client or its redirect URI is unknown
we show an error page and never redirect; once both are known, every error goes back to the
client with ``state`` and ``iss`` (RFC 9207). Authlib validates the request itself; ``prompt``,
``max_age``, ``id_token_hint`` and ``login_hint`` are decided here, since Authlib leaves them
to us.

A request may come as a signed request object (``request``, RFC 9101: ``requested``) or be
pushed first and named by its ``request_uri`` (RFC 9126, ``idp.oidc.par``): ``start`` turns
either into the plain parameters the rest of the journey carries, once, so a sign-in that
goes on (its login transaction) never needs the request object or the request_uri again.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import current_app, flash, g, make_response, redirect, render_template, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp import i18n
from idp.journey import session as sso
from idp.clients import client_ref
from idp.journey import signin, transaction, verification
from idp.journey.outcomes import AskSetup, PasswordFirst
from idp.oidc import dpop, keys, pushed, request_object
from idp.oidc.oauth_client import query_client
from idp.oidc.subjects import for_client
from idp.oidc.tokens import InvalidToken, verify_id_token_hint
from idp.journey.facts import BadClaimsParameter, essential_acr
from idp.policy import Need
from idp.web import error_page, issuer, settings, tenant_path

MAX_PARAM_LENGTH = 4096
PROMPTS = {"none", "login", "consent", "select_account"}


@dataclass(frozen=True)
class ClientError(Exception):
    """An error to send back to the client's redirect URI."""

    error: str
    description: str


def single_valued(values: MultiDict) -> dict | str:
    """The request's parameters, or the reason they cannot be used (RFC 6749 3.1)."""
    params = {}
    for key in values:
        items = values.getlist(key)
        if len(items) > 1:
            return f"The parameter {key!r} was sent more than once."
        if len(items[0]) > MAX_PARAM_LENGTH:
            return f"The parameter {key!r} is too long."
        params[key] = items[0]
    return params


def client_redirect(redirect_uri: str, params: list[tuple[str, str]]):
    params = params + [("iss", issuer())]
    return redirect(add_params_to_uri(redirect_uri, params), code=302)


def error_redirect(redirect_uri: str, state: str | None, error: str, description: str):
    params = [("error", error), ("error_description", description)]
    if state:
        params.append(("state", state))
    return client_redirect(redirect_uri, params)


# What a person can do when the application's own request is wrong (its fault, not theirs).
_BACK_TO_THE_APPLICATION = _l("Go back to the application and try again. If it keeps happening, "
                              "contact the application's owner.")


def start(values: MultiDict):
    """A fresh request at the authorization endpoint."""
    params = single_valued(values)
    if isinstance(params, str):
        client = query_client(values.get("client_id"))
        uri = values.get("redirect_uri")
        if client and len(values.getlist("redirect_uri")) == 1 and client.check_redirect_uri(uri):
            return error_redirect(uri, values.get("state"), "invalid_request", params)
        return error_page(400, _("This sign-in link is broken"),
                          _("The application sent you here with a sign-in request we cannot "
                            "read."),
                          hint=_("Go back to the application and try again. If it keeps "
                                 "happening, tell the application's support."),
                          detail=params)
    client = query_client(params.get("client_id"))
    if client is None:
        return proceed(params, None)  # which says the application is unknown
    if "request_uri" in params:
        return _pushed(params, client)
    try:
        if client.row.require_par or g.tenant.protocol.require_par:
            raise ClientError("invalid_request", "This client must use pushed authorization "
                                                 "requests (RFC 9126): push the request to the "
                                                 "pushed_authorization_request_endpoint first.")
        params = requested(params, client)
    except ClientError as e:
        return _refuse(params, client, e)
    return proceed(params, None)


def requested(params: dict, client) -> dict:
    """The authorization request ``client`` makes with ``params``: the parameters of its
    signed request object when it sends one (only those, RFC 9101 6.3), else ``params``."""
    if "request" not in params:
        if client.row.require_signed_request_object:
            raise ClientError("invalid_request", "This client must send its authorization "
                                                 "request as a signed request object (the "
                                                 "request parameter, RFC 9101).")
        return params
    try:
        inner = request_object.parameters(client.row, params["request"], issuer())
    except request_object.BadRequestObject as e:
        raise ClientError("invalid_request_object", str(e)) from None
    return {**inner, "client_id": client.get_client_id()}


def _pushed(params: dict, client):
    """The request pushed earlier under ``request_uri`` (RFC 9126 4): the parameters sent
    beside it now are not used, and it is used once."""
    if not pushed.is_ours(params["request_uri"]):
        # We never fetch a request_uri from elsewhere (discovery says so).
        return _refuse(params, client, ClientError(
            "request_uri_not_supported", "Only a request_uri from our pushed authorization "
                                         "request endpoint is accepted."))
    try:
        found = pushed.take(g.tenant.id, params["request_uri"], client.get_client_id())
    except pushed.PushedRequestGone:
        # No redirect: nothing verified says where to (the request is what is missing).
        return error_page(400, _("This sign-in link has expired"),
                          _("The application prepared this sign-in for you, but such a link "
                            "works only once and only for a minute."),
                          hint=_("Go back to the application and try again."),
                          detail="request_uri unknown, used already or expired")
    if found.client_id != client.get_client_id():
        return error_page(400, _("This sign-in link is not allowed"),
                          _("The sign-in link was prepared for another application than the "
                            "one that sent you here, so we stopped here to keep you safe."),
                          hint=_BACK_TO_THE_APPLICATION,
                          detail="request_uri pushed by another client")
    return proceed(found.params, None)


def _refuse(params: dict, client, e: ClientError):
    """``e`` sent back to the client, if the redirect URI is its own; else a page says it."""
    redirect_uri = params.get("redirect_uri")
    if redirect_uri and client.check_redirect_uri(redirect_uri):
        return error_redirect(redirect_uri, params.get("state"), e.error, e.description)
    return error_page(400, _("This sign-in link is broken"),
                      _("The application sent you here with a sign-in request we cannot "
                        "accept."),
                      hint=_BACK_TO_THE_APPLICATION, detail=f"{e.error}: {e.description}")


def proceed(params: dict, tx: transaction.Transaction | None):
    """Run the request: validate, sign in if needed, consent if asked, then issue a code."""
    client = query_client(params.get("client_id"))
    if client is None:
        return error_page(400, _("Unknown application"),
                          _("The application that sent you here is not registered with this "
                            "organisation, so you cannot sign in to it here."),
                          hint=_BACK_TO_THE_APPLICATION,
                          detail="client_id not registered")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        return error_page(400, _("This sign-in link is not allowed"),
                          _("The application asked to send you to an address it has not "
                            "registered, so we stopped here to keep you safe."),
                          hint=_BACK_TO_THE_APPLICATION,
                          detail="redirect_uri not registered")
    state = params.get("state")
    server = current_app.extensions["idp.oauth"]
    session, user = sso.signed_in(g.tenant.id)
    if tx is not None and (tx.authenticated or tx.consented) and not bound_to(tx, session):
        # Signed in or consented in another session than this browser has now: none of it
        # counts for whoever is signed in at present, who is asked for everything afresh.
        transaction.finish(tx)
        tx = None
    try:
        prompts, grant = validated(params, user)
        if not (tx and tx.authenticated) and _needs_login(params, prompts, session, user):
            if "none" in prompts:
                raise ClientError("login_required", "The user must sign in again.")
            fresh = _reauthenticating(params, prompts, session)
            if tx is not None and fresh and not tx.reauthenticate:
                # A stored sign-in resumed (consent, an address to verify) whose session has
                # aged past max_age meanwhile: the new sign-in is a re-authentication too.
                tx.reauthenticate = True
                transaction.save(tx)
            try:
                # Nothing stored yet.
                tx = tx or transaction.pending(g.tenant.id, params, reauthenticate=fresh)
            except transaction.TooLarge:
                raise ClientError("invalid_request",
                                  "The authorization request is too large.") from None
            return redirect(url_for("login.login", tenant=g.tenant.slug, tx=tx.id))
        if not (tx and tx.authenticated):
            # Signed in already: the policy or the client may still want more (step-up).
            stepped = _step_up(params, prompts, session, user)
            if stepped is not None:
                return stepped
        if "consent" in prompts and not (tx and tx.consented):
            if tx is None:
                tx = transaction.begin(g.tenant.id, params)
                tx.sid = session.sid
                transaction.save(tx)
            else:
                transaction.save(tx)  # what was proved so far waits for the answer
            return redirect(url_for("login.consent", tenant=g.tenant.slug, tx=tx.id))
        if verification.needed_before_code(user):
            # The tenant issues no code before the address is verified: a link goes out, and
            # this authorization waits for it (resumed from the link in this browser).
            if "none" in prompts:
                raise ClientError("interaction_required", "The user must verify their email "
                                                          "address first.")
            if tx is None:
                tx = transaction.begin(g.tenant.id, params)
                tx.sid = session.sid
            transaction.save(tx)
            sent = verification.send_link(user)
            return verification_page(user, tx, sent)
    except ClientError as e:
        return error_redirect(redirect_uri, state, e.error, e.description)
    except OAuth2Error as e:
        return error_redirect(redirect_uri, state, e.error, e.get_error_description() or e.error)
    # The grant was validated above (get_consent_grant): issue its code without validating the
    # same request a second time, as server.create_authorization_response would.
    try:
        response = server.handle_response(*grant.create_authorization_response(grant.redirect_uri,
                                                                               user))
    except OAuth2Error as e:
        return error_redirect(redirect_uri, state, e.error, e.get_error_description() or e.error)
    grant.execute_hook("after_authorization_response", response)
    if tx is not None:
        transaction.finish(tx)
    if response.location and "iss=" not in response.location.split("?", 1)[-1]:
        response.location = add_params_to_uri(response.location, [("iss", issuer())])
    return response


def validated(params: dict, user, *, before_sign_in: bool = False):
    """The checks every authorization request passes, at /authorize and when pushed to /par
    (RFC 9126 2.1 validates a pushed request as an authorization request): ``prompt``,
    ``max_age`` and ``claims`` here, then Authlib's (response type, the redirect URI, scopes,
    PKCE). Its prompts and Authlib's grant, or ``ClientError`` / ``OAuth2Error``. A pushed
    request is checked ``before_sign_in``: whether ``prompt=none`` can be met is
    /authorize's question, later."""
    prompts = _prompts(params)
    _max_age(params)
    try:
        essential_acr(params)
    except BadClaimsParameter as e:
        raise ClientError("invalid_request", str(e)) from None
    if "dpop_jkt" in params and not dpop.is_thumbprint(params["dpop_jkt"]):
        raise ClientError("invalid_request", "dpop_jkt must be a JWK SHA-256 thumbprint "
                                             "(RFC 9449 10).")
    if user is None and "none" in prompts and not before_sign_in:
        raise ClientError("login_required", "The user is not signed in.")
    server = current_app.extensions["idp.oauth"]
    request = OAuth2Request("GET", issuer() + "/authorize")
    request.payload = BasicOAuth2Payload(params)
    try:
        if before_sign_in:
            grant = server.get_authorization_grant(request)
            grant.validate_authorization_request()
        else:
            grant = server.get_consent_grant(request=request, end_user=user)
    except ValueError:
        # Authlib refuses to echo a control character in its own error description.
        raise ClientError("invalid_request", "A parameter has characters that are not allowed.") from None
    return prompts, grant


def verification_page(user, tx: transaction.Transaction, sent: bool):
    """The page that holds an authorization until the address is verified; it remembers the
    authorization in this browser, so the link followed here goes on with it."""
    response = make_response(render_template(
        "login/verify_needed.html", user=user, tx=tx, sent=sent,
        client=client_ref(g.tenant.id, tx.params.get("client_id"))), 403)
    response.set_cookie(verification.RESUME_COOKIE, tx.id, path=tenant_path(), httponly=True,
                        samesite="Lax", secure=settings().secure_cookies,
                        max_age=settings().login_transaction_ttl)
    return response


def bound_to(tx: transaction.Transaction, session) -> bool:
    """Does the sign-in ``tx`` belong to the SSO session the browser has now? A pending
    authorization is only ever finished for the user, session and level that completed it:
    a session's id changes with each sign-in and step-up, so one id is all three."""
    return session is not None and tx.sid is not None and hmac.compare_digest(tx.sid, session.sid)


def _step_up(params: dict, prompts: set[str], session, user):
    """A response that starts a step-up, or None when the session already suffices."""
    decision = signin.step_up_needed(params, session, user)
    if decision is None:
        return None
    if decision.need is Need.REFUSE:
        raise ClientError(decision.error or "access_denied", decision.reason)
    if "none" in prompts:
        raise ClientError("interaction_required", "The user must complete another sign-in step.")
    outcome = signin.step_up(params, session, user, decision)
    if isinstance(outcome, PasswordFirst):
        # The session began with a passkey that cannot give what is asked now: a new sign-in,
        # the password first, the page saying why.
        flash(i18n.plain(outcome.message))  # a session keeps text, not what it was said in
        return redirect(url_for("login.login", tenant=g.tenant.slug, tx=outcome.tx.id))
    page = "login.setup" if isinstance(outcome, AskSetup) else "login.second_factor"
    return redirect(url_for(page, tenant=g.tenant.slug, tx=outcome.tx.id))


def _prompts(params: dict) -> set[str]:
    prompts = set(params.get("prompt", "").split())
    if "none" in prompts and len(prompts) > 1:
        raise ClientError("invalid_request", "prompt=none cannot be combined with other values.")
    return prompts


def _max_age(params: dict) -> int | None:
    if "max_age" not in params:
        return None
    try:
        max_age = int(params["max_age"])
    except ValueError:
        raise ClientError("invalid_request", "max_age must be a number of seconds.") from None
    if max_age < 0:
        raise ClientError("invalid_request", "max_age must not be negative.")
    return max_age


def _too_old(params: dict, session) -> bool:
    """OIDC Core 3.1.2.1: authenticate again when the last one is older than ``max_age``."""
    max_age = _max_age(params)
    return max_age is not None and time.time() - session.auth_time > max_age


def _reauthenticating(params: dict, prompts: set[str], session) -> bool:
    """Does the relying party ask for a new authentication: ``prompt=login``, or a
    ``max_age`` this browser's session has exceeded? A browser with no session is signing in
    anyway: its ``max_age`` asks nothing more (a remembered browser still counts for it)."""
    return "login" in prompts or (session is not None and _too_old(params, session))


def _needs_login(params: dict, prompts: set[str], session, user) -> bool:
    if user is None or "login" in prompts:
        return True
    if _too_old(params, session):
        return True
    hint = params.get("id_token_hint")
    if hint:
        try:
            claims = verify_id_token_hint(keys.current(), hint, issuer=issuer(),
                                          client_id=params["client_id"])
        except InvalidToken:
            raise ClientError("invalid_request",
                              "id_token_hint is not an ID token we issued to this application.") from None
        client = client_ref(g.tenant.id, params["client_id"])
        if client is None or claims.get("sub") != for_client(user, client):
            return True  # someone else is signed in here: ask for the hinted user's sign-in
    return False
