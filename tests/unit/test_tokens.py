"""Access tokens are signed by ``idp.oidc.tokens.sign_es256``: every JOSE reader must accept them."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey

from idp.oidc.tokens import sign_es256

HEADER = {"alg": "ES256", "kid": "es256-test", "typ": "at+jwt"}
CLAIMS = {"iss": "https://idp.example/t/acme", "sub": "ütf-8 subject", "scope": "openid api",
          "exp": 2_000_000_000, "jti": "abc"}


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_joserfc_reads_the_header_and_claims_signed_here():
    key = ECKey.generate_key("P-256", private=True)
    token = sign_es256(HEADER, CLAIMS, key.private_key)
    decoded = jwt.decode(token, key, algorithms=["ES256"])
    assert decoded.header == HEADER and decoded.claims == CLAIMS


def test_the_signature_is_r_and_s_of_p256_over_the_first_two_parts():
    """RFC 7518 3.4, checked with the public key alone and no JOSE library."""
    key = ECKey.generate_key("P-256", private=True)
    header, payload, signature = sign_es256(HEADER, CLAIMS, key.private_key).split(".")
    raw = _unb64(signature)
    assert len(raw) == 64 and "=" not in signature
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = key.private_key.public_key()
    public.verify(der, f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(der, f"{header}.{payload}x".encode(), ec.ECDSA(hashes.SHA256()))


def test_another_key_does_not_verify_it():
    token = sign_es256(HEADER, CLAIMS, ECKey.generate_key("P-256", private=True).private_key)
    with pytest.raises(BadSignatureError):
        jwt.decode(token, ECKey.generate_key("P-256", private=True), algorithms=["ES256"])
