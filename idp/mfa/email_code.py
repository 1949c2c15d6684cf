"""Codes by email: a 6-digit code mailed to the account's own address.

What it proves, and its ``amr``: possession of the mailbox. RFC 8176 has no value for email;
the code is a one-time password delivered out of band, so its proof is ``otp`` (section 2:
"one-time password"), of the possession kind, like an authenticator app's or a backup code's
(``sms`` names the phone network, which a mail does not cross). It reaches ``mfa`` on top of a
password, never ``phr``. It ranks between the authenticator app and SMS (25): no SIM swap and
no cost per message, but it is only as strong as the mailbox, which is also where password
resets go — whoever holds the mailbox can reset the password and then receive the code. The
policy page tells admins so.

Enrollment is two pages: "we will send a code to <your address>", then the code sent there;
the factor is kept only once that code is typed (the mailbox is proved), as
``Authenticator.data = {"email": "ada@example.com"}``: the account's address at that moment,
and where sign-in codes go from then on. One per user (``several = False``): an account has
one address.

Codes are ``idp.mfa.sent_codes``'s (SP 800-63B 5.1.3.2): 6 digits from ``secrets``, valid
10 minutes, single use, kept only as a keyed hash bound to the purpose and address, spent by
one compare-and-delete; a resend waits 30 seconds, and at most 10 go to one account an hour.

Mail leaves through the durable outbox (``idp.notify.outbox.mail``, kind ``email_code``): the
message is written with the request's changes and its sender delivers it after the request.
The code is in the outbox row only until it leaves: a sent message keeps no text, and one not
sent within 10 minutes is dropped as expired (``outbox.MAX_AGE_OF``), never mailed late.
Without SMTP (the embedded default) the outbox is the delivery (``idp outbox``), as for SMS.
The code never enters a log, an audit event, a ceremony state or a page.
"""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from idp.mfa import register
from idp.mfa.base import Factor, FactorContext, NotNow, Proof, Step
from idp.mfa.sent_codes import SentCodes, Throttled
from idp.models import Authenticator
from idp.notify import outbox

CODE_TTL = 10 * 60  # seconds a code is valid (SP 800-63B 5.1.3.2: at most 10 minutes)
MAIL_KIND = "email_code"  # templates/mail/email_code.{txt,html}
CODES = SentCodes("email", {"enter": _l("Enter the %(digits)d-digit code from the email."),
                            "wrong": _l("That code is not right. Check the latest email and "
                                        "try again.")}, ttl=CODE_TTL, resend_wait=30, per_hour=10)


def mask(address: str) -> str:
    """``a•••@example.com``: enough to recognise one's own address, not to learn it."""
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"


@register
class EmailCode(Factor):
    via_mailbox = True  # the same mailbox as reset links and invitations
    type = "email"
    label = _l("Code by email")
    in_sentence = _l("code by email")
    policy_help = _l("A code mailed to the user's email address. Only as strong as the mailbox, "
                     "which is also where password resets go: whoever reads someone's mail can "
                     "reset their password and receive this code too.")
    amr = "otp"  # RFC 8176 section 2: one-time password (see the module docstring)
    rank = 25  # after the authenticator app (20), before SMS (30)
    several = False  # an account has one address

    def send_code(self, ctx: FactorContext, purpose: str, address: str) -> None:
        """Mail a new code to ``address`` (replacing any pending one), or Throttled. It is
        written to the outbox now and leaves after the request commits."""
        who = ctx.user.subject
        CODES.reserve(ctx.store, who, purpose)
        code = CODES.new_code()
        outbox.mail(ctx.db, ctx.settings, ctx.tenant, address, MAIL_KIND,
                    locale=ctx.user.locale, name=ctx.user.name or address, code=code, minutes=CODE_TTL // 60,
                    setup=purpose == "enroll")
        CODES.keep(ctx.store, who, purpose, address, CODES.digest(ctx.box, purpose, address, code))
        ctx.audit("mfa.email_sent", purpose=purpose, to=mask(address))

    def _send_or_keep(self, ctx: FactorContext, purpose: str, address: str) -> str:
        """Mail a code, or keep the one mailed moments ago (a reload, back from another page):
        within the resend wait it is still the one to type. What to tell the user."""
        try:
            self.send_code(ctx, purpose, address)
        except Throttled:
            if CODES.pending_to(ctx.store, ctx.user.subject, purpose) != address:
                raise
            return _("The code we sent is still valid.")
        return ""

    def _consume(self, ctx: FactorContext, purpose: str, address: str, form: MultiDict) -> None:
        code = CODES.typed(form)
        CODES.consume(ctx.store, ctx.user.subject, purpose,
                      CODES.digest(ctx.box, purpose, address, code))

    # -- enrollment -----------------------------------------------------------------------

    def enroll_begin(self, ctx: FactorContext) -> Step:
        # Nothing is sent yet: this page may be a GET, and a person may only be looking.
        return Step(context={"stage": "send", "address": ctx.user.email},
                    state={"stage": "send"})

    @staticmethod
    def _code_page(address: str, notice: str = "") -> Step:
        return Step(context={"stage": "code", "address": address, "digits": CODES.digits,
                             "minutes": CODE_TTL // 60, "notice": notice},
                    state={"stage": "code", "email": address})

    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator | Step:
        address = ctx.user.email
        if state.get("stage") != "code":
            return self._code_page(address, self._send_or_keep(ctx, "enroll", address))
        if state.get("email") != address:  # the account's address changed meanwhile
            raise NotNow(_("Your email address changed. Start again."))
        if form.get("resend"):
            self.send_code(ctx, "enroll", address)
            return self._code_page(address, _("We sent a new code to %(address)s.", address=address))
        self._consume(ctx, "enroll", address, form)
        return Authenticator(type=self.type, name=str(self.label), data={"email": address})

    # -- sign-in --------------------------------------------------------------------------

    @staticmethod
    def _challenge_page(auth: Authenticator, notice: str = "") -> Step:
        # The address in full: the page names the account being signed in to already.
        return Step(context={"address": auth.data["email"], "digits": CODES.digits,
                             "minutes": CODE_TTL // 60, "notice": notice},
                    state={"authenticator_id": auth.id})

    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        auth = next((a for a in factors if self.usable(a)), None)
        if auth is None:
            raise NotNow(_("No email address is set up for codes. Use another method."))
        return self._challenge_page(auth, self._send_or_keep(ctx, "signin", auth.data["email"]))

    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof | Step:
        usable = [a for a in factors if self.usable(a)]
        auth = next((a for a in usable if a.id == state.get("authenticator_id")), None)
        if form.get("resend") and usable:
            auth = auth or usable[0]  # no code went out when the page was shown
            self.send_code(ctx, "signin", auth.data["email"])
            return self._challenge_page(auth, _("We sent a new code."))
        if auth is None:  # removed since the code was sent, or none was sent
            raise NotNow(_("That code has expired. Send a new code."))
        self._consume(ctx, "signin", auth.data["email"], form)
        return Proof(auth, [self.amr])

    def usable(self, authenticator: Authenticator) -> bool:
        return bool((authenticator.data or {}).get("email"))

    def proves_address(self, authenticator: Authenticator, user) -> bool:
        # The code went to this address and came back: the same proof as a verification link.
        return (authenticator.data or {}).get("email") == user.email

    def describe(self, authenticator: Authenticator) -> str:
        address = (authenticator.data or {}).get("email")
        return mask(address) if address else ""
