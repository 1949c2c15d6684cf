"""Authenticator apps: time-based one-time passwords (TOTP, RFC 6238; HOTP, RFC 4226).

Enrollment shows the ``otpauth://`` key URI (Google Authenticator's "Key Uri Format": the
tenant's name as issuer, the user's email as account) as an inline SVG QR code, and the
base32 setup key as text for typing in. It ends only when the user types a valid code, which
proves the app holds the same secret and clock.

Checking a code is our own step arithmetic, not ``pyotp.TOTP.verify()``: that accepts the same
code twice, and RFC 6238 section 5.2 says the verifier MUST NOT accept an OTP a second time.
Codes for the previous, current and next 30-second step are accepted (section 5.2 allows a
step of delay or drift); the last accepted step of each authenticator is kept in Redis and
only moves forward (an atomic compare-and-set in Lua), so a code — or any code of an earlier
step — is refused on every worker once one was accepted.

The seed is encrypted at rest (``ctx.box``), in the database and in the ceremony's state.
"""

from __future__ import annotations

import hmac
import re
import secrets
from urllib.parse import quote, urlencode

import pyotp
import segno
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from idp.mfa import register
from idp.mfa.base import Factor, FactorContext, NotNow, Proof, Step, WrongAnswer
from idp.models import Authenticator

NAME_MAX = 100  # Authenticator.name is String(100)

# Move the last accepted step forward, never back: "accept once" across all workers.
# KEYS[1] the authenticator's last accepted step; ARGV[1] the step of this code; ARGV[2] TTL.
_ADVANCE = """
local last = tonumber(redis.call('GET', KEYS[1]))
local step = tonumber(ARGV[1])
if last and step <= last then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
return 1
"""


def setup_key(secret: str) -> str:
    """The base32 secret in groups of four, easier to read and type (apps ignore spaces)."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def _label_part(text: str) -> str:
    # The Key Uri Format forbids a colon inside the issuer or account: it separates them.
    return " ".join(text.replace(":", " ").split())


def key_uri(secret: str, issuer: str, account: str, digits: int, period: int) -> str:
    """``otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=ISSUER`` (issuer twice, as apps
    expect: the prefix for old apps, the parameter for new ones)."""
    issuer, account = _label_part(issuer), _label_part(account)
    label = f"{quote(issuer, safe='')}:{quote(account, safe='')}"
    query = urlencode({"secret": secret, "issuer": issuer, "algorithm": "SHA1",
                       "digits": digits, "period": period}, quote_via=quote)
    return f"otpauth://totp/{label}?{query}"


@register
class Totp(Factor):
    type = "totp"
    label = _l("Authenticator app")
    in_sentence = _l("authenticator app")
    policy_help = _l("A six-digit code from an app such as Google Authenticator.")
    amr = "otp"  # RFC 8176 section 2: one-time password
    rank = 20
    keeps_challenge = False  # its page shows what the answer is checked against

    STEP = 30  # seconds per time step (RFC 6238 section 5.2 recommends 30)
    DIGITS = 6
    WINDOW = 1  # steps accepted either side of now: previous, current, next
    SKEW_MARGIN = 60  # seconds of clock difference between our workers, for the TTL

    # -- the arithmetic -------------------------------------------------------------------

    def step_at(self, moment: float) -> int:
        return int(moment // self.STEP)

    def _otp(self, secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=self.DIGITS, interval=self.STEP)

    def normalise(self, form: MultiDict) -> str:
        """The typed code without the spaces or dashes apps display; WrongAnswer unless it
        is exactly DIGITS ASCII digits (``str.isdigit`` would take '²' or Arabic digits)."""
        raw = (form.get("code") or "")[:64]
        code = re.sub(r"[\s-]", "", raw)
        if not re.fullmatch(rf"[0-9]{{{self.DIGITS}}}", code, flags=re.ASCII):
            raise WrongAnswer(_("Enter the %(digits)d-digit code your authenticator app shows.",
                                digits=self.DIGITS))
        return code

    def matching_steps(self, secret: str, code: str, now: float) -> list[int]:
        """Every step in the window whose code equals ``code``, latest first.

        All 2*WINDOW+1 codes are computed and compared in constant time, so the work does
        not depend on where (or whether) the code matched. The step is the HOTP counter
        (RFC 6238 section 4.2), given to ``generate_otp`` as an integer: ``TOTP.at()`` goes
        through local time (``mktime``), which is ambiguous in the hour a DST change repeats."""
        otp = self._otp(secret)
        current = self.step_at(now)
        found = []
        for step in range(current - self.WINDOW, current + self.WINDOW + 1):
            if hmac.compare_digest(otp.generate_otp(step), code):
                found.append(step)
        return sorted(found, reverse=True)

    def ttl(self) -> int:
        """A code of step s can be accepted from (s-WINDOW)*STEP until (s+WINDOW+1)*STEP;
        remembering the last step for that long (plus worker clock skew) is enough: any older
        step is outside the window by then anyway."""
        return (2 * self.WINDOW + 1) * self.STEP + self.SKEW_MARGIN

    @staticmethod
    def used_key(handle: str) -> str:
        return f"totp:last-step:{handle}"

    def advance(self, ctx: FactorContext, handle: str, step: int) -> bool:
        """Atomically record ``step`` as the last accepted one; False if it was not later."""
        return bool(ctx.store.eval(_ADVANCE, 1, self.used_key(handle), step, self.ttl()))

    # -- enrollment -----------------------------------------------------------------------

    def enroll_begin(self, ctx: FactorContext) -> Step:
        # 160 bits, the length RFC 4226 section 4 recommends (R6) for the shared secret.
        secret = pyotp.random_base32(32)
        uri = key_uri(secret, ctx.tenant.name, ctx.user.email, self.DIGITS, self.STEP)
        qr = segno.make(uri, error="m").svg_inline(
            scale=4, omitsize=True, dark="#000", light="#fff",  # light: scannable in dark mode
            svgclass="qr-code", title=_("QR code to scan with your authenticator app"))
        context = {"qr_svg": qr, "setup_key": setup_key(secret), "uri": uri,
                   "issuer": _label_part(ctx.tenant.name), "account": ctx.user.email,
                   "digits": self.DIGITS, "period": self.STEP, "default_name": str(self.label)}
        # A random handle names this authenticator's "last step" key in Redis; unlike the
        # row id it is known before the row exists and is never reused.
        state = {"secret": ctx.box.encrypt(secret), "handle": secrets.token_urlsafe(12)}
        return Step(context=context, state=state)

    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator:
        name = " ".join((form.get("name") or "").split())
        if len(name) > NAME_MAX:
            raise NotNow(_("A name can have at most %(count)d characters.", count=NAME_MAX))
        code = self.normalise(form)
        accepted = self.check(ctx, ctx.box.decrypt(state["secret"]), state["handle"], code)
        if accepted is None:
            raise WrongAnswer(_("That code was used already. Wait for the next code in your app."))
        if not accepted:
            raise WrongAnswer(_("That code is not right. Check the app shows this account, "
                                "then enter its current code."))
        # The confirming code is now "used": it cannot be replayed at the next sign-in.
        return Authenticator(type=self.type, name=name or str(self.label),
                             data={"secret": state["secret"], "handle": state["handle"]})

    def check(self, ctx: FactorContext, secret: str, handle: str, code: str) -> bool | None:
        """True when accepted; None when the code matched but its step was used; else False."""
        steps = self.matching_steps(secret, code, ctx.now)
        for step in steps:
            if self.advance(ctx, handle, step):
                return True
        return None if steps else False

    # -- sign-in --------------------------------------------------------------------------

    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        return Step(context={"digits": self.DIGITS, "names": [a.name for a in factors]})

    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof:
        code = self.normalise(form)
        replayed = None
        # Every authenticator is tried (the same work for each), the accepted one is returned.
        results = []
        for auth in factors:
            try:
                secret = ctx.box.decrypt(auth.data["secret"])
            except (KeyError, TypeError, ValueError):
                continue  # IDP_SECRET_KEY changed since enrollment: this app cannot answer
            results.append((auth, self.matching_steps(secret, code, ctx.now)))
        for auth, steps in results:
            for step in steps:
                if self.advance(ctx, self._handle(auth), step):
                    return Proof(auth, [self.amr])
            if steps:
                replayed = auth
        if replayed is not None:
            # A right code seen twice: the user typed it again, or someone else saw it.
            ctx.audit("mfa.totp_replay_refused", authenticator_id=replayed.id)
            raise WrongAnswer(_("That code was used already. Wait for the next code in your app."))
        raise WrongAnswer(_("That code is not right. Enter the current code from your app."))

    @staticmethod
    def _handle(auth: Authenticator) -> str:
        return auth.data.get("handle") or f"id-{auth.id}"

    def usable(self, authenticator: Authenticator) -> bool:
        return bool((authenticator.data or {}).get("secret"))

    def describe(self, authenticator: Authenticator) -> str:
        return ""  # the name the user gave says which app or phone it is
