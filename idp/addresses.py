"""Email addresses: the one spelling every lookup, key, search and comparison of an address uses.

An address typed in another form (``Alice@Example.com``, full-width ``ａｌｉｃｅ@example.com``)
is the same address: if any place compared a spelling of its own, the two answers could
differ, and the difference would tell whether an account exists.
"""

from __future__ import annotations

import unicodedata


def normalise_email(email: str) -> str:
    """One spelling per address: NFKC, trimmed, lower-cased (applying it twice changes nothing)."""
    return unicodedata.normalize("NFKC", email).strip().lower()
