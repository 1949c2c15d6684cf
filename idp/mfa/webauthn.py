"""Passkeys and security keys: WebAuthn (W3C Web Authentication Level 2) with py_webauthn.

Registration (§7.1) and authentication (§7.2) run on our hosted pages; ``idp/static/
webauthn.js`` calls ``navigator.credentials.create/get`` with the options of the page and
posts the credential back as JSON. The RP ID is the host of IDP_BASE_URL (``ctx.rp_id``) and
the only accepted origin is ``ctx.origin``.

What py_webauthn leaves to us (DESIGN.md, "Gotchas"):

* **User verification** is *preferred*, not required (a security key without a PIN still
  counts as a possession factor); the UV flag of the verified response decides whether
  the ``amr`` says ``user`` as well as ``hwk``.
* **A challenge is used once.** It is kept in the ceremony's state (which the caller keeps in
  Redis) and is marked spent with ``SET NX`` *before* the response is checked, so the same
  assertion posted twice — one after the other or in parallel — passes at most once, on
  every worker. A challenge also expires after ``CHALLENGE_SECONDS``.
* **Ownership** (§7.2 steps 5-6): the credential must be one of this user's (looked up by its
  id in ``Authenticator.lookup``), and a ``userHandle`` in the response must be this user's.
* **Signature counter** (§6.1.1, §7.2 step 17): when the stored or the new counter is
  non-zero, the new one must be greater, else the authenticator may have been cloned: the
  sign-in is refused and audited. The counter moves with a compare-and-set UPDATE, so two
  parallel sign-ins cannot both move it to the same value.

**Passkeys as the first step** (issue 19): a *passkey* is a discoverable credential (§6.2.2,
resident key *required* when set up as one on the account page) that verifies its user (UV
*required* then). On the sign-in page no user is known yet, so the request lists no
credential (``allowCredentials`` empty) and the browser offers the passkeys it holds for this
RP ID, in the email field's autofill (conditional mediation) or in its own dialog (the
button). The challenge of that page is kept nowhere — the page is shown to anyone, and
storing a challenge per view would let anyone fill the store: it is 16 random bytes and the
time, with a MAC binding both to the tenant and the browser (``sign_in_request``); the
answer's challenge is checked against that MAC (``sign_in_state``) and then spent like any
other (``_spend``, once, within ``CHALLENGE_SECONDS``). The credential names its owner: its id
(``lookup``), and its ``userHandle``, which a discoverable credential must return and which
must be the owner's. A passkey with user verification proves two kinds of factor at once
(``hwk`` + ``user``: something you have, something you are or know); without it, one.

Nothing here is secret: a credential's public key, id and transports are stored as they are.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select, update
from werkzeug.datastructures import MultiDict

import webauthn
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.options_to_json_dict import options_to_json_dict
from webauthn.helpers.structs import (AttestationConveyancePreference, AuthenticatorSelectionCriteria,
                                      AuthenticatorTransport, PublicKeyCredentialDescriptor,
                                      ResidentKeyRequirement, UserVerificationRequirement)

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from idp.mfa import register
from idp.mfa.base import Factor, FactorContext, NotNow, Proof, Step, WrongAnswer
from idp.mfa.secrets import SecretBox
from idp.models import Authenticator
from idp.untrusted import UntrustedInput, parse_json_object

NAME_MAX = 100  # Authenticator.name is String(100)
LOOKUP_MAX = 255  # Authenticator.lookup is String(255): a base64url credential id of <= 191 bytes
CREDENTIAL_MAX = 64 * 1024  # the posted JSON; real ones are a few hundred bytes to a few KB
CHALLENGE_SECONDS = 10 * 60  # how long a challenge may be answered
BROWSER_TIMEOUT_MS = 5 * 60 * 1000  # the hint to the browser (§5.4 / §5.5 "timeout")
SPENT_TTL = CHALLENGE_SECONDS + 60  # a spent mark outlives the challenge it guards
B64URL = re.compile(r"[A-Za-z0-9_-]*")
TRANSPORTS = {t.value for t in AuthenticatorTransport}

NOT_VERIFIED = _l("That passkey or security key could not be verified. Try again.")
NOT_REGISTERED = _l("That passkey or security key could not be registered. Try again.")
NOT_YOURS = _l("That passkey or security key is not registered to your account. Use one you "
               "added.")
REPLAYED = _l("This request was used already. Try again.")
EXPIRED = _l("This request expired. Try again.")
COUNTER = _l("This security key answered with an out-of-date signature counter, which can mean "
             "it was copied. Use another method, and tell your administrator.")
NOTHING_SENT = _l("Use your passkey or security key first (this page needs JavaScript).")
NOT_VERIFYING = _l("This device did not ask for your PIN, fingerprint or face, so it cannot be "
                   "a passkey here. Turn on a screen lock or a PIN for it, or add it as a "
                   "security key instead.")
PASSKEY = "passkey"  # the variant of a passkey set up on the account page


def _b64(data: bytes) -> str:
    return bytes_to_base64url(data)


def _unb64(text: str) -> bytes:
    # Strict: anything outside the base64url alphabet (RFC 4648 section 5) is a ValueError,
    # not silently dropped, so one credential id has one spelling.
    if not B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical(text) -> str | None:
    """base64url as we store it (no padding), or None for what is not base64url."""
    try:
        return _b64(_unb64(text)) if isinstance(text, str) else None
    except ValueError:
        return None


def _transports(values) -> list[str]:
    """The transports an authenticator reported, only the ones §5.8.4 defines."""
    if not isinstance(values, list):
        return []
    return [v for v in values if isinstance(v, str) and v in TRANSPORTS][:8]


def _descriptor(auth: Authenticator) -> PublicKeyCredentialDescriptor:
    transports = [AuthenticatorTransport(t) for t in _transports((auth.data or {}).get("transports"))]
    return PublicKeyCredentialDescriptor(id=_unb64(auth.lookup), transports=transports or None)


def _credential_json(form: MultiDict) -> dict:
    """The posted PublicKeyCredential as a dict; NotNow when nothing was posted (not a guess),
    WrongAnswer when something was, but not a credential."""
    raw = form.get("credential") or ""
    if not raw.strip():
        raise NotNow(NOTHING_SENT)
    try:
        value = parse_json_object(raw, what="credential", max_length=CREDENTIAL_MAX)
    except UntrustedInput:
        raise WrongAnswer(NOT_VERIFIED) from None
    if not isinstance(value.get("rawId"), str) \
            or not isinstance(value.get("response"), dict):
        raise WrongAnswer(NOT_VERIFIED)
    return value


def _credential_id(credential: dict) -> str:
    """The canonical base64url of rawId (what ``lookup`` holds)."""
    try:
        raw = _unb64(credential["rawId"])
    except (ValueError, TypeError):
        raise WrongAnswer(NOT_VERIFIED) from None
    if not raw:
        raise WrongAnswer(NOT_VERIFIED)
    return _b64(raw)


def _new_challenge(ctx: FactorContext) -> dict:
    # §13.4.3: at least 16 random bytes; 32 here. "issued" bounds how long it may be answered.
    return {"challenge": _b64(secrets.token_bytes(32)), "issued": ctx.now}


def _spend(ctx: FactorContext, state: dict) -> bytes:
    """Mark this ceremony's challenge used (atomically, on every worker) and return it.

    Done before any check of the response, so a response can be tried once per challenge
    whatever the outcome; a second try — a replay, a double submit, a parallel request —
    finds the mark and is refused."""
    challenge = state.get("challenge") if isinstance(state, dict) else None
    issued = state.get("issued") if isinstance(state, dict) else None
    if not isinstance(challenge, str) or not isinstance(issued, (int, float)):
        raise NotNow(EXPIRED)
    if ctx.now - issued > CHALLENGE_SECONDS:
        raise NotNow(EXPIRED)
    key = "webauthn:spent:" + hashlib.sha256(challenge.encode()).hexdigest()
    if not ctx.store.set(key, "1", nx=True, ex=SPENT_TTL):
        ctx.audit("mfa.webauthn_challenge_replayed")
        raise WrongAnswer(REPLAYED)
    return _unb64(challenge)


@register
class WebAuthn(Factor):
    type = "webauthn"
    label = _l("Passkey or security key")
    in_sentence = _l("passkey or security key")
    policy_help = _l("A passkey on a phone or computer, or a hardware key. "
                     "The strongest method: it cannot be phished.")
    amr = "hwk"  # RFC 8176 section 2: proof-of-possession of a hardware-secured key
    rank = 10  # the strongest: phishing-resistant (the origin is part of what is signed)
    several = True

    # -- registration (§7.1) --------------------------------------------------------------

    def _user_handle(self, ctx: FactorContext) -> str:
        """The user handle (§14.6.1: random, no personal data), the same for all of a user's
        credentials, so an authenticator keeps one passkey per account and replaces it."""
        for auth in ctx.db.scalars(select(Authenticator).where(
                Authenticator.user_id == ctx.user.id, Authenticator.type == self.type)):
            handle = (auth.data or {}).get("user_handle")
            if isinstance(handle, str) and handle:
                return handle
        return _b64(secrets.token_bytes(32))

    def _mine(self, ctx: FactorContext) -> list[Authenticator]:
        return list(ctx.db.scalars(select(Authenticator).where(
            Authenticator.user_id == ctx.user.id, Authenticator.type == self.type,
            Authenticator.lookup.is_not(None)).order_by(Authenticator.id)))

    def enroll_begin(self, ctx: FactorContext) -> Step:
        passkey = ctx.variant == PASSKEY
        state = _new_challenge(ctx) | {"user_handle": self._user_handle(ctx), "passkey": passkey}
        options = webauthn.generate_registration_options(
            rp_id=ctx.rp_id,
            rp_name=ctx.tenant.name,
            user_id=_unb64(state["user_handle"]),
            user_name=ctx.user.email,
            user_display_name=ctx.user.name or ctx.user.email,
            challenge=_unb64(state["challenge"]),
            timeout=BROWSER_TIMEOUT_MS,
            # No attestation: we trust no particular maker, and "none" asks for no
            # identifying certificate (§5.4.7; privacy, §14.4.1).
            attestation=AttestationConveyancePreference.NONE,
            # A passkey (discoverable credential) where the authenticator can keep one, and
            # its PIN or biometric where it has one; security keys without either still work.
            # Set up as a passkey, both are required: it is then a whole sign-in by itself.
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED if passkey
                else ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED if passkey
                else UserVerificationRequirement.PREFERRED),
            # §5.4.3: an authenticator that already holds one of these says so, instead of
            # registering the same user twice.
            exclude_credentials=[_descriptor(a) for a in self._mine(ctx)],
        )
        return Step(context={"options": options_to_json_dict(options), "default_name": _("Passkey"),
                             "passkey": passkey}, state=state)

    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator:
        name = " ".join((form.get("name") or "").split())
        if len(name) > NAME_MAX:
            raise NotNow(_("A name can have at most %(count)d characters.", count=NAME_MAX))
        credential = _credential_json(form)
        challenge = _spend(ctx, state)
        lookup = _credential_id(credential)
        try:
            # Checks type, challenge, origin, RP ID hash, UP, the attestation statement and
            # the key's algorithm (§7.1 steps 7-21). It raises on anything it refuses,
            # and on input it cannot even parse.
            verified = webauthn.verify_registration_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=ctx.rp_id,
                expected_origin=ctx.origin, require_user_verification=False)
        except Exception:
            raise WrongAnswer(NOT_REGISTERED) from None
        passkey = state.get("passkey") is True
        if passkey and not verified.user_verified:
            raise NotNow(NOT_VERIFYING)
        # The id the client names must be the one the authenticator put in authData (the
        # one its key belongs to), else a client could file a key under another id.
        if _b64(verified.credential_id) != lookup:
            raise WrongAnswer(NOT_REGISTERED)
        if len(lookup) > LOOKUP_MAX:
            raise NotNow(_("This security key's credential is too long to be stored here. "
                           "Use another passkey or security key."))
        # §7.1 step 22: a credential id registered already (to anyone) is refused.
        if ctx.db.scalar(select(Authenticator.id).where(Authenticator.lookup == lookup)) is not None:
            raise NotNow(_("This passkey or security key is registered already."))
        data = {
            "public_key": _b64(verified.credential_public_key),
            "transports": _transports(credential["response"].get("transports")),
            "aaguid": verified.aaguid,
            "device_type": getattr(verified.credential_device_type, "value",
                                   str(verified.credential_device_type)),
            "backed_up": bool(verified.credential_backed_up),
            "user_handle": state["user_handle"],
            "user_verified": bool(verified.user_verified),
            "fmt": getattr(verified.fmt, "value", str(verified.fmt)),
            # Set up as a passkey: discoverable (resident key required) and verifying its user.
            "passkey": passkey,
        }
        return Authenticator(type=self.type, name=name or _("Passkey"), data=data, lookup=lookup,
                             counter=verified.sign_count)

    # -- authentication (§7.2) ------------------------------------------------------------

    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        state = _new_challenge(ctx)
        options = webauthn.generate_authentication_options(
            rp_id=ctx.rp_id,
            challenge=_unb64(state["challenge"]),
            timeout=BROWSER_TIMEOUT_MS,
            allow_credentials=[_descriptor(a) for a in factors if self.usable(a)],
            user_verification=UserVerificationRequirement.PREFERRED,
        )
        return Step(context={"options": options_to_json_dict(options),
                             "names": [a.name for a in factors]}, state=state)

    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof:
        credential = _credential_json(form)
        challenge = _spend(ctx, state)
        lookup = _credential_id(credential)
        auth = ctx.db.scalar(select(Authenticator).where(Authenticator.lookup == lookup))
        # §7.2 steps 5-6: the credential must be this user's, one they may use now.
        if auth is None or auth.type != self.type or auth.user_id != ctx.user.id \
                or auth.tenant_id != ctx.tenant.id or auth.id not in {a.id for a in factors}:
            if auth is not None:
                ctx.audit("mfa.webauthn_foreign_credential", authenticator_id=auth.id)
            raise WrongAnswer(NOT_YOURS)
        handle = credential["response"].get("userHandle")
        if handle not in (None, "") and _canonical(handle) != auth.data.get("user_handle"):
            raise WrongAnswer(NOT_YOURS)
        try:
            # Checks type, challenge, origin, RP ID hash, UP and the signature over
            # authenticatorData || SHA-256(clientDataJSON) (§7.2 steps 11-20). The counter is
            # ours (below): given 0 here, the library never refuses on it, so a regression is
            # only reported for a response whose signature is genuine.
            verified = webauthn.verify_authentication_response(
                credential=credential, expected_challenge=challenge, expected_rp_id=ctx.rp_id,
                expected_origin=ctx.origin, credential_public_key=_unb64(auth.data["public_key"]),
                credential_current_sign_count=0, require_user_verification=False)
        except Exception:
            raise WrongAnswer(NOT_VERIFIED) from None
        self._advance_counter(ctx, auth, verified.new_sign_count)
        if bool(verified.credential_backed_up) != auth.data.get("backed_up"):
            # The backup state may change over a credential's life (§6.1.3, BS flag).
            auth.data = {**auth.data, "backed_up": bool(verified.credential_backed_up)}
        # "user" (RFC 8176) only when the authenticator verified the user (PIN or biometric).
        return Proof(auth, [self.amr, "user"] if verified.user_verified else [self.amr])

    def _advance_counter(self, ctx: FactorContext, auth: Authenticator, new: int) -> None:
        """§6.1.1: a counter that does not move forward may mean a cloned authenticator."""
        stored = auth.counter or 0
        if new == 0 and stored == 0:
            return  # this authenticator keeps no counter (most synced passkeys)
        moved = new > stored and ctx.db.execute(
            update(Authenticator)
            .where(Authenticator.id == auth.id, Authenticator.counter < new)
            .values(counter=new)
        ).rowcount == 1
        if not moved:
            ctx.audit("mfa.webauthn_sign_count_regressed", authenticator_id=auth.id,
                      stored=stored, received=new)
            raise WrongAnswer(COUNTER)

    # -- the account page ------------------------------------------------------------------

    def usable(self, authenticator: Authenticator) -> bool:
        data = authenticator.data or {}
        return bool(authenticator.lookup and data.get("public_key"))

    def proved_by_enrollment(self, authenticator: Authenticator) -> list[str]:
        # The registration ceremony verified presence, and the user too when UV happened.
        return [self.amr, "user"] if authenticator.data.get("user_verified") else [self.amr]

    def describe(self, authenticator: Authenticator) -> str:
        data = authenticator.data or {}
        if data.get("passkey"):
            if data.get("device_type") == "multi_device":
                return _("Passkey: signs you in by itself, synced")
            return _("Passkey: signs you in by itself")
        if data.get("device_type") == "multi_device":
            return _("Synced passkey, backed up") if data.get("backed_up") else _("Synced passkey")
        if "internal" in (data.get("transports") or []):
            return _("Passkey on one device")
        return _("Security key")


# -- a passkey as the first step (the sign-in page) -----------------------------------------------

_NONCE = 16
_MAC = 16
SIGN_IN_PURPOSE = "passkey-sign-in"


def _sign_in_mac(box: SecretBox, binding: str, nonce: bytes, issued: int) -> bytes:
    digest = box.keyed_hash(SIGN_IN_PURPOSE, f"{binding}\x00{nonce.hex()}\x00{issued}")
    return bytes.fromhex(digest)[:_MAC]


def sign_in_request(box: SecretBox, rp_id: str, binding: str, now: float) -> dict:
    """The sign-in page's request for any passkey of this RP ID (``binding``: the tenant and
    the browser), as the JSON webauthn.js reads. Nothing is stored: the challenge carries its
    time and a MAC (module docstring). Built by hand, not by py_webauthn: it is on the busiest
    page, and has no field of ours but the challenge."""
    issued = int(now)
    nonce = secrets.token_bytes(_NONCE)
    challenge = nonce + issued.to_bytes(8, "big") + _sign_in_mac(box, binding, nonce, issued)
    return {"challenge": _b64(challenge), "timeout": BROWSER_TIMEOUT_MS, "rpId": rp_id,
            "allowCredentials": [], "userVerification": "preferred"}


def sign_in_credential(form: MultiDict) -> dict:
    """The posted credential of a passkey sign-in (NotNow: nothing posted; WrongAnswer: not a
    credential)."""
    return _credential_json(form)


def sign_in_state(box: SecretBox, binding: str, credential: dict) -> dict:
    """The ceremony state the sign-in page's challenge stands for (what ``verify`` spends), when
    the credential answers a challenge this tenant showed this browser; else NotNow. The age is
    ``_spend``'s to check."""
    try:
        client_data = parse_json_object(_unb64(credential["response"]["clientDataJSON"]),
                                        what="client data", max_length=CREDENTIAL_MAX)
        challenge = _unb64(client_data["challenge"])
    except (KeyError, TypeError, ValueError, UntrustedInput):
        raise NotNow(EXPIRED) from None
    if len(challenge) != _NONCE + 8 + _MAC:
        raise NotNow(EXPIRED)
    nonce, issued, mac = challenge[:_NONCE], challenge[_NONCE:_NONCE + 8], challenge[_NONCE + 8:]
    issued = int.from_bytes(issued, "big")
    if not hmac.compare_digest(mac, _sign_in_mac(box, binding, nonce, issued)):
        raise NotNow(EXPIRED)
    return {"challenge": _b64(challenge), "issued": issued}


def passkey_of(db, credential: dict) -> Authenticator | None:
    """The WebAuthn factor a sign-in credential names, whoever and wherever its owner is (the
    caller checks the tenant), when it names its owner as a discoverable credential must."""
    lookup = _credential_id(credential)
    handle = credential["response"].get("userHandle")
    auth = db.scalar(select(Authenticator).where(Authenticator.lookup == lookup))
    if auth is None or auth.type != WebAuthn.type or not isinstance(handle, str) \
            or _canonical(handle) != (auth.data or {}).get("user_handle"):
        return None
    return auth
