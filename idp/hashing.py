"""Hashes for high-entropy secrets: client secrets, authorization codes, refresh tokens.

These are 256-bit random values, so a fast SHA-256 with a purpose tag is as strong as a slow
hash here (DESIGN.md's performance budget) and keeps the token endpoint fast. Unkeyed on
purpose: rotating ``IDP_SECRET_KEY`` must not invalidate every client secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def digest(purpose: str, value: str) -> str:
    return hashlib.sha256(f"{purpose}\x00{value}".encode()).hexdigest()


def matches(purpose: str, value: str, stored: str | None) -> bool:
    if not stored or not isinstance(value, str):
        return False
    return hmac.compare_digest(digest(purpose, value), stored)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
