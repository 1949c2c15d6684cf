"""``upstream_trust.progress_for`` as a decision table: what an upstream's word puts in the
sign-in, and the ``amr``/``acr`` that come out of it (``claims.amr_and_acr``)."""

from __future__ import annotations

import pytest

from idp.federation.endpoints import endpoint_problem
from idp.journey.upstream_trust import progress_for
from idp.policy import Primary, amr_and_acr

LISTED = ["urn:example:loa:2fa"]
TRUSTED, UNTRUSTED = Primary.FEDERATION_TRUSTED, Primary.FEDERATION

# (trust_mfa, upstream claims) -> (primary, amr, acr)
TABLE = [
    ("never", {"amr": ["pwd", "otp", "mfa"], "acr": "urn:example:loa:2fa"}, UNTRUSTED, ["fed"], "pwd"),
    ("always", {"amr": ["otp"]}, TRUSTED, ["fed"], "pwd"),
    ("always", {"amr": ["hwk"]}, TRUSTED, ["fed"], "pwd"),
    ("always", {"amr": ["pwd", "kba"]}, TRUSTED, ["fed"], "pwd"),
    ("always", {"amr": ["pwd", "otp"]}, TRUSTED, ["fed", "pwd", "otp", "mfa"], "mfa"),
    ("when_upstream_mfa", {"amr": ["sms"]}, UNTRUSTED, ["fed"], "pwd"),
    ("when_upstream_mfa", {"amr": ["otp", "hwk"]}, UNTRUSTED, ["fed"], "pwd"),  # one kind
    ("when_upstream_mfa", {"amr": ["mfa"]}, TRUSTED, ["fed", "mfa"], "mfa"),
    ("when_upstream_mfa", {"amr": ["hwk", "user"]}, TRUSTED, ["fed", "hwk", "user", "mfa"], "phr"),
    ("when_upstream_mfa", {"amr": ["pwd"], "acr": "urn:example:loa:nomfa"}, UNTRUSTED, ["fed"], "pwd"),
    ("when_upstream_mfa", {"amr": ["pwd"], "acr": "mfa"}, UNTRUSTED, ["fed"], "pwd"),
    ("when_upstream_mfa", {"amr": ["pwd"], "acr": "urn:example:loa:2fa"}, TRUSTED,
     ["fed", "pwd", "mfa"], "mfa"),
    ("when_upstream_mfa", {"acr": "urn:example:loa:2fa"}, TRUSTED, ["fed", "mfa"], "mfa"),
    ("when_upstream_mfa", {"amr": "pwd otp", "acr": ["urn:example:loa:2fa"]}, UNTRUSTED, ["fed"], "pwd"),
]


@pytest.mark.parametrize("trust_mfa,claims,primary,amr,acr", TABLE)
def test_what_an_upstream_sign_in_counts_for(trust_mfa, claims, primary, amr, acr):
    proof = progress_for(trust_mfa, LISTED, claims)
    assert proof.primary is primary
    assert amr_and_acr(proof.methods) == (amr, acr)


ISSUER = "https://sso.acme.test"
# (issuer, endpoint, url, listed hosts) -> refused?
ENDPOINTS = [
    (ISSUER, "token_endpoint", "https://sso.acme.test/token", (), False),
    (ISSUER, "token_endpoint", "https://sso.acme.test:443/token", (), False),
    (ISSUER, "token_endpoint", "http://sso.acme.test/token", (), True),
    (ISSUER, "token_endpoint", "https://sso.acme.test:8443/token", (), True),
    (ISSUER, "token_endpoint", "https://127.0.0.1/token", (), True),
    (ISSUER, "jwks_uri", "https://keys.acme.test/jwks", (), True),
    (ISSUER, "jwks_uri", "https://keys.acme.test/jwks", ("keys.acme.test",), False),
    (ISSUER, "jwks_uri", "https://keys.acme.test:8443/jwks", ("keys.acme.test",), True),
    (ISSUER, "userinfo_endpoint", "https://user@sso.acme.test/userinfo", (), True),
    (ISSUER, "authorization_endpoint", "https://login.acme.test/authorize", (), False),
    (ISSUER, "authorization_endpoint", "http://login.acme.test/authorize", (), True),
    (ISSUER, "token_endpoint", None, (), True),
    ("http://127.0.0.1:9000", "token_endpoint", "http://127.0.0.1:9001/token", (), False),
    ("http://127.0.0.1:9000", "token_endpoint", "http://10.0.0.5/token", (), True),
    ("http://127.0.0.1:9000", "token_endpoint", "https://oauth.example.test/token", (), True),
]


@pytest.mark.parametrize("issuer,name,url,hosts,refused", ENDPOINTS)
def test_where_discovery_may_send_us(issuer, name, url, hosts, refused):
    assert (endpoint_problem(issuer, name, url, hosts) is not None) is refused
