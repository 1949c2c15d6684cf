"""Sign in with an upstream OpenID provider: here we are the relying party.

A tenant lists upstream providers (``idp upstream add``); the login page offers "Sign in with
{name}". The round trip is the authorization code flow of OIDC Core 3.1 with PKCE S256
(RFC 7636), ``state`` and ``nonce``, run by Authlib's OAuth 2 client; the ID token is checked
as OIDC Core 3.1.3.7 asks, with joserfc, against the upstream's published keys.

The pending request (state, nonce, code_verifier, upstream, our login transaction) waits in
Redis under ``upstream_request:<state>`` with a TTL and is spent once. It is bound to the
browser through our login transaction, which only the browser that started it can load.

What the upstream proved becomes the transaction's methods (``upstream_trust``, the one place
that decides how much of it we vouch for), and then the policy decides as for any other primary
sign-in (``idp.journey.signin.with_upstream``).

Discovery is checked before anything is sent (``endpoint_problem``): an https upstream keeps its
back channel on https and on its own host, unless the admin listed another host for it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass
from typing import Callable

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp import audit, db, store
from idp.addresses import normalise_email
from idp.cache import Snapshots
from idp.directory import EMAIL, find_user
from idp.guard import Limits, Locked
from idp.journey import signin, transaction
from idp.models import Tenant, TenantPolicyRow, Upstream, UpstreamIdentity, User
from idp.login.upstream_endpoints import endpoint_problem
from idp.journey.upstream_trust import progress_for, upstream_methods
from idp.login.views import respond
from idp.untrusted import UntrustedInput, parse_json_object
from idp.web import error_page, issuer, load_tenant_following, settings

log = logging.getLogger(__name__)

bp = Blueprint("federation", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant_following)

SCOPE = "openid email profile"
METADATA_TTL = 300  # discovery and JWKS are cached per process this long (seconds)
HTTP_TIMEOUT = (3.05, 10)  # (connect, read): a slow upstream must not hold a worker for long
LEEWAY = 60  # clock skew allowed on exp / iat / auth_time (RFC 7519 4.1.4 "small leeway")
MAX_UPSTREAM_JSON = 1024 * 1024  # discovery, a JWK set with certificate chains, a token response
# Asymmetric algorithms only: "none" and HMAC (keyed with the client secret) are never accepted.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


# --- Talking to the upstream --------------------------------------------------------------------


class UpstreamUnavailable(Exception):
    """The upstream could not be reached, or what it published is unusable."""


_cache: dict[str, tuple[float, object]] = {}


def _cached(key: str, fetch: Callable[[], object], refresh: bool = False):
    """A per-process cache entry (a few minutes), fetched on a miss or when told to refresh."""
    hit = _cache.get(key)
    if hit and not refresh and hit[0] > time.monotonic():
        return hit[1]
    value = fetch()
    _cache[key] = (time.monotonic() + METADATA_TTL, value)
    return value


def _get_json(url: str) -> dict:
    try:
        # Redirects are not followed: the address checked is the address asked (endpoint_problem).
        response = requests.get(url, timeout=HTTP_TIMEOUT, headers={"Accept": "application/json"},
                                allow_redirects=False)
        if response.is_redirect:
            raise UpstreamUnavailable(f"{url}: answered with a redirect, which is not followed")
        response.raise_for_status()
        return _upstream_json(response, "document")
    except (requests.RequestException, UntrustedInput) as e:
        raise UpstreamUnavailable(f"{url}: {e}") from None


def _upstream_json(response: requests.Response, what: str) -> dict:
    """An upstream's answer, read within the bounds of ``idp.untrusted``: a compromised or
    broken upstream gets an error page, never a 500."""
    return parse_json_object(response.content, what=what, max_length=MAX_UPSTREAM_JSON)


def _read_token_response(response: requests.Response) -> requests.Response:
    """Authlib's compliance hook: the token response is checked before Authlib parses it."""
    _upstream_json(response, "token response")
    return response


class UpstreamMisconfigured(UpstreamUnavailable):
    """The upstream answered, but what it published may not be used (the message says why)."""


def _discovery(upstream_issuer: str) -> dict:
    """The upstream's discovery document (OIDC Discovery 4), cached for a few minutes."""

    def fetch():
        doc = _get_json(f"{upstream_issuer}/.well-known/openid-configuration")
        # OIDC Discovery 4.3: the issuer in the document MUST be exactly the one we asked.
        if doc.get("issuer") != upstream_issuer:
            raise UpstreamMisconfigured(f"its discovery document names the issuer "
                                        f"{doc.get('issuer')!r}, not {upstream_issuer!r}")
        return doc

    return _cached(f"discovery:{upstream_issuer}", fetch)


def metadata(upstream_issuer: str, back_channel_hosts=()) -> dict:
    """The discovery document, once every endpoint we use passes ``endpoint_problem``; else
    UpstreamMisconfigured. Checked on every use: upstreams sharing an issuer may list hosts
    differently, and the cached document may be newer than the upstream's last check."""
    doc = _discovery(upstream_issuer)
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        if name == "userinfo_endpoint" and name not in doc:
            continue
        problem = endpoint_problem(upstream_issuer, name, doc.get(name), back_channel_hosts)
        if problem:
            raise UpstreamMisconfigured(problem)
    return doc


def upstream_metadata(upstream: Upstream) -> dict:
    return metadata(upstream.issuer, tuple(upstream.back_channel_hosts or ()))


def signing_keys(jwks_uri: str, refresh: bool = False) -> KeySet:
    def fetch():
        try:
            return KeySet.import_key_set(_get_json(jwks_uri))
        except (JoseError, ValueError, KeyError, TypeError) as e:
            raise UpstreamUnavailable(f"{jwks_uri}: not a usable JWK set ({e})") from None

    return _cached(f"jwks:{jwks_uri}", fetch, refresh=refresh)


def _oauth_client(upstream: Upstream, doc: dict) -> OAuth2Session:
    secret = current_app.extensions["idp.secretbox"].decrypt(upstream.client_secret_sealed)
    methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    auth_method = "client_secret_post" if "client_secret_basic" not in methods and \
        "client_secret_post" in methods else "client_secret_basic"
    session = OAuth2Session(upstream.client_id, secret, scope=SCOPE,
                            redirect_uri=callback_url(upstream), code_challenge_method="S256",
                            token_endpoint_auth_method=auth_method, default_timeout=HTTP_TIMEOUT)
    session.register_compliance_hook("access_token_response", _read_token_response)
    return session


def callback_url(upstream: Upstream) -> str:
    """Where the upstream sends the browser back; ``idp upstream add`` prints the same URL."""
    return f"{issuer()}/login/upstream/{upstream.slug}/callback"


# --- The ID token (OIDC Core 3.1.3.7) ----------------------------------------------------------


class UntrustedToken(ValueError):
    """The upstream's ID token failed a check; the message says which, for logs and the page."""


def _half_hash(value: str, alg: str) -> str:
    """``at_hash`` (OIDC Core 3.1.3.6): the left half of the hash that matches the JWS alg."""
    digest = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}[alg[-3:]]
    raw = digest(value.encode()).digest()
    return base64.urlsafe_b64encode(raw[: len(raw) // 2]).rstrip(b"=").decode()


def validate_id_token(id_token, *, issuer: str, client_id: str, nonce: str,
                      keys: KeySet | Callable[[bool], KeySet], algorithms=ALGORITHMS,
                      access_token: str | None = None, max_age: int | None = None,
                      now: int | None = None) -> dict:
    """The ID token's claims, once every check of OIDC Core 3.1.3.7 passed; else UntrustedToken.

    ``keys`` is the upstream's JWK set, or a function ``keys(refresh)`` that fetches it (asked
    again once, with ``refresh=True``, when the token names a key id we do not have: the
    upstream may have rotated its keys since we cached them).
    """
    if not isinstance(id_token, str) or id_token.count(".") != 2 or len(id_token) > 16384:
        raise UntrustedToken("the ID token is not a signed JWT")
    try:
        header = jws.extract_compact(id_token.encode()).protected
    except (JoseError, ValueError, UnicodeError):
        raise UntrustedToken("the ID token is malformed") from None
    alg = header.get("alg") if isinstance(header, dict) else None
    # 3.1.3.7 step 7: the alg is one we expect; never "none", never a MAC (RFC 8725 3.1).
    if alg not in algorithms or alg not in ALGORITHMS:
        raise UntrustedToken(f"the ID token is signed with {alg!r}, which is not accepted")
    kid = header.get("kid")
    key = _pick_key(keys(False) if callable(keys) else keys, alg, kid)
    if key is None and callable(keys):
        key = _pick_key(keys(True), alg, kid)
    if key is None:
        raise UntrustedToken("the ID token is not signed by a key the upstream publishes")
    # Step 6: the signature, with the upstream's key.
    try:
        claims = dict(jwt.decode(id_token, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError):
        raise UntrustedToken("the ID token's signature is not valid") from None
    # Steps 2, 3, 9, 10, 11: iss exactly, our client id among the audiences, exp, iat, nonce.
    registry = jwt.JWTClaimsRegistry(
        now=now, leeway=LEEWAY,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as e:
        raise UntrustedToken(f"the ID token's claims do not check out ({e})") from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    # Steps 3-5: other audiences are only acceptable when we are the authorized party.
    if claims.get("azp", client_id) != client_id or (len(audiences) > 1 and "azp" not in claims):
        raise UntrustedToken("the ID token was issued to another party (azp)")
    if not isinstance(claims["sub"], str) or not 0 < len(claims["sub"]) <= 255:
        raise UntrustedToken("the ID token's subject is not usable")
    # at_hash (3.1.3.8, 3.2.2.9): when present it binds the ID token to this access token.
    if "at_hash" in claims and access_token and alg != "EdDSA":
        if claims["at_hash"] != _half_hash(access_token, alg):
            raise UntrustedToken("the ID token does not belong to this access token (at_hash)")
    # Step 13: we asked for a recent sign-in (max_age), so auth_time must show one.
    if max_age is not None:
        auth_time = claims.get("auth_time")
        if not isinstance(auth_time, (int, float)) or isinstance(auth_time, bool) or \
                auth_time + max_age + LEEWAY < (now if now is not None else time.time()):
            raise UntrustedToken("the upstream did not sign the user in recently enough (auth_time)")
    return claims


# --- Userinfo (OIDC Core 5.3) -------------------------------------------------------------------

# What we read about the person; never sub, amr or acr, which only the ID token may say.
PROFILE_CLAIMS = ("email", "email_verified", "name", "given_name", "family_name")


def with_userinfo(claims: dict, doc: dict, access_token: str | None, *, issuer: str,
                  client_id: str, keys: Callable[[bool], KeySet]) -> dict:
    """The ID token's claims, completed from the userinfo endpoint when they lack the email.

    With the code flow, OIDC Core 5.4 lets a provider keep the ``email`` and ``profile`` scopes'
    claims out of the ID token and serve them at userinfo (panva's oidc-provider does, as do
    many corporate ones). The answer is about the ID token's subject or it is not used (5.3.2);
    an address from the ID token gets only its ``email_verified`` from userinfo, and only when
    both name the same address.
    """
    if "email" in claims and "email_verified" in claims:
        return claims
    endpoint = doc.get("userinfo_endpoint")
    if not endpoint or not access_token:
        return claims
    info = _userinfo(endpoint, access_token, issuer=issuer, client_id=client_id, keys=keys)
    if info.get("sub") != claims["sub"]:
        raise UntrustedToken("the userinfo answer is about someone else (sub)")
    merged = dict(claims)
    if "email" not in claims:
        for name in ("email", "email_verified"):
            if name in info:
                merged[name] = info[name]
    elif info.get("email") == claims["email"] and "email_verified" in info:
        merged["email_verified"] = info["email_verified"]
    for name in PROFILE_CLAIMS[2:]:
        if name not in merged and name in info:
            merged[name] = info[name]
    return merged


def _userinfo(endpoint: str, access_token: str, *, issuer: str, client_id: str,
              keys: Callable[[bool], KeySet]) -> dict:
    """The userinfo answer (JSON, or a JWT signed by the upstream, OIDC Core 5.3.2)."""
    try:
        response = requests.get(endpoint, timeout=HTTP_TIMEOUT, allow_redirects=False,
                                headers={"Authorization": f"Bearer {access_token}",
                                         "Accept": "application/json, application/jwt"})
        if response.is_redirect:
            raise UpstreamUnavailable(f"{endpoint}: answered with a redirect, which is not followed")
        response.raise_for_status()
    except requests.RequestException as e:
        raise UpstreamUnavailable(f"{endpoint}: {e}") from None
    if response.headers.get("Content-Type", "").split(";")[0].strip() != "application/jwt":
        try:
            return _upstream_json(response, "userinfo answer")
        except UntrustedInput as e:
            raise UpstreamUnavailable(f"{endpoint}: {e}") from None
    signed = response.text.strip()
    try:
        header = jws.extract_compact(signed.encode()).protected
        alg = header.get("alg")
        key = _pick_key(keys(False), alg, header.get("kid")) if alg in ALGORITHMS else None
        if key is None:
            raise UntrustedToken("the userinfo answer is not signed by a key the upstream "
                                 "publishes")
        info = dict(jwt.decode(signed, key, algorithms=[alg]).claims)
    except (JoseError, ValueError, TypeError, UnicodeError, AttributeError):
        raise UntrustedToken("the signed userinfo answer is not valid") from None
    audiences = info.get("aud") if isinstance(info.get("aud"), list) else [info.get("aud")]
    if info.get("iss") != issuer or client_id not in audiences:
        raise UntrustedToken("the signed userinfo answer was not issued to us by the upstream")
    return info


def _pick_key(keyset: KeySet, alg: str, kid):
    wanted_type = KEY_TYPES.get(alg[:2])
    candidates = [k for k in keyset.keys
                  if k.key_type == wanted_type and k.get("use", "sig") == "sig"
                  and k.get("alg", alg) == alg]
    if kid is not None:
        candidates = [k for k in candidates if k.kid == kid]
    # Without a kid, only an unambiguous key will do (OIDC Core 10.1).
    return candidates[0] if len(candidates) == 1 else None


# --- Which local user ---------------------------------------------------------------------------


class NoAccount(Exception):
    """The upstream sign-in maps to no account here, and none may be created."""

    def __init__(self, title: str, message: str, why: str = ""):
        super().__init__(message)
        self.title = title
        self.message = message
        self.why = why  # for the audit log: the person sees the same page whatever the cause


def _email(claims: dict) -> str | None:
    value = claims.get("email")
    if not isinstance(value, str):
        return None
    value = normalise_email(value)
    return value if EMAIL.fullmatch(value) and len(value) <= 320 else None


def _email_verified(claims: dict) -> bool:
    # OIDC Core 5.1 says boolean; some providers (e.g. Amazon Cognito) send the string "true".
    return claims.get("email_verified") in (True, "true")


def email_doubt(upstream: Upstream, email: str | None, claims: dict) -> str | None:
    """Why this upstream's word does not make ``email`` this person's, or None when it does:
    an address in one of its domains (any, if it lists none) that it says it verified (OIDC
    Core 5.1, 5.7), or in the domains the admin marked it authoritative for (it runs those
    mailboxes). The reason is for the audit log."""
    if not email:
        return "the upstream sent no usable email address"
    if upstream.email_domains and email.rsplit("@", 1)[1] not in upstream.email_domains:
        return "the email address is outside the upstream's domains"
    if _email_verified(claims) or (upstream.email_authoritative and upstream.email_domains):
        return None
    return "the upstream did not say it verified the email address"


def creates_accounts(upstream: Upstream, policy_row: TenantPolicyRow | None) -> bool:
    """Just-in-time provisioning: the upstream's own switch, else the tenant's."""
    if upstream.jit is not None:
        return upstream.jit
    return bool(policy_row and policy_row.federation_jit)


def _display_name(claims: dict, email: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get(k) for k in ("given_name", "family_name")]
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return (name.strip() or email.split("@")[0])[:200]


def resolve_user(session: Session, tenant: Tenant, upstream: Upstream, claims: dict,
                 jit: bool) -> tuple[User, str]:
    """(the local user, how: "linked" | "matched" | "provisioned"), or NoAccount.

    1. a link (upstream, sub) names the user;
    2. else an email the upstream vouches for (``email_doubt``) matches an account here, and
       the link is made;
    3. else, with just-in-time provisioning on, a vouched-for email gets a passwordless member,
       linked. An address nobody vouched for is never put on an account: its real owner would
       find it taken, or reset its way into it.
    """
    subject = claims["sub"]
    link = session.scalar(select(UpstreamIdentity).where(
        UpstreamIdentity.upstream_id == upstream.id, UpstreamIdentity.subject == subject))
    if link is not None:
        user = session.get(User, link.user_id)
        if user is not None and user.tenant_id == tenant.id:
            return user, "linked"
    email = _email(claims)
    doubt = email_doubt(upstream, email, claims)

    def no_account(why: str) -> NoAccount:
        return NoAccount(
            "No account here",
            f"Your {upstream.name} sign-in worked, but it is not connected to an account in "
            f"{tenant.name}. Ask your administrator for access.", why)

    existing = find_user(session, tenant, email) if email else None
    if existing is not None:
        if doubt:
            # An unverified (or out-of-domain) address proves nothing about who owns it here.
            raise no_account(doubt)
        other = session.scalar(select(UpstreamIdentity.subject).where(
            UpstreamIdentity.upstream_id == upstream.id, UpstreamIdentity.user_id == existing.id))
        if other is not None:
            # The address moved to another upstream account (a recycled mailbox?): never
            # hand the local account to it silently.
            raise NoAccount(
                "Account already connected",
                f"The account for {email} is connected to a different {upstream.name} account. "
                f"Ask your administrator to check it.")
        _link(session, upstream, subject, existing)
        how = "verified_email" if _email_verified(claims) else "authoritative_domain"
        audit.record(session, tenant.id, "upstream.identity_linked", user_id=existing.id,
                     actor=f"upstream:{upstream.slug}", upstream=upstream.slug, how=how)
        return existing, "matched"
    # JIT puts the address on a new account: only one the upstream vouches for, or any account
    # of the upstream would get in, and under someone else's address.
    if not jit:
        raise no_account("no account has that email address, and accounts are not created on "
                         "first sign-in")
    if doubt:
        raise no_account(doubt)
    user = User(tenant_id=tenant.id, email=email, name=_display_name(claims, email),
                role="member", password_hash=None)
    session.add(user)
    session.flush()
    _link(session, upstream, subject, user)
    audit.record(session, tenant.id, "user.provisioned", user_id=user.id,
                 actor=f"upstream:{upstream.slug}", upstream=upstream.slug, role="member")
    return user, "provisioned"


def _link(session: Session, upstream: Upstream, subject: str, user: User) -> None:
    session.add(UpstreamIdentity(upstream_id=upstream.id, user_id=user.id, subject=subject))
    session.flush()


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


def _problem(status: int, title: str, message: str, tx: transaction.Transaction | None = None):
    """A page that explains, with a way back to the sign-in when the transaction lives on."""
    back = url_for("login.login", tenant=g.tenant.slug, tx=tx.id) if tx else None
    return render_template("login/upstream_error.html", title=title, message=message,
                           back=back), status


def _expired():
    return error_page(400, "This sign-in has expired",
                      "Go back to the application and start signing in again.")


def _failed(upstream: Upstream, reason: str, **data) -> None:
    audit.record(db.session(), g.tenant.id, "upstream.sign_in_failed",
                 actor=f"upstream:{upstream.slug}", upstream=upstream.slug, reason=reason[:300],
                 **data)


def _misconfigured(upstream: Upstream, e: UpstreamMisconfigured, tx):
    """Nothing was sent to the upstream's back channel; the admin must look at its settings."""
    log.warning("upstream %s refused: %s", upstream.slug, e)
    _failed(upstream, f"discovery refused: {e}")
    return _problem(502, f"{upstream.name} is not available",
                    f"Signing in with {upstream.name} is not set up correctly here. Sign in "
                    f"another way, and tell your administrator.", tx)


UPSTREAM_ERRORS = {
    "access_denied": "You cancelled signing in with {name}, or {name} did not allow it.",
    "login_required": "{name} needs you to sign in there first.",
    "interaction_required": "{name} needs you to complete a step there first.",
    "temporarily_unavailable": "{name} is busy right now. Try again in a moment.",
    "server_error": "{name} ran into a problem. Try again in a moment.",
}


@bp.post("/login/upstream/<upstream>")
def start(upstream):
    """The "Sign in with {name}" button: off to the upstream's authorization endpoint."""
    row = _upstream(upstream)
    if row is None:
        return error_page(404, "No such sign-in option",
                          "This organisation does not offer that way of signing in.")
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
        client = _oauth_client(row, doc)
    except UpstreamMisconfigured as e:
        return _misconfigured(row, e, tx)
    except (UpstreamUnavailable, ValueError) as e:
        log.warning("upstream %s unusable: %s", row.slug, e)
        _failed(row, f"unavailable: {e}")
        return _problem(502, f"{row.name} is not available",
                        f"We could not reach {row.name} to sign you in. Try again in a few "
                        f"minutes, or sign in another way.", tx)
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
        return error_page(429, "Too many sign-ins",
                          "There were too many sign-ins from your network. Wait a few minutes "
                          "and try again.")
    pending = Pending(g.tenant.id, row.id, tx.id, tx.browser, nonce, verifier, max_age)
    store.get().set(_pending_key(state), json.dumps(asdict(pending)),
                    ex=settings().login_transaction_ttl)
    url, _ = client.create_authorization_url(doc["authorization_endpoint"], state=state,
                                             nonce=nonce, code_verifier=verifier, **extra)
    return redirect(url, code=302)


@bp.get("/login/upstream/<upstream>/callback")
def callback(upstream):
    """The upstream sends the browser back here with a code (or an error)."""
    row = _upstream(upstream)
    if row is None:
        return error_page(404, "No such sign-in option",
                          "This organisation does not offer that way of signing in.")
    state = request.args.get("state", "")
    key = _pending_key(state)
    raw = store.get().get(key) if 20 <= len(state) <= 128 else None
    if not raw:
        return error_page(400, "This sign-in cannot continue",
                          f"The answer from {row.name} was already used, has expired, or was not "
                          f"meant for this page. Start signing in again.")
    pending = Pending(**json.loads(raw))
    if pending.tenant_id != g.tenant.id or pending.upstream_id != row.id:
        return error_page(400, "This sign-in cannot continue",
                          f"The answer from {row.name} does not belong to this sign-in.")
    try:
        # Our login transaction only loads in the browser that started it.
        tx = transaction.load(g.tenant.id, pending.tx)
    except transaction.TransactionGone:
        return _expired()
    if tx.authenticated or tx.browser != pending.browser:
        return _expired()
    # Spend the request: of two callbacks with this state, only the one that deletes it goes on.
    if not store.get().delete(key):
        return error_page(400, "This sign-in cannot continue",
                          f"The answer from {row.name} was already used. Start signing in again.")
    try:
        doc = upstream_metadata(row)
    except UpstreamMisconfigured as e:
        return _misconfigured(row, e, tx)
    except UpstreamUnavailable as e:
        _failed(row, f"unavailable: {e}")
        return _problem(502, f"{row.name} is not available",
                        f"We could not reach {row.name} to finish signing you in. Try again in a "
                        f"few minutes.", tx)
    # RFC 9207 2.4: the response names its issuer; it must be the one we sent the user to, and
    # an upstream that promises to name it must do so (mix-up attack defence).
    answered_by = request.args.get("iss")
    if answered_by != row.issuer and (answered_by is not None or
                                      doc.get("authorization_response_iss_parameter_supported")):
        _failed(row, "iss mismatch in the authorization response")
        return _problem(400, "This sign-in cannot continue",
                        f"The answer did not come from {row.name}.", tx)
    if request.args.get("error"):
        error = request.args["error"][:64]
        _failed(row, f"upstream error: {error}")
        text = UPSTREAM_ERRORS.get(error, "{name} could not sign you in.").format(name=row.name)
        return _problem(400, f"Not signed in with {row.name}", f"{text} (error: {error})", tx)
    code = request.args.get("code", "")
    if not code or len(code) > 2048:
        _failed(row, "no code in the authorization response")
        return _problem(400, "This sign-in cannot continue",
                        f"{row.name} did not send the expected answer.", tx)

    # The code for tokens, over the back channel, with the PKCE verifier (RFC 7636 4.5).
    try:
        client = _oauth_client(row, doc)
        token = client.fetch_token(doc["token_endpoint"], code=code,
                                   code_verifier=pending.verifier, allow_redirects=False)
    except OAuthError as e:
        _failed(row, f"token endpoint: {e.error}")
        return _problem(400, f"Not signed in with {row.name}",
                        f"{row.name} did not confirm the sign-in. Start again.", tx)
    except (requests.RequestException, ValueError) as e:
        log.warning("upstream %s token endpoint: %s", row.slug, e)
        _failed(row, f"token endpoint unavailable: {e}")
        return _problem(502, f"{row.name} is not available",
                        f"We could not reach {row.name} to finish signing you in. Try again in a "
                        f"few minutes.", tx)

    def keys(refresh: bool) -> KeySet:
        return signing_keys(doc["jwks_uri"], refresh)

    try:
        algorithms = [a for a in doc.get("id_token_signing_alg_values_supported") or ["RS256"]
                      if a in ALGORITHMS]
        claims = validate_id_token(
            token.get("id_token"), issuer=row.issuer, client_id=row.client_id,
            nonce=pending.nonce, keys=keys, algorithms=algorithms,
            access_token=token.get("access_token"), max_age=pending.max_age)
        claims = with_userinfo(claims, doc, token.get("access_token"), issuer=row.issuer,
                               client_id=row.client_id, keys=keys)
    except UntrustedToken as e:
        log.warning("upstream %s sign-in refused: %s", row.slug, e)
        _failed(row, f"ID token or userinfo refused: {e}")
        return _problem(400, f"Could not verify your {row.name} sign-in",
                        f"The sign-in from {row.name} could not be verified ({e}), so you are "
                        f"not signed in. Start again; if it keeps happening, tell your "
                        f"administrator.", tx)
    except UpstreamUnavailable as e:
        log.warning("upstream %s unavailable after the code: %s", row.slug, e)
        _failed(row, f"keys or userinfo unavailable: {e}")
        return _problem(502, f"{row.name} is not available",
                        f"We could not reach {row.name} to finish signing you in. Try again in a "
                        f"few minutes.", tx)

    session = db.session()
    jit = creates_accounts(row, session.get(TenantPolicyRow, g.tenant.id))
    try:
        user, how = resolve_user(session, g.tenant, row, claims, jit)
    except NoAccount as e:
        _failed(row, e.title, subject=claims["sub"][:255], why=e.why)
        return error_page(403, e.title, e.message)
    except IntegrityError:
        # A second sign-in of the same new person raced this one and created the account
        # first; nothing of ours was written yet (audit events are added again below).
        session.rollback()
        link = session.scalar(select(UpstreamIdentity).where(
            UpstreamIdentity.upstream_id == row.id, UpstreamIdentity.subject == claims["sub"]))
        user = session.get(User, link.user_id) if link else None
        if user is None or user.tenant_id != g.tenant.id:
            return _problem(409, "Please try again", "Your account was being set up at the same "
                            "time by another sign-in. Start again.", tx)
        how = "linked"

    proof = progress_for(row.trust_mfa, row.trusted_acrs or [], claims)
    audit.record(session, g.tenant.id, "user.signed_in_upstream", user_id=user.id,
                 actor=user.email, upstream=row.slug, how=how, trusted=proof.primary.value,
                 upstream_amr=upstream_methods(claims))
    # A fresh, full authentication: never a step-up of whoever was signed in before.
    return respond(signin.with_upstream(tx, user, proof.methods, proof.primary, row.slug))
