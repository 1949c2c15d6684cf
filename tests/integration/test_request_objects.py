"""Signed request objects (JAR, RFC 9101) at /authorize and pushed to /par, at the live server.

The relying party signs its authorization request with its own key (joserfc); we use the
request object's parameters only, and refuse any we cannot trust: unsigned, HMAC, another
key, for another audience or issuer, expired, or naming another client.
"""

from __future__ import annotations

import time

import pytest
import requests
from authlib.common.urls import add_params_to_uri

from tests.support.journey import query
from tests.support.par import (authorization_params, client_with, hmac_key, oauth, push,
                               request_object, stranger_key, unsigned_request_object)
from tests.support.relying_party import PendingSignIn, browse, discovery


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture
def provider(live_world) -> dict:
    return discovery(live_world.issuer)


@pytest.fixture
def signer(app, live_world):
    """A confidential client with a P-256 key of its own registered."""
    return client_with(app, live_world, signing_key=True)


def authorize_with(provider, creds, token: str, **outer):
    return requests.get(provider["authorization_endpoint"], allow_redirects=False, params={
        "client_id": creds.client_id, "request": token, **outer})


def test_discovery_advertises_request_objects(provider):
    assert provider["request_parameter_supported"] is True
    assert "ES256" in provider["request_object_signing_alg_values_supported"]
    assert not {"none", "HS256"} & set(provider["request_object_signing_alg_values_supported"])


def test_signed_request_at_authorize_signs_in(live_server, live_world, provider, signer):
    creds = signer.creds
    params, verifier = authorization_params(creds)
    token = request_object(signer.key, live_world.issuer, params)
    # Only the request object's parameters count (RFC 9101 6.3): a state beside it is ignored.
    url = add_params_to_uri(provider["authorization_endpoint"],
                            [("client_id", creds.client_id), ("request", token),
                             ("state", "outer")])
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      creds.redirect_uri)
    assert query(callback)["state"] == params["state"]
    PendingSignIn(oauth(creds, provider), url, verifier, params["state"],
                  params["nonce"]).finish(provider, callback)


def test_signed_request_pushed_to_par_signs_in(live_server, live_world, provider, signer):
    creds = signer.creds
    session = oauth(creds, provider)
    params, verifier = authorization_params(creds)
    token = request_object(signer.key, live_world.issuer, params)
    answer = push(session, provider, {"client_id": creds.client_id, "request": token})
    assert answer.status_code == 201, answer.text
    url = add_params_to_uri(provider["authorization_endpoint"], [
        ("client_id", creds.client_id), ("request_uri", answer.json()["request_uri"])])
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      creds.redirect_uri)
    PendingSignIn(session, url, verifier, params["state"], params["nonce"]).finish(provider,
                                                                                  callback)


def _forgeries(signer, issuer, params, client_secret):
    now = int(time.time())
    return {
        "alg none": unsigned_request_object(issuer, params),
        "HS256 with the client secret": request_object(hmac_key(client_secret), issuer,
                                                       params, alg="HS256"),
        "another key": request_object(stranger_key(), issuer, params, alg="RS256"),
        "wrong aud": request_object(signer.key, issuer, params, aud="https://other.test"),
        "wrong iss": request_object(signer.key, issuer, params, iss="someone-else"),
        "expired": request_object(signer.key, issuer, params, exp=now - 5, nbf=now - 600,
                                  iat=now - 600),
        "no exp": request_object(signer.key, issuer, params, exp=None),
        "valid for a day": request_object(signer.key, issuer, params, exp=now + 86400),
        "not valid yet": request_object(signer.key, issuer, params, nbf=now + 3600),
        "client_id mismatch": request_object(signer.key, issuer,
                                             {**params, "client_id": "someone-else"},
                                             iss=params["client_id"]),
        "not a JWT": "definitely.not.a-jwt",
    }


FORGERIES = ["alg none", "HS256 with the client secret", "another key", "wrong aud",
             "wrong iss", "expired", "no exp", "valid for a day", "not valid yet",
             "client_id mismatch", "not a JWT"]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_untrustworthy_request_object_is_refused_at_authorize(live_world, provider, signer,
                                                              forgery):
    creds = signer.creds
    params, _ = authorization_params(creds)
    token = _forgeries(signer, live_world.issuer, params, creds.client_secret)[forgery]
    # The redirect URI beside it is the client's own: the error can go back there.
    r = authorize_with(provider, creds, token, redirect_uri=creds.redirect_uri, state="outer")
    assert r.status_code == 302 and r.headers["Location"].startswith(creds.redirect_uri + "?")
    answer = query(r.headers["Location"])
    assert answer["error"] == "invalid_request_object", answer
    assert answer["state"] == "outer" and answer["iss"] == live_world.issuer


@pytest.mark.parametrize("forgery", FORGERIES)
def test_untrustworthy_request_object_is_refused_at_par(live_world, provider, signer, forgery):
    creds = signer.creds
    params, _ = authorization_params(creds)
    token = _forgeries(signer, live_world.issuer, params, creds.client_secret)[forgery]
    r = push(oauth(creds, provider), provider, {"client_id": creds.client_id, "request": token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_object", r.text


def test_bad_request_object_without_a_verified_redirect_uri_gets_a_page(live_world, provider,
                                                                        signer):
    params, _ = authorization_params(signer.creds)
    r = authorize_with(provider, signer.creds, unsigned_request_object(live_world.issuer, params))
    assert r.status_code == 400 and "Location" not in r.headers
    assert "Go back to the application" in r.text


def test_registered_alg_is_the_only_one(app, live_world, provider):
    signer = client_with(app, live_world, signing_key=True, request_object_signing_alg="PS256")
    params, _ = authorization_params(signer.creds)
    token = request_object(signer.key, live_world.issuer, params)  # ES256
    r = push(oauth(signer.creds, provider), provider, {"request": token})
    assert r.status_code == 400 and "PS256" in r.json()["error_description"]


def test_client_that_requires_signed_requests(app, live_server, live_world, provider):
    signer = client_with(app, live_world, signing_key=True, require_signed_request_object=True)
    creds = signer.creds
    params, _ = authorization_params(creds)
    r = requests.get(provider["authorization_endpoint"], params=params, allow_redirects=False)
    answer = query(r.headers["Location"])
    assert answer["error"] == "invalid_request" and "signed request object" in \
        answer["error_description"]
    r = push(oauth(creds, provider), provider, params)
    assert r.status_code == 400 and "signed request object" in r.json()["error_description"]
    token = request_object(signer.key, live_world.issuer, params)
    r = authorize_with(provider, creds, token)
    assert r.status_code == 302 and "/login" in r.headers["Location"]  # on to the sign-in


def test_request_uri_from_elsewhere_is_not_fetched(live_world, provider):
    creds = live_world.portal
    r = requests.get(provider["authorization_endpoint"], allow_redirects=False, params={
        "client_id": creds.client_id, "redirect_uri": creds.redirect_uri, "state": "s",
        "request_uri": "https://portal.test/request.jwt"})
    assert query(r.headers["Location"])["error"] == "request_uri_not_supported"


def test_request_object_may_carry_numbers_and_a_claims_object(live_world, provider, signer):
    """OIDC Core 6.1: ``max_age`` a number, ``claims`` a JSON object, inside the JWT."""
    creds = signer.creds
    params, _ = authorization_params(creds)
    token = request_object(signer.key, live_world.issuer, {
        **params, "max_age": 600, "claims": {"id_token": {"acr": {"essential": True,
                                                                  "values": ["mfa"]}}}})
    r = push(oauth(creds, provider), provider, {"request": token})
    assert r.status_code == 201, r.text
    token = request_object(signer.key, live_world.issuer, {**params, "claims": "{not json"})
    r = push(oauth(creds, provider), provider, {"request": token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request"  # as /authorize says
    token = request_object(signer.key, live_world.issuer, {**params, "scope": ["openid"]})
    r = push(oauth(creds, provider), provider, {"request": token})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_object"
