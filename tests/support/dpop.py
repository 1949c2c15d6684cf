"""A DPoP client's side (RFC 9449): a key pair and the proofs it makes, with joserfc.

Authlib's OAuth 2 client has no DPoP: a test attaches ``DPoP: holder.proof(...)`` to each
request itself, as a portal would with a small wrapper around its HTTP client.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time

from joserfc import jws, jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

TOKEN_PATH = "/token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Holder:
    """A client's DPoP key and the proofs it signs."""

    def __init__(self, alg: str = "ES256"):
        self.alg = alg
        self.key = {"ES256": lambda: ECKey.generate_key("P-256"),
                    "RS256": lambda: RSAKey.generate_key(2048),
                    "PS256": lambda: RSAKey.generate_key(2048),
                    "EdDSA": lambda: OKPKey.generate_key("Ed25519")}[alg]()

    @property
    def public_jwk(self) -> dict:
        return self.key.as_dict(private=False)

    @property
    def jkt(self) -> str:
        """The key's RFC 7638 thumbprint, as joserfc computes it."""
        return self.key.thumbprint()

    def proof(self, htm: str, htu: str, *, access_token: str | None = None,
              nonce: str | None = None, iat: int | None = None, jti: str | None = None,
              jwk: dict | None = None, signer=None, **claims) -> str:
        """A proof for ``htm htu``; ``jwk``/``signer`` put another key in the header or sign
        with another key than the one the header shows."""
        payload = {"jti": jti or secrets.token_urlsafe(16), "htm": htm, "htu": htu,
                   "iat": int(time.time()) if iat is None else iat, **claims}
        if access_token is not None:
            payload["ath"] = _b64(hashlib.sha256(access_token.encode()).digest())
        if nonce is not None:
            payload["nonce"] = nonce
        header = {"typ": "dpop+jwt", "alg": self.alg, "jwk": jwk or self.public_jwk}
        return jwt.encode(header, payload, (signer or self).key, algorithms=[self.alg])


def unsigned_proof(htm: str, htu: str, jwk: dict) -> str:
    """A proof with ``alg: none`` (no signature at all)."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": jwk}
    payload = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time())}
    return (_b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode()) + ".")


def hmac_proof(htm: str, htu: str) -> str:
    """A proof MAC'd with a shared secret (HS256), its key in the header."""
    key = OctKey.generate_key(256)
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": key.as_dict(private=False)}
    payload = {"jti": secrets.token_urlsafe(16), "htm": htm, "htu": htu, "iat": int(time.time())}
    return jws.serialize_compact(header, json.dumps(payload).encode(), key, algorithms=["HS256"])
