"""What a client may register as its public keys (``idp.jwks``): public signing keys of the
kinds it may sign with, each refusal saying why."""

from __future__ import annotations

import json

import pytest
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from idp import jwks
from idp.outbound import _max_age


def public(*keys) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def test_public_rsa_ec_and_ed25519_keys_are_accepted():
    document = public(RSAKey.generate_key(2048, parameters={"kid": "r"}),
                      ECKey.generate_key("P-384", parameters={"kid": "e"}),
                      OKPKey.generate_key("Ed25519", parameters={"kid": "o"}))
    assert jwks.check(document) is document
    assert jwks.parse(json.dumps(document)) == document


def test_one_key_needs_no_kid():
    assert jwks.check(public(ECKey.generate_key("P-256")))


@pytest.mark.parametrize("document, words", [
    ({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}, "private part (d)"),
    ({"keys": [RSAKey.generate_key(2048).as_dict(private=True)]}, "private part"),
    ({"keys": [OctKey.generate_key(256).as_dict()]}, "symmetric key"),
    ({"keys": [RSAKey.generate_key(1024).as_dict(private=False)]}, "1024 bits is too short"),
    ({"keys": [{**RSAKey.generate_key(2048).as_dict(private=False), "e": "_" * 400}]},
     "public exponent \"e\" must have at most 32 bits"),
    ({"keys": [ECKey.generate_key("secp256k1").as_dict(private=False)]}, "curve must be one of"),
    ({"keys": [OKPKey.generate_key("X25519").as_dict(private=False)]}, "curve must be one of"),
    ({"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "use": "enc"}]}, "\"use\""),
    (public(ECKey.generate_key("P-256", parameters={"kid": "a"}),
            ECKey.generate_key("P-256", parameters={"kid": "a"})), "two keys have the kid 'a'"),
    (public(ECKey.generate_key("P-256"), ECKey.generate_key("P-256")), "each needs a \"kid\""),
    ({"keys": []}, "holds no key"),
    ({"keys": [{"kty": "EC", "crv": "P-256", "kid": str(i)} for i in range(21)]}, "at most 20"),
    ({"key": []}, "a \"keys\" list"),
    ([], "a \"keys\" list"),
    ({"keys": ["x"]}, "not a JSON object"),
    ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}, "cannot be read"),
])
def test_what_is_refused_and_why(document, words):
    with pytest.raises(jwks.BadKeySet) as refused:
        jwks.check(document)
    assert words in str(refused.value)


def test_text_that_is_not_json_is_refused():
    with pytest.raises(jwks.BadKeySet, match="not JSON"):
        jwks.parse("{keys: ")


@pytest.mark.parametrize("header, seconds", [
    ("max-age=600", 600), ("public, max-age=\"120\"", 120), ("no-store", 0),
    ("no-cache, max-age=600", 0), ("", None), ("max-age=soon", None),
])
def test_how_long_a_fetched_document_may_be_kept(header, seconds):
    assert _max_age(header) == seconds
