"""A portal that registered itself (RFC 7591) at the live ``idp serve`` process, then signs a
person in with Authlib's OAuth 2 client and its new credentials; a service registered the same
way gets a client-credentials token. The developer's script is ``requests``: Authlib has no
registration client."""

from __future__ import annotations

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.registration import creds_of, initial_token, metadata
from tests.support.relying_party import ID_TOKEN_ALGS, code_flow, discovery
from tests.support.ports import free_port


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def test_a_self_registered_portal_signs_people_in(app, live_server, live_world):
    provider = discovery(live_world.issuer)
    callback = f"http://127.0.0.1:{free_port()}/callback"
    r = requests.post(provider["registration_endpoint"], json=metadata(callback),
                      headers={"Authorization": f"Bearer {initial_token(app, live_world)}"},
                      timeout=10)
    assert r.status_code == 201, r.text
    registered = r.json()
    sign_in = code_flow(live_server, live_world, provider, creds=creds_of(registered))
    keys = KeySet.import_key_set(requests.get(provider["jwks_uri"], timeout=10).json())
    claims = jwt.decode(sign_in.token["id_token"], keys, algorithms=ID_TOKEN_ALGS).claims
    assert claims["aud"] in (registered["client_id"], [registered["client_id"]])
    assert claims["iss"] == live_world.issuer
    userinfo = sign_in.oauth.get(provider["userinfo_endpoint"])
    assert userinfo.json()["email"].lower() == live_world.alice.lower()
    # The refresh token (registered grant) rotates for the new client too.
    refreshed = sign_in.oauth.refresh_token(provider["token_endpoint"],
                                            refresh_token=sign_in.token["refresh_token"])
    assert refreshed["access_token"] != sign_in.token["access_token"]


def test_a_self_registered_service_gets_tokens_then_deregisters(app, live_server, live_world):
    provider = discovery(live_world.issuer)
    r = requests.post(provider["registration_endpoint"], json={
        "client_name": "Nightly export", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_post", "scope": "openid"},
        headers={"Authorization": f"Bearer {initial_token(app, live_world)}"}, timeout=10)
    assert r.status_code == 201, r.text
    registered = r.json()
    assert registered["response_types"] == []
    service = OAuth2Session(registered["client_id"], registered["client_secret"],
                            token_endpoint_auth_method="client_secret_post")
    token = service.fetch_token(provider["token_endpoint"], grant_type="client_credentials")
    assert token["token_type"].lower() == "bearer"
    gone = requests.delete(registered["registration_client_uri"], timeout=10, headers={
        "Authorization": f"Bearer {registered['registration_access_token']}"})
    assert gone.status_code == 204
    r = requests.post(provider["token_endpoint"], timeout=10, data={
        "grant_type": "client_credentials", "client_id": registered["client_id"],
        "client_secret": registered["client_secret"]})
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"


def test_parallel_registrations_share_the_last_use_of_a_token(app, live_server, live_world):
    from concurrent.futures import ThreadPoolExecutor

    provider = discovery(live_world.issuer)
    token = initial_token(app, live_world, uses=1)

    def attempt(i):
        return requests.post(provider["registration_endpoint"], timeout=30,
                             json=metadata(f"https://app{i}.partner.test/cb"),
                             headers={"Authorization": f"Bearer {token}"}).status_code

    with ThreadPoolExecutor(6) as pool:
        answers = sorted(pool.map(attempt, range(6)))
    assert answers == [201, 401, 401, 401, 401, 401]
