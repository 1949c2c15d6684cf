"""Input from outside, bounded where it enters: JSON someone else wrote, bodies another
service sends, and addresses we are asked to send a browser to.

Everything here answers with ``UntrustedInput`` (a ``ValueError``) and a reason a person can
read, so a caller turns it into a 4xx or an OAuth error, never a 500. Python's ``json``
recurses once per nesting level, so ``[[[[...`` a few thousand deep raises RecursionError,
which no ``except ValueError`` catches: the depth is bounded here, and only here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MAX_DEPTH = 16  # the deepest JSON we read (a WebAuthn credential or a JWK set) is 4 levels
MAX_LENGTH = 64 * 1024

# C0 controls, DEL and C1 controls: no address a browser is sent to has a reason to hold
# one, and CR/LF would split the Location header (werkzeug refuses it with a 500).
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UntrustedInput(ValueError):
    """Input from outside that we do not read; the message says why."""


def parse_json(raw: str | bytes, *, what: str, max_length: int = MAX_LENGTH,
               max_depth: int = MAX_DEPTH) -> object:
    """``raw`` as JSON, at most ``max_length`` characters (bytes) long and ``max_depth``
    arrays or objects deep."""
    if len(raw) > max_length:
        raise UntrustedInput(f"The {what} is too long.")
    try:
        value = json.loads(raw)
    except RecursionError:  # nested past the interpreter's stack: deeper than any bound
        raise UntrustedInput(f"The {what} is nested too deeply.") from None
    except ValueError:  # includes UnicodeDecodeError for bytes that are not UTF-8
        raise UntrustedInput(f"The {what} is not valid JSON.") from None
    if _deeper_than(value, max_depth):
        raise UntrustedInput(f"The {what} is nested too deeply.")
    return value


def parse_json_object(raw: str | bytes, *, what: str, max_length: int = MAX_LENGTH,
                      max_depth: int = MAX_DEPTH) -> dict:
    """``parse_json``, where only a JSON object will do."""
    value = parse_json(raw, what=what, max_length=max_length, max_depth=max_depth)
    if not isinstance(value, dict):
        raise UntrustedInput(f"The {what} must be a JSON object.")
    return value


def read_bounded(chunks: Iterable[bytes], *, what: str, max_length: int = MAX_LENGTH) -> bytes:
    """The body ``chunks`` make up (a streamed response's ``iter_content``), refused once it
    passes ``max_length`` bytes: nothing past the bound is read, however much is sent."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > max_length:
            raise UntrustedInput(f"The {what} is too long.")
    return bytes(body)


def _deeper_than(value: object, limit: int) -> bool:
    # A loop, not recursion: the point is not to recurse over what someone else nested.
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            pending.extend((child, depth + 1)
                           for child in (item.values() if isinstance(item, dict) else item))
    return False


def local_path(value: str | None, prefix: str) -> str | None:
    """``value`` when it is a path under ``prefix`` on this host, else None: never another
    host (``//evil``, ``/\\evil``), never a control character, never a dot segment that a
    browser would resolve out of ``prefix`` (``/t/acme/../x``, ``%2e%2e`` included)."""
    if not value or not value.startswith(prefix) or "//" in value or "\\" in value \
            or CONTROL.search(value):
        return None
    path = urlsplit(value).path
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return None
    return value


def unstorable(value, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why parsed JSON ``value`` cannot be taken as it is, or None: "deep" (nested more than
    ``max_depth`` levels), "nul" (a string holds a NUL) or "surrogate" (a string holds a lone
    surrogate, which is no UTF-8): no database stores the last two. Walked without recursion,
    so no depth the parser accepted can exhaust the stack here."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth > max_depth:
            return "deep"
        if isinstance(item, str):
            if "\x00" in item:
                return "nul"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "surrogate"
        elif isinstance(item, dict):
            pending += [(k, depth + 1) for k in item] + [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            pending += [(v, depth + 1) for v in item]
    return None
