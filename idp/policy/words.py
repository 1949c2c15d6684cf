"""The policy's sentences, in English and translatable: ``_("...", name=value)`` is the English
text (a ``str``, so the policy's callers and tests read it as they always did) that keeps its
message and values, and a page says it in its reader's language (``idp.i18n.say``, applied to
everything a template shows). The policy stays pure: this is only the standard library.
``ngettext`` is the same for a sentence with a number. Values may themselves be ``Said``
(translated too) or dates (written as the reader writes them)."""

from __future__ import annotations

from datetime import date


class Said(str):
    """English text that remembers its message (``msgid``, ``plural``, ``n``) and ``values``."""

    msgid: str
    plural: str | None
    n: int | None
    values: dict

    def __new__(cls, msgid: str, plural: str | None = None, n: int | None = None, **values):
        english = plural if plural is not None and n != 1 else msgid
        if values or n is not None:
            english = english % {"num": n, **{k: _english(v) for k, v in values.items()}}
        self = super().__new__(cls, english)
        self.msgid, self.plural, self.n, self.values = msgid, plural, n, values
        return self

    def __reduce__(self):  # copied or pickled: what it says, in English
        return str, (str(self),)


def _english(value):
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    return value


def _(msgid: str, **values) -> Said:
    return Said(msgid, **values)


def ngettext(singular: str, plural: str, n: int, **values) -> Said:
    return Said(singular, plural, n, **values)


# A role as a sentence names it (``idp.roles`` holds the same words for the console).
ROLE_NAMES = {"admin": _("Administrator"), "mfa-admin": _("Two-factor administrator"),
              "member": _("Member")}


def role_name(role: str):
    return ROLE_NAMES.get(role, role)
