"""Keeping factor secrets: TOTP seeds encrypted at rest, short codes as keyed hashes.

Both keys are derived (HKDF) from ``IDP_SECRET_KEY``, so a database dump alone reveals no
seed and allows no offline guessing of 10-character backup codes. Changing IDP_SECRET_KEY
therefore retires enrolled TOTP apps and unused backup codes: keep it stable (README).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret_key: str, purpose: bytes) -> bytes:
    """A 32-byte key of its own for ``purpose``: what one use encrypts, another cannot open."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"idp factor secrets",
                info=purpose).derive(secret_key.encode())


class SecretBox:
    def __init__(self, secret_key: str):
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret_key, b"encrypt")))
        self._mac_key = derive_key(secret_key, b"keyed-hash")

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("cannot decrypt: IDP_SECRET_KEY changed since this was stored") from None

    def keyed_hash(self, purpose: str, value: str) -> str:
        return hmac.new(self._mac_key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def matches(self, purpose: str, value: str, stored: str) -> bool:
        return hmac.compare_digest(self.keyed_hash(purpose, value), stored)
