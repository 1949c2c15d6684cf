"""Solve the ALTCHA proof-of-work on a page, as the vendored widget does in a browser."""

from __future__ import annotations

import base64
import html
import json
import re

import altcha

CHALLENGE = re.compile(r'challengejson="([^"]+)"')


def challenge_on(page_text: str) -> dict | None:
    m = CHALLENGE.search(page_text)
    return json.loads(html.unescape(m.group(1))) if m else None


def solve(page_text: str) -> str:
    """The widget's form value: base64 JSON of the challenge and the number found."""
    challenge = challenge_on(page_text)
    assert challenge, "no CAPTCHA on this page"
    solution = altcha.solve_challenge_v1(challenge["challenge"], challenge["salt"],
                                         challenge["algorithm"], challenge.get("maxNumber") or challenge["maxnumber"])
    payload = {"algorithm": challenge["algorithm"], "challenge": challenge["challenge"],
               "number": solution.number, "salt": challenge["salt"], "signature": challenge["signature"]}
    return base64.b64encode(json.dumps(payload).encode()).decode()
