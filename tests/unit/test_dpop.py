"""DPoP proof checks (``idp.oidc.dpop``) that need no app: how long a server nonce lives, how
``htu`` is compared, and the store's part in replay (RFC 9449 4.3, 8)."""

from __future__ import annotations

import hashlib

import fakeredis
import pytest

from idp.oidc import dpop
from tests.support.dpop import Holder

URL = "https://idp.example/t/acme/token"
SECRET = "s" * 64
NOW = 1_800_000_000.0


def expected(**kw) -> dpop.Expected:
    return dpop.Expected("POST", URL, 7, SECRET, **kw)


@pytest.mark.parametrize("steps_back, accepted", [(0, True), (1, True), (2, False)])
def test_a_nonce_lives_for_its_time_step_and_the_next(steps_back, accepted):
    holder = Holder()
    issued_at = NOW - steps_back * dpop.NONCE_STEP
    nonce = dpop.nonce(SECRET, 7, issued_at)
    proof = holder.proof("POST", URL, nonce=nonce, iat=int(NOW))
    store = fakeredis.FakeRedis()
    if accepted:
        assert dpop.check(proof, expected(nonce_required=True), store, now=NOW).jkt == holder.jkt
    else:
        with pytest.raises(dpop.NonceNeeded) as refused:
            dpop.check(proof, expected(nonce_required=True), store, now=NOW)
        assert refused.value.fresh == dpop.nonce(SECRET, 7, NOW)


def test_a_nonce_of_another_tenant_is_not_ours():
    proof = Holder().proof("POST", URL, nonce=dpop.nonce(SECRET, 8, NOW), iat=int(NOW))
    with pytest.raises(dpop.NonceNeeded):
        dpop.check(proof, expected(nonce_required=True), fakeredis.FakeRedis(), now=NOW)


@pytest.mark.parametrize("a, b, same", [
    ("https://idp.example/t/acme/token", "HTTPS://IDP.EXAMPLE:443/t/acme/token?x=1#y", True),
    ("https://idp.example/t/acme/token", "https://idp.example/t/%61cme/token", True),
    ("https://idp.example/t/acme/token", "http://idp.example/t/acme/token", False),
    ("https://idp.example/t/acme/token", "https://idp.example:8443/t/acme/token", False),
    ("https://idp.example/t/acme/token", "https://idp.example/t/ACME/token", False),
    ("https://idp.example/t/acme/token", "not a url", False),
])
def test_htu_is_compared_after_rfc3986_normalisation(a, b, same):
    assert (dpop.normalised_url(a) == dpop.normalised_url(b)) is same


def test_a_refused_proof_spends_no_jti():
    holder = Holder()
    store = fakeredis.FakeRedis()
    stale = holder.proof("POST", URL, jti="one", iat=int(NOW) - 1000)
    with pytest.raises(dpop.InvalidProof):
        dpop.check(stale, expected(), store, now=NOW)
    fresh = holder.proof("POST", URL, jti="one", iat=int(NOW))
    assert dpop.check(fresh, expected(), store, now=NOW).jti == "one"
    with pytest.raises(dpop.InvalidProof, match="used already"):
        dpop.check(fresh, expected(), store, now=NOW)
    key = dpop.JTI_KEY.format(holder.jkt, hashlib.sha256(b"one").hexdigest()[:32])
    assert 0 < store.ttl(key) <= dpop.REPLAY_TTL  # kept while the proof's iat is acceptable


def test_a_weak_rsa_key_is_refused():
    from joserfc.jwk import RSAKey

    holder = Holder("RS256")
    holder.key = RSAKey.generate_key(1024)
    with pytest.raises(dpop.InvalidProof, match="2048 to 8192 bits"):
        dpop.check(holder.proof("POST", URL, iat=int(NOW)), expected(), fakeredis.FakeRedis(),
                   now=NOW)


def test_an_rsa_key_with_a_huge_exponent_is_refused_before_any_signature_work():
    # A public exponent as long as the modulus makes one verification cost as much as a
    # private-key operation (~10 ms at 3072 bits, 80 times a normal proof): refused unread.
    import base64
    import secrets

    holder = Holder("RS256")
    jwk = dict(holder.public_jwk)
    e = secrets.randbits(2047) | 1 | (1 << 2046)
    jwk["e"] = base64.urlsafe_b64encode(e.to_bytes(256, "big")).rstrip(b"=").decode()
    proof = holder.proof("POST", URL, iat=int(NOW), jwk=jwk)
    with pytest.raises(dpop.InvalidProof, match="exponent"):
        dpop.check(proof, expected(), fakeredis.FakeRedis(), now=NOW)
