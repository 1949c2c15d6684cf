"""The facts ``policy.decide()`` needs, read from the database and the authorization request.

Reading is all this module does; the decision is ``idp.policy``'s alone.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import mfa
from idp.clients import ClientRef
from idp.models import Authenticator, Client, User
from idp.policy import AdminState, Requirements, UserFacts
from idp.untrusted import UntrustedInput, parse_json_object


class BadClaimsParameter(ValueError):
    """The ``claims`` request parameter is not the JSON object OIDC Core 5.5 describes."""


def enrolled_types(db: Session, user: User,
                   authenticators: list[Authenticator] | None = None) -> frozenset[str]:
    """Factor types the user can answer now (a spent set of backup codes cannot); from
    ``authenticators`` when the request holds all of the user's already (its own rows, so
    what it changed counts), else read."""
    if authenticators is None:
        authenticators = db.scalars(select(Authenticator).where(Authenticator.user_id == user.id))
    return frozenset(auth.type for auth in authenticators if mfa.answerable(auth))


def user_facts(db: Session, user: User,
               authenticators: list[Authenticator] | None = None) -> UserFacts:
    return facts_of(user, enrolled_types(db, user, authenticators))


def facts_of(user: User, enrolled: frozenset[str], kinds=None) -> UserFacts:
    """A user's facts when the caller has read their answerable factor types already (the
    console reads a page of users' at once). They carry the kinds of factor the registry
    knows, which the policy reads the user's against (``kinds``: ``mfa.kinds()`` already
    asked, once for a page of users)."""
    return UserFacts(
        id=user.id, kinds=kinds if kinds is not None else mfa.kinds(), role=user.role, groups=frozenset(g.name for g in user.groups),
        admin_state=AdminState(user.mfa_admin_state), must_reenroll=user.mfa_must_reenroll,
        skips_used=user.mfa_skips_used, enrolled=enrolled,
    )


def essential_acr(params: dict) -> tuple[str, ...]:
    """The values of an essential ``acr`` claim in the ``claims`` parameter (OIDC Core 5.5.1.1)."""
    raw = params.get("claims")
    if not raw:
        return ()
    try:
        claims = parse_json_object(raw, what="claims parameter")
    except UntrustedInput as e:
        raise BadClaimsParameter(str(e)) from None
    request = claims.get("id_token")
    acr = request.get("acr") if isinstance(request, dict) else None
    if not isinstance(acr, dict) or not acr.get("essential"):
        return ()
    values = acr.get("values") or ([acr["value"]] if "value" in acr else [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values) or not values:
        raise BadClaimsParameter("An essential acr claim needs a value or a list of values.")
    return tuple(values)


def requirements(params: dict, client: ClientRef | Client | None,
                 reauthenticate: bool = False) -> Requirements:
    """What the request and its client ask for. ``reauthenticate``: /authorize found the
    browser's session older than the request's ``max_age``; ``prompt=login`` says the same
    from the request alone (OIDC Core 3.1.2.1)."""
    return Requirements(
        acr_values=tuple(params.get("acr_values", "").split()),
        essential_acr=essential_acr(params),
        client_min_acr=client.min_acr if client else None,
        fresh_authentication=reauthenticate or "login" in params.get("prompt", "").split(),
    )
