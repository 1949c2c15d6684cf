"""What every factor's ceremony shares: its context, its enrolled authenticators, its
state between pages, and the guard, audit and bookkeeping around a factor's own check."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from flask import current_app, g, request
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from idp import db, directory, lockout, metrics, mfa, store, tenant_policy
from idp.guard import CaptchaNeeded, Guard, Limits, Locked, account_key
from idp.mfa.base import Factor, FactorContext, NotNow, Proof, Step, WrongAnswer
from idp.models import Authenticator, User
from idp.models.base import utcnow
from idp.notify import outbox

CEREMONY_TTL = 15 * 60


def context(user: User, variant: str | None = None) -> FactorContext:
    settings = current_app.config["IDP"]
    return FactorContext(db=db.session(), store=store.get(), settings=settings,
                         box=current_app.extensions["idp.secretbox"], tenant=g.tenant, user=user,
                         variant=variant)


def guard() -> Guard:
    """The guard with this tenant's thresholds."""
    if "guard" not in g:
        limits = tenant_policy.limits(db.session(), g.tenant.id)
        g.guard = current_app.extensions["idp.guard"].with_limits(limits)
    return g.guard


CAPTCHA_NEEDED = _l("Complete the check below to continue.")
# Credential stuffing spreads guesses over many accounts: count wrong passwords per client
# address too, across accounts and tenants (the address comes through ProxyFix, so a forged
# X-Forwarded-For changes nothing unless IDP_TRUSTED_PROXIES says a proxy set it).
def ip_guard() -> tuple[Guard, str]:
    limit = current_app.config["IDP"].ip_failures_per_10_minutes
    limits = Limits(captcha_after=limit + 1, lock_after=limit, lock_seconds=10 * 60)
    return (current_app.extensions["idp.guard"].with_limits(limits),
            f"guard:ip:{request.remote_addr}")


def captcha_widget(key: str, needed: bool | None = None) -> dict | None:
    """The CAPTCHA to show on the next page for this account, if its failures call for one
    (``needed``: when the caller knows already, without asking the guard)."""
    if not (guard().needs_captcha(key) if needed is None else needed):
        return None
    metrics.CAPTCHAS.inc()
    return current_app.extensions["idp.captcha"].widget()


def captcha_solved() -> bool:
    """This request carries a solved CAPTCHA (spent now: each solution is accepted once). The
    guard asks only for an attempt whose number is past the threshold (``Guard.reserve``)."""
    verifier = current_app.extensions["idp.captcha"]
    return verifier.verify(store.get(), request.form.get(verifier.form_field), request.remote_addr)


def enrolled(user: User) -> list[Authenticator]:
    return list(db.session().scalars(
        select(Authenticator).where(Authenticator.user_id == user.id).order_by(Authenticator.id)))


def challengeable(user: User,
                  mine: list[Authenticator] | None = None) -> dict[str, list[Authenticator]]:
    """The user's factors by type, strongest type first, only types that can be challenged
    (of ``mine``, the user's authenticators, when the caller has read them already)."""
    found: dict[str, list[Authenticator]] = {}
    for auth in enrolled(user) if mine is None else mine:
        if mfa.answerable(auth):
            found.setdefault(auth.type, []).append(auth)
    return {t: found[t] for t in sorted(found, key=lambda t: mfa.get(t).rank)}


@dataclass
class Ceremony:
    """An enrollment outside a sign-in (the account page), kept in Redis between its pages and
    bound to user and session: the factor's state, and the page it showed (sealed: it may hold
    a seed) to show again after a wrong answer. Inside a sign-in the transaction keeps the
    same two (``idp.journey.transaction.Setup``)."""

    id: str
    type: str
    user_id: int
    binding: str
    state: dict
    page: str = ""


def _key(ceremony_id: str) -> str:
    return f"ceremony:{ceremony_id}"


def new_ceremony_id() -> str:
    return secrets.token_urlsafe(18)


def save_ceremony(type_name: str, user: User, binding: str, step: Step,
                  ceremony_id: str | None = None) -> Ceremony:
    ceremony = Ceremony(ceremony_id or new_ceremony_id(), type_name, user.id, binding,
                        step.state, seal(step.context))
    store.get().set(_key(ceremony.id), json.dumps(ceremony.__dict__), ex=CEREMONY_TTL)
    return ceremony


def load_ceremony(ceremony_id: str | None, type_name: str, user: User, binding: str) -> Ceremony:
    raw = store.get().get(_key(ceremony_id)) if ceremony_id and len(ceremony_id) < 64 else None
    if not raw:
        raise NotNow(_("This setup expired. Start again."))
    ceremony = Ceremony(**json.loads(raw))
    if ceremony.type != type_name or ceremony.user_id != user.id or ceremony.binding != binding:
        raise NotNow(_("This setup expired. Start again."))
    return ceremony


def end_ceremony(ceremony_id: str) -> None:
    store.get().delete(_key(ceremony_id))


def seal(context: dict) -> str:
    """A page's context, encrypted: it may hold a seed shown for setup."""
    return current_app.extensions["idp.secretbox"].encrypt(json.dumps(context))


def unseal(sealed: str | None) -> dict:
    return json.loads(current_app.extensions["idp.secretbox"].decrypt(sealed)) if sealed else {}


def guarded(ctx: FactorContext, failed_action: str, factor: Factor, check, *, captcha: bool,
            pipe=None):
    """Run a factor's check under the guard: an attempt is spent before it runs (behind the
    CAPTCHA gate when ``captcha``: NotNow asking for it), given back when the answer was right
    (with ``pipe``'s writes, when given) or was no guess (NotNow), kept and audited when it
    was wrong."""
    key = account_key(ctx.tenant.id, ctx.user.id, ctx.user.email)
    try:
        attempt = guard().reserve(key, captcha_solved if captcha else None)
    except CaptchaNeeded:
        raise NotNow(CAPTCHA_NEEDED) from None
    try:
        result = check()
    except WrongAnswer:
        ctx.audit(failed_action, factor=factor.type)
        try:
            guard().after_failure(key, attempt)
        except Locked as locked:
            if locked.new:
                lockout.account_locked(ctx.db, ctx.tenant, ctx.user, ctx.user.email,
                                       locked.until, factor.type)
            raise
        raise
    except NotNow:
        guard().refund(key)
        raise
    guard().refund(key, pipe=pipe)
    return result


class EnrollmentClosed(NotNow):
    """The enrollment's reason is gone (the user has a factor now): nothing was added."""


def enroll_finish(factor: Factor, user: User, state: dict, form: MultiDict, *,
                  still_allowed: Callable[[], bool] | None = None) -> Authenticator | Step:
    """Finish an enrollment, or advance it (a ``Step``, whose state the caller keeps for the
    next page); confirmation codes are counted by the guard.

    Every enrollment of a user is added under that user's lock, so two of them never read
    the user's factors at the same time; ``still_allowed`` is asked under the lock, just before
    the insert (the sign-in's forced setup: only while the user has no usable factor).

    Confirmations need no CAPTCHA: the code was just given to whoever is enrolling, so
    guessing it wins nothing, while failures others caused on the account would put a CAPTCHA
    in its way."""
    ctx = context(user)
    result = guarded(ctx, "mfa.enroll_failed", factor,
                     lambda: factor.enroll_finish(ctx, state, form), captcha=False)
    if isinstance(result, Step):
        return result
    directory.lock_user(ctx.db, user)
    if still_allowed is not None and not still_allowed():
        ctx.audit("mfa.enroll_refused", factor=factor.type,
                  reason="the user has a second factor already")
        raise EnrollmentClosed(_("Two-step verification is already set up for this account."))
    result.tenant_id, result.user_id = g.tenant.id, user.id
    if not result.name:
        result.name = str(factor.label)
    ctx.db.add(result)
    ctx.db.flush()
    ctx.audit("mfa.enrolled", factor=factor.type, authenticator_id=result.id, name=result.name)
    # The owner hears of every new way into the account, whoever added it and from where.
    outbox.mail(ctx.db, ctx.settings, g.tenant, user.email, "factor_added", locale=user.locale,
                name=user.name or user.email, email=user.email, method=str(factor.label),
                label=result.name, at=datetime.now(timezone.utc))
    return result


def verify(factor: Factor, user: User, factors: list[Authenticator], state: dict,
           form: MultiDict, pipe=None) -> Proof | Step:
    """Check a second factor at sign-in: count first (guard), verify second, audit both ways
    (``pipe``: where the attempt given back for a right answer goes)."""
    ctx = context(user)
    result = guarded(ctx, "mfa.challenge_failed", factor,
                     lambda: factor.verify(ctx, factors, state, form), captcha=True, pipe=pipe)
    if isinstance(result, Proof):
        result.authenticator.last_used_at = utcnow()
        ctx.audit("mfa.challenge_passed", factor=factor.type,
                  authenticator_id=result.authenticator.id, methods=result.methods)
    return result
