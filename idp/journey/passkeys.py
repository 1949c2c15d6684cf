"""A passkey as the first step of a sign-in, and accounts that keep no password.

The sign-in page asks the browser for any passkey of this site (``sign_in_request``): in the
email field's autofill (conditional mediation) and behind "Sign in with a passkey". The answer
names its owner (the credential id and its user handle); ``with_passkey`` checks it under the
guard like any factor (``idp.mfa.flow.guarded``: a locked account stays locked), records the
passkey as the sign-in's first step, and lets the policy say what else is needed — nothing
after a passkey that verified its user, which proves two kinds of factor at once; the
password after one that did not, where more than one step is asked (``policy.decide``).

A passkey of another organisation (the same site serves every tenant, so a browser may offer
one) is refused without saying whose it is; so is the passkey of an account that signs in
through its organisation's provider (``signs_in_here``): it must not become a way around it.

Passwordless accounts (``remove_password``): a user holding a passkey may remove their
password where the tenant allows it and self-service reset is on; they keep a way in (the
passkey, and a reset by mail, which sets a password again whatever the account still holds),
and a passkey that is the last way in cannot be removed (``last_way_in``).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import current_app, g
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict

from idp import audit, db, directory, mfa, tenant_policy, user_status
from idp.guard import Locked
from idp.journey import signin
from idp.journey.outcomes import LockedOut, Outcome, PasswordFirst
from idp.journey.transaction import Transaction, first_step_proved
from idp.mfa import flow
from idp.mfa import webauthn as passkeys
from idp.mfa.base import NotNow, Proof, WrongAnswer
from idp.models import Authenticator, User
from idp.models.base import utcnow
from idp.notify import outbox
from idp.policy import Primary

NOT_HERE = _l("That passkey is not one of this organisation's. Use another passkey, or sign "
              "in with your email and password.")
GONE = _l("That passkey was removed from its account. Sign in with your email and password.")
ELSEWHERE = _l("Your account signs in through your organisation's sign-in service, not with a "
               "passkey alone. Use the button for it below.")


def _binding(tx: Transaction) -> str:
    return f"{g.tenant.id}:{tx.browser}"


def offered() -> bool:
    """Does this tenant let a passkey be the first step (WebAuthn allowed, the setting on)?
    Whether a given user may is the policy's to say, once the passkey names them."""
    policy = tenant_policy.tenant_policy(db.session(), g.tenant)
    return policy.passkey_first and "webauthn" in policy.allowed_factors


def sign_in_request(tx: Transaction) -> dict | None:
    """The sign-in page's passkey request (None where passkeys are not a first step here)."""
    if not offered():
        return None
    settings = current_app.config["IDP"]
    return passkeys.sign_in_request(current_app.extensions["idp.secretbox"],
                                    urlsplit(settings.base_url).hostname, _binding(tx),
                                    time.time())


def with_passkey(tx: Transaction, form: MultiDict) -> Outcome:
    """The passkey step: the credential the sign-in page posted, checked as its owner's."""
    tenant_id = g.tenant.id
    try:
        credential = passkeys.sign_in_credential(form)
        state = passkeys.sign_in_state(current_app.extensions["idp.secretbox"], _binding(tx),
                                       credential)
        auth = passkeys.passkey_of(db.session(), credential)
    except (WrongAnswer, NotNow) as e:
        return PasswordFirst(tx, e.message)
    if auth is None:  # not audited: anyone can post made-up credentials
        return PasswordFirst(tx, GONE)
    if auth.tenant_id != tenant_id:
        audit.record(db.session(), tenant_id, "user.passkey_refused",
                     reason="a passkey of another organisation")
        return PasswordFirst(tx, NOT_HERE)
    user = db.session().get(User, auth.user_id, options=directory.SIGN_IN_READS)
    if not signs_in_here(user):
        return PasswordFirst(tx, ELSEWHERE)
    mine = list(user.authenticators)
    factor = mfa.get(passkeys.WebAuthn.type)
    ctx = flow.context(user)
    try:
        # Counted like any factor (a locked account stays locked), without a CAPTCHA: a
        # signature cannot be guessed. The challenge is spent before anything is checked.
        proof = flow.guarded(ctx, "mfa.challenge_failed", factor,
                             lambda: factor.verify(ctx, [a for a in mine if a.type == factor.type],
                                                   state, form), captcha=False)
    except Locked as locked:
        return LockedOut(locked.until)
    except (WrongAnswer, NotNow) as e:
        return PasswordFirst(tx, e.message)
    assert isinstance(proof, Proof)
    if not user_status.may_sign_in(user.status):
        return signin.advance(tx, user, mine)  # the refusal says why
    proof.authenticator.last_used_at = utcnow()
    ctx.audit("user.passkey_used", authenticator_id=auth.id, methods=proof.methods)
    first_step_proved(tx, user, proof.methods, Primary.PASSKEY)
    return signin.advance(tx, user, mine)


def signs_in_here(user: User) -> bool:
    """Does the account sign in on our pages at all: with a password, or without one by its
    owner's choice? One that never had a password signs in through its organisation's
    provider (or its invitation): a passkey must not become a way around that provider."""
    return user.password_hash is not None or user.password_removed_at is not None


# -- accounts without a password --------------------------------------------------------------

def holds_passkey(user: User) -> bool:
    """Does the user hold a passkey that signs in by itself (discoverable, verifying)?"""
    return any(a.type == passkeys.WebAuthn.type and (a.data or {}).get("passkey")
               and mfa.answerable(a) for a in flow.enrolled(user))


def may_remove_password(user: User) -> bool:
    """Passwordless where the tenant allows it, passkeys sign in here, the user has one, and
    a lost passkey can be made good by mail (self-service reset on)."""
    accounts = tenant_policy.account_settings(db.session(), g.tenant)
    return bool(user.password_hash) and accounts.passwordless and accounts.self_service_reset \
        and offered() and holds_passkey(user)


def remove_password(user: User) -> bool:
    """Remove the user's password (False when they may not): the passkey is their way in,
    and a reset link by mail their way back. The owner is told by mail."""
    session = db.session()
    directory.lock_user(session, user)
    session.refresh(user)  # as the last writer left it (a passkey removed meanwhile)
    if not may_remove_password(user):
        return False
    user.password_hash = None
    user.password_changed_at = user.password_removed_at = utcnow()
    flow.context(user).audit("user.password_removed")
    outbox.mail(session, current_app.config["IDP"], g.tenant, user.email, "password_changed",
                locale=user.locale,
                name=user.name or user.email, email=user.email, why="removed",
                at=user.password_changed_at)
    return True


def last_way_in(user: User, auth: Authenticator) -> bool:
    """Would removing ``auth`` leave a passwordless account with no passkey to sign in with?
    Asked under the user's lock (``directory.lock_user``), with the user as last written."""
    if user.password_hash or auth.type != passkeys.WebAuthn.type:
        return False
    others = [a for a in flow.enrolled(user) if a.id != auth.id and a.type == auth.type
              and (a.data or {}).get("passkey") and mfa.answerable(a)]
    return not others
