"""How often a password appears in Pwned Passwords' breach corpus, asked without giving it away.

The k-anonymity range API (haveibeenpwned.com/API/v3#PwnedPasswords): we send only the first
five hex digits of the password's SHA-1 (``GET {base}/range/ABCDE``) and receive every known
suffix that starts with them, one ``SUFFIX:COUNT`` per line; the password's own suffix is
looked up here, so the service never learns which of the hundreds of hashes we meant. With
``Add-Padding: true`` the answer is padded with random suffixes of count 0, so its length does
not tell an observer of the encrypted traffic which prefix it was: a count of 0 is no hit.

Off unless ``IDP_PWNED_PASSWORDS_URL`` names the service. Its answer is read within bounds
(``idp.untrusted``): a short timeout, a whole-answer deadline, at most ``MAX_ANSWER`` bytes,
no redirect followed, every line checked. Whatever goes wrong raises ``Unavailable``, whose
message never holds the password, its hash or the prefix; what to do then is the caller's
(``idp.password_policy`` accepts and logs a warning).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator

import requests

from idp.untrusted import UntrustedInput, read_bounded

TIMEOUT = (2.0, 3.0)  # seconds to connect, and to wait for each part of the answer
DEADLINE = 5.0  # seconds for the whole answer: a server that drips bytes is cut off
# A padded answer is 800 to 1,000 lines of about 40 bytes; a hundred times that is not one.
MAX_ANSWER = 1024 * 1024
LINE = re.compile(r"([0-9A-F]{35}):(\d{1,12})")


class Unavailable(Exception):
    """The service did not give an answer we can read; the message says why, in words."""


def times_seen(base_url: str, password: str) -> int:
    """How many times the breach corpus at ``base_url`` has seen ``password`` (0: never)."""
    digest = hashlib.sha1(password.encode("utf-8", "surrogatepass")).hexdigest().upper()
    prefix, suffix = digest[:5], digest[5:]
    try:
        with requests.get(f"{base_url.rstrip('/')}/range/{prefix}", stream=True,
                          timeout=TIMEOUT, allow_redirects=False,
                          headers={"Add-Padding": "true", "User-Agent": "idp-password-policy"}) as answer:
            if answer.status_code != 200:
                raise Unavailable(f"it answered HTTP {answer.status_code}")
            body = read_bounded(_until(time.monotonic() + DEADLINE, answer.iter_content(8192)),
                                what="range answer", max_length=MAX_ANSWER)
    except requests.Timeout:
        raise Unavailable("it did not answer in time") from None
    except requests.ConnectionError:
        raise Unavailable("it could not be reached") from None
    except requests.RequestException as e:
        raise Unavailable(f"the request failed ({type(e).__name__})") from None
    except UntrustedInput as e:
        raise Unavailable(str(e)) from None
    return _count(body, suffix)


def _until(deadline: float, chunks) -> Iterator[bytes]:
    for chunk in chunks:
        if time.monotonic() > deadline:
            raise requests.Timeout()
        yield chunk


def _count(body: bytes, suffix: str) -> int:
    """The count on ``suffix``'s line of a range answer, 0 without one (or on a padding line)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise Unavailable("its answer is not a range answer (not plain text)") from None
    found = 0
    for line in text.splitlines():
        if not line:
            continue
        match = LINE.fullmatch(line)
        if match is None:
            raise Unavailable("its answer is not a range answer (a line is not SUFFIX:COUNT)")
        if match.group(1) == suffix:
            found = int(match.group(2))
    return found
