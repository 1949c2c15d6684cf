"""Text message (SMS) codes: a 6-digit code sent to a verified mobile number.

SMS is the weakest possession factor we offer (rank 30): NIST SP 800-63B section 5.1.3.3
calls out-of-band codes over the phone network "restricted" (SIM swap, number porting,
interception). It still proves possession of the phone, so it counts for ``mfa`` (RFC 8176
``sms``), never for ``phr``.

Enrollment is two pages: the number (validated and normalised to E.164 with
``phonenumbers``), then the code sent to it; only a number that received a code is kept,
as ``Authenticator.data = {"phone": "+33612345678"}``.

Codes are ``idp.mfa.sent_codes``'s (SP 800-63B section 5.1.3.2): 6 digits from ``secrets``,
valid 5 minutes, single use, kept only as a keyed hash bound to the purpose and number, spent
by one compare-and-delete. Sends are throttled per user: five per hour, whatever the purpose
or number — each costs money, and "SMS pumping" fraud sends many; and a *resend* waits
30 seconds (the first code of a new sign-in never waits).

At sign-in the code goes to the user's first SMS number (the oldest); with several, the page
offers "send to •••• 5678 instead". Reloading the page within the 30 seconds sends nothing
new: the code already sent is still the one to type.

The code never enters a log, an audit event, a ceremony state or a page.
"""

from __future__ import annotations

import logging

import phonenumbers
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from idp import notify
from idp.directory import DirectoryError, normalise_phone
from idp.mfa import register
from idp.mfa.base import Factor, FactorContext, NotNow, Proof, Step
from idp.mfa.sent_codes import SentCodes, Throttled
from idp.models import Authenticator

log = logging.getLogger(__name__)

DIGITS = 6
CODE_TTL = 5 * 60  # seconds a code is valid (SP 800-63B 5.1.3.2 allows at most 10 minutes)
RESEND_WAIT = 30  # seconds before a pending code of one purpose is sent again
PER_HOUR = 5  # sends per user per hour
NAME_MAX = 100  # Authenticator.name is String(100)
PHONE_MAX = 40  # characters typed, before parsing

UNAVAILABLE = _l("We could not send a text message right now. "
                 "Try another method or try again later.")
NOT_A_NUMBER = _l("Enter your mobile number in international format: + and the country code, "
                  "then the number, like +33 6 12 34 56 78.")
# Numbers that cannot receive a text, or that bill the sender (premium rate): the latter is
# how SMS pumping fraud makes money, so it is refused, not only pointless.
TEXTABLE = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
            phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.PERSONAL_NUMBER}

CODES = SentCodes("sms", {"enter": _l("Enter the %(digits)d-digit code from the text message."),
                          "wrong": _l("That code is not right. Check the latest text message "
                                      "and try again.")}, ttl=CODE_TTL, resend_wait=RESEND_WAIT, per_hour=PER_HOUR,
                  digits=DIGITS)
# The keys of a user's codes (``idp.mfa.sent_codes``), by name for tests and tools.
code_key, wait_key, hour_key = CODES.code_key, CODES.wait_key, CODES.hour_key


def mask(phone: str) -> str:
    return f"•••• {phone[-4:]}"


def parse_phone(raw: str | None) -> str:
    """The number in E.164, or NotNow with what to type instead (a typo is no guess)."""
    raw = " ".join((raw or "").split())
    if not raw:
        raise NotNow(_("Enter your mobile number."))
    if len(raw) > PHONE_MAX:
        raise NotNow(NOT_A_NUMBER)
    try:
        e164 = normalise_phone(raw)
    except DirectoryError:
        raise NotNow(NOT_A_NUMBER) from None
    if phonenumbers.number_type(phonenumbers.parse(e164, None)) not in TEXTABLE:
        raise NotNow(_("%(phone)s cannot receive text messages. Enter a mobile number.",
                       phone=pretty(e164)))
    return e164


def pretty(e164: str) -> str:
    """``+33 6 12 34 56 78``: the number as people write it, to check at a glance."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


@register
class Sms(Factor):
    type = "sms"
    label = _l("Text message (SMS)")
    in_sentence = _l("text message (SMS)")
    policy_help = _l("A code sent to the user's phone. Weaker than an app: SIM swaps happen.")
    amr = "sms"  # RFC 8176 section 2: confirmation using SMS
    rank = 30
    several = True

    # -- codes ----------------------------------------------------------------------------

    def send_code(self, ctx: FactorContext, purpose: str, phone: str) -> None:
        """Send a new code to ``phone`` (replacing any pending one), or NotNow."""
        who = ctx.user.subject
        CODES.reserve(ctx.store, who, purpose)
        code = CODES.new_code()
        text = _("Your %(tenant)s sign-in code is %(code)s. It expires in %(minutes)d minutes. "
                 "Don't share it.", tenant=ctx.tenant.name, code=code, minutes=CODE_TTL // 60)
        try:
            notify.sms_sender(ctx.settings, ctx.db).send(phone, text)
        except notify.SendError as e:
            log.warning("SMS to %s not sent: %s", mask(phone), e)
            CODES.refund(ctx.store, who, purpose)
            ctx.audit("mfa.sms_failed", purpose=purpose, to=mask(phone))
            raise NotNow(UNAVAILABLE) from None
        # Kept only after the send: a send that failed leaves the previous code valid.
        CODES.keep(ctx.store, who, purpose, phone, CODES.digest(ctx.box, purpose, phone, code))
        ctx.audit("mfa.sms_sent", purpose=purpose, to=mask(phone))

    def consume(self, ctx: FactorContext, purpose: str, phone: str, code: str) -> None:
        """Spend the pending code if ``code`` is it; else WrongAnswer (or NotNow if none)."""
        CODES.consume(ctx.store, ctx.user.subject, purpose,
                      CODES.digest(ctx.box, purpose, phone, code))

    # -- enrollment -----------------------------------------------------------------------

    def enroll_begin(self, ctx: FactorContext) -> Step:
        return self._number_page(ctx.user.phone or "")

    @staticmethod
    def _number_page(phone: str) -> Step:
        return Step(context={"stage": "phone", "phone": pretty(phone) if phone else ""},
                    state={"stage": "phone"})

    def _code_page(self, phone: str, notice: str = "") -> Step:
        return Step(context={"stage": "code", "phone": pretty(phone), "masked": mask(phone),
                             "digits": DIGITS, "minutes": CODE_TTL // 60, "notice": notice,
                             "default_name": _("Phone ending %(digits)s", digits=phone[-4:])},
                    state={"stage": "code", "phone": phone})

    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator | Step:
        if state.get("stage") != "code":
            phone = parse_phone(form.get("phone"))
            mine = ctx.db.scalars(select(Authenticator).where(
                Authenticator.user_id == ctx.user.id, Authenticator.type == self.type)).all()
            if any((a.data or {}).get("phone") == phone for a in mine):
                raise NotNow(_("%(phone)s is already set up for your account.", phone=pretty(phone)))
            self.send_code(ctx, "enroll", phone)
            return self._code_page(phone)
        phone = state["phone"]
        if form.get("restart"):
            CODES.forget(ctx.store, ctx.user.subject, "enroll")
            return self._number_page(phone)
        if form.get("resend"):
            self.send_code(ctx, "enroll", phone)
            return self._code_page(phone, _("We sent a new code to %(phone)s.", phone=pretty(phone)))
        name = " ".join((form.get("name") or "").split())
        if len(name) > NAME_MAX:
            raise NotNow(_("A name can have at most %(count)d characters.", count=NAME_MAX))
        self.consume(ctx, "enroll", phone, CODES.typed(form))
        return Authenticator(type=self.type, name=name or _("Phone ending %(digits)s", digits=phone[-4:]),
                             data={"phone": phone})

    # -- sign-in --------------------------------------------------------------------------

    def _challenge_page(self, auth: Authenticator, factors: list[Authenticator],
                        notice: str = "") -> Step:
        others = [{"id": a.id, "masked": mask(a.data["phone"])} for a in factors
                  if a.id != auth.id and a.data.get("phone") != auth.data["phone"]]
        return Step(context={"masked": mask(auth.data["phone"]), "digits": DIGITS,
                             "minutes": CODE_TTL // 60, "notice": notice, "others": others},
                    state={"authenticator_id": auth.id})

    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        usable = [a for a in factors if self.usable(a)]
        if not usable:
            raise NotNow(UNAVAILABLE)
        try:
            self.send_code(ctx, "signin", usable[0].data["phone"])
        except Throttled:
            # A reload, or back from another method: the code sent moments ago still stands.
            pending = CODES.pending_to(ctx.store, ctx.user.subject, "signin")
            sent_to = next((a for a in usable if a.data["phone"] == pending), None)
            if sent_to is None:
                raise
            return self._challenge_page(sent_to, usable, _("The code we sent is still valid."))
        return self._challenge_page(usable[0], usable)

    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof | Step:
        usable = {a.id: a for a in factors if self.usable(a)}
        if form.get("send_to"):
            try:
                target = usable[int(form["send_to"])]
            except (KeyError, ValueError):
                raise NotNow(_("Choose one of your numbers.")) from None
            self.send_code(ctx, "signin", target.data["phone"])
            return self._challenge_page(target, list(usable.values()),
                                        _("We sent a code to %(phone)s.", phone=mask(target.data["phone"])))
        auth = usable.get(state.get("authenticator_id"))
        if auth is None:  # removed since the code was sent
            raise NotNow(_("That code has expired. Send a new code."))
        if form.get("resend"):
            self.send_code(ctx, "signin", auth.data["phone"])
            return self._challenge_page(auth, list(usable.values()), _("We sent a new code."))
        self.consume(ctx, "signin", auth.data["phone"], CODES.typed(form))
        return Proof(auth, [self.amr])

    def usable(self, authenticator: Authenticator) -> bool:
        return bool((authenticator.data or {}).get("phone"))

    def describe(self, authenticator: Authenticator) -> str:
        phone = (authenticator.data or {}).get("phone")
        return mask(phone) if phone else ""
