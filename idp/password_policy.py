"""Which new passwords may be set, after NIST SP 800-63B 5.1.1.2 (memorized secret verifiers).

Everything that sets a password (``idp user create``, and the reset, invitation, change and
sign-up pages) asks ``problem()`` first and shows its answer as it is. The rules, in the order
they are checked (the first that fails is the message):

1. at least the tenant's minimum (``password_min_length``, 8 to 64; never under 8) and at
   most ``MAX_LENGTH`` characters, each Unicode code point counting as one (NIST: at least 64
   SHALL be allowed; the bound keeps what argon2id is handed small);
2. no control characters (C0, DEL, C1) and no lone surrogates: none can be typed into a
   password field, a NUL or line break only arrives from a script or a forged form, and a
   lone surrogate cannot even be encoded to be hashed. Every printable character and the
   space is allowed, Unicode included;
3. not a common or leaked password: the list that ships with idp (``data/README.md``);
4. not the person's email address or its local part, nor the organisation's name or slug
   (NIST's "context-specific words");
5. when ``IDP_PWNED_PASSWORDS_URL`` is set, not in the Pwned Passwords corpus. If that service
   cannot answer, the password is accepted and a warning logged (fail open): rules 1-4 still
   held, and setting a password must not depend on a third party being up. Asked last, so a
   password refused here never leaves the process even as a hash prefix.

No composition rules (NIST: SHALL NOT), no hints, no expiry.

Comparisons (3, 4) are made on the NFKC form, case-folded and trimmed, so ``PASSWORD1``,
``Password1 `` and full-width ``ｐａｓｓｗｏｒｄ１`` are all ``password1``. The password is
hashed exactly as typed (``idp.password``), as every stored hash always was: normalising before
hashing (NIST's SHOULD) would stop a password that NFKC changes from matching its old hash.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
import unicodedata
from pathlib import Path
from typing import Protocol

from flask_babel import gettext as _, lazy_gettext as _l

from idp import pwned_passwords
from idp.addresses import normalise_email

MIN_LENGTH = 8  # NIST's floor; a tenant may ask for more
LONGEST_MINIMUM = 64  # the most a tenant may ask for: every password NIST says to allow fits
MAX_LENGTH = 256  # characters; below idp.password's verify bound, so every new one verifies
COMMON_LIST = Path(__file__).parent / "data" / "common-passwords.txt.gz"
# C0 controls (NUL, tab, line breaks…), DEL, C1 controls, and UTF-16 surrogates.
FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# In the page's language when asked in a request (English for the CLI and the admin API).
TOO_LONG = _l("Use at most %(max_length)s characters.", max_length=MAX_LENGTH)
CONTROL = _l("A password cannot contain control characters such as tabs or line breaks.")
COMMON = _l("This password is too common: it appears in lists of leaked passwords. Choose another.")
EMAIL = _l("Choose a password that is not your email address.")
ORGANISATION = _l("Choose a password that is not the name of your organisation.")
BREACHED = _l("This password has appeared in a data breach, so attackers try it first. "
              "Choose another.")

log = logging.getLogger(__name__)


class Named(Protocol):
    """A tenant as any layer holds it (the row, or a request's ``TenantRef``)."""

    name: str
    slug: str


def too_short(min_length: int) -> str:
    return _("Use at least %(min_length)s characters.", min_length=min_length)


def problem(password: str, *, min_length: int = MIN_LENGTH, email: str | None = None,
            tenant: Named | None = None, pwned_url: str | None = None) -> str | None:
    """Why ``password`` may not be set, as the page says it; None when it may."""
    refused = _problem(password, min_length=min_length, email=email, tenant=tenant,
                       pwned_url=pwned_url)
    return None if refused is None else str(refused)


def _problem(password: str, *, min_length: int, email: str | None, tenant: Named | None,
             pwned_url: str | None):
    needed = max(MIN_LENGTH, min_length)
    if len(password) < needed:
        return too_short(needed)
    if len(password) > MAX_LENGTH:
        return TOO_LONG
    if FORBIDDEN.search(password):
        return CONTROL
    folded = fold(password)
    if folded in common_passwords():
        return COMMON
    if email and folded in _email_words(email):
        return EMAIL
    if tenant is not None and folded in _tenant_words(tenant):
        return ORGANISATION
    if pwned_url:
        return _breached(pwned_url, password)
    return None


def fold(text: str) -> str:
    """The one form passwords are compared in: NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _email_words(email: str) -> set[str]:
    address = normalise_email(email)
    return {fold(address), fold(address.rpartition("@")[0])} - {""}


def _tenant_words(tenant: Named) -> set[str]:
    name = fold(tenant.name or "")
    return {name, "".join(name.split()), fold(tenant.slug or "")} - {""}


def _breached(url: str, password: str) -> str | None:
    try:
        seen = pwned_passwords.times_seen(url, password)
    except pwned_passwords.Unavailable as e:
        log.warning("Pwned Passwords could not be asked (%s): the password was accepted on the "
                    "shipped list's word alone", e)
        return None
    return BREACHED if seen else None


# -- the shipped list, once per worker ---------------------------------------------------------

_loaded: frozenset[str] | None = None
_loading = threading.Lock()


def common_passwords() -> frozenset[str]:
    """The shipped list's entries of ``MIN_LENGTH`` characters or more, folded, read on first
    use (one worker's threads read it once) and kept for the life of the process (~4 MB)."""
    global _loaded
    if _loaded is None:
        with _loading:
            if _loaded is None:
                _loaded = _read(COMMON_LIST)
    return _loaded


def _read(path: Path) -> frozenset[str]:
    # A shorter entry is never reached: the length rule refuses such a password first.
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return frozenset(word for word in (fold(line.rstrip("\n")) for line in lines)
                         if len(word) >= MIN_LENGTH)
