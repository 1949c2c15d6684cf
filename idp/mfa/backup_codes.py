"""Backup codes: ten single-use codes, shown once, kept only as keyed hashes.

Enrolling again replaces the whole set (``several = False``), which invalidates the old codes.
A code is spent by one atomic UPDATE ... WHERE used_at IS NULL, so two requests racing with
the same code cannot both pass.
"""

from __future__ import annotations

import secrets

from sqlalchemy import func, select, update
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from idp.mfa import register
from idp.mfa.base import Factor, FactorContext, Proof, Step, WrongAnswer
from idp.models import Authenticator, BackupCode
from idp.models.base import utcnow

COUNT = 10
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: easy to copy from paper


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _i in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalise(code: str) -> str:
    return "".join(ch for ch in (code or "").lower() if ch.isalnum())[:32]


@register
class BackupCodes(Factor):
    type = "backup"
    label = _l("Backup codes")
    in_sentence = _l("backup codes")
    policy_help = _l("One-time codes for when the usual method is out of reach.")
    amr = "otp"
    rank = 90
    keeps_challenge = False  # its page shows what the answer is checked against
    several = False
    recovery = True  # set up once a usual factor is held, for when it is out of reach

    def enroll_begin(self, ctx: FactorContext) -> Step:
        codes = [_new_code() for _i in range(COUNT)]
        hashes = [ctx.box.keyed_hash("backup-code", normalise(c)) for c in codes]
        return Step(context={"codes": codes}, state={"hashes": hashes})

    def enroll_finish(self, ctx: FactorContext, state: dict, form: MultiDict) -> Authenticator:
        authenticator = Authenticator(type=self.type, name=str(self.label), data={})
        authenticator.backup_codes = [BackupCode(code_hash=h) for h in state["hashes"]]
        return authenticator

    def challenge_begin(self, ctx: FactorContext, factors: list[Authenticator]) -> Step:
        return Step(context={"remaining": sum(self.remaining(a) for a in factors)})

    def verify(self, ctx: FactorContext, factors: list[Authenticator], state: dict,
               form: MultiDict) -> Proof:
        code = normalise(form.get("code", ""))
        if len(code) != 10:
            raise WrongAnswer(_("That backup code is not right. Try again."))
        digest = ctx.box.keyed_hash("backup-code", code)
        ids = [a.id for a in factors]
        spent = ctx.db.execute(
            update(BackupCode)
            .where(BackupCode.authenticator_id.in_(ids), BackupCode.code_hash == digest,
                   BackupCode.used_at.is_(None))
            .values(used_at=utcnow())
            .returning(BackupCode.authenticator_id)
        ).scalar_one_or_none()
        if spent is None:
            raise WrongAnswer(_("That backup code is not right, or was used already."))
        authenticator = next(a for a in factors if a.id == spent)
        left = ctx.db.scalar(select(func.count()).select_from(BackupCode).where(
            BackupCode.authenticator_id == spent, BackupCode.used_at.is_(None)))
        ctx.audit("mfa.backup_code_used", authenticator_id=spent, remaining=left)
        return Proof(authenticator, [self.amr])

    def usable(self, authenticator: Authenticator) -> bool:
        return self.remaining(authenticator) > 0

    def usable_where(self):
        unspent = select(BackupCode.authenticator_id).where(BackupCode.used_at.is_(None))
        return Authenticator.id.in_(unspent)

    @staticmethod
    def remaining(authenticator: Authenticator) -> int:
        return sum(1 for c in authenticator.backup_codes if c.used_at is None)

    def describe(self, authenticator: Authenticator) -> str:
        return ngettext("%(num)d of %(total)d left", "%(num)d of %(total)d left",
                        self.remaining(authenticator), total=COUNT)
