"""The whole FAPI 2.0 shape with Authlib's client, over HTTP against a live server: a portal
registered with a key (private_key_jwt), PAR required and DPoP-bound tokens, pushes its request,
the person signs in, the code is redeemed with an assertion and a proof, userinfo answers only to
the proof of the same key, and a refresh keeps the binding."""

from __future__ import annotations

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import ECKey
from sqlalchemy import select

from idp import db as idp_db, directory
from idp.models import Tenant
from tests.support.dpop import Holder
from tests.support.journey import query
from tests.support.par import authorization_params, push
from tests.support.relying_party import browse, discovery
from tests.support.rp import jwt_claims
from tests.support.world import ClientCreds

REDIRECT_URI = "https://fapi-portal.test/callback"


def fapi_client(app, world, key: ECKey) -> str:
    with app.app_context():
        session = idp_db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
        new = directory.create_client(
            session, tenant, "FAPI portal", [REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"], auth_method="private_key_jwt",
            jwks={"keys": [key.as_dict(private=False)]}, require_par=True,
            dpop_bound_access_tokens=True)
        session.commit()
        return new.client.client_id


def test_par_private_key_jwt_and_dpop_from_push_to_userinfo(monkeypatch, app, live_server,
                                                            live_world):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the live server is plain http
    key = ECKey.generate_key("P-256", parameters={"kid": "portal-1"})
    client_id = fapi_client(app, live_world, key)
    provider = discovery(live_world.issuer)
    assert provider["pushed_authorization_request_endpoint"] == f"{live_world.issuer}/par"
    oauth = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt",
                          redirect_uri=REDIRECT_URI, scope="openid profile email offline_access")
    oauth.register_client_auth_method(PrivateKeyJWT(alg="ES256"))
    holder = Holder()

    # PAR is required: the request straight to /authorize is refused, back at the portal.
    params, verifier = authorization_params(ClientCreds(client_id, None, REDIRECT_URI, ""),
                                            scope="openid profile email offline_access")
    direct = browse(requests.Session(), live_server, live_world,
                    f"{provider['authorization_endpoint']}?"
                    + requests.compat.urlencode(params), live_world.alice, REDIRECT_URI)
    assert query(direct)["error"] == "invalid_request"

    pushed = push(oauth, provider, params)
    assert pushed.status_code == 201, pushed.text
    url = (f"{provider['authorization_endpoint']}?client_id={client_id}&request_uri="
           + requests.utils.quote(pushed.json()["request_uri"], safe=""))
    callback = browse(requests.Session(), live_server, live_world, url, live_world.alice,
                      REDIRECT_URI)
    assert query(callback)["state"] == params["state"]

    token_endpoint = provider["token_endpoint"]
    # Without a proof, this DPoP-only portal gets nothing, and the code is not spent.
    answer = requests.post(token_endpoint, timeout=10, data={
        "grant_type": "authorization_code", "code": query(callback)["code"],
        "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
        auth=oauth.client_auth("private_key_jwt"))
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_dpop_proof"

    token = oauth.fetch_token(token_endpoint, authorization_response=callback,
                              code_verifier=verifier,
                              headers={"DPoP": holder.proof("POST", token_endpoint)})
    assert token["token_type"] == "DPoP"
    assert jwt_claims(token["access_token"])["cnf"] == {"jkt": holder.jkt}

    userinfo = provider["userinfo_endpoint"]
    at = token["access_token"]
    as_bearer = requests.get(userinfo, headers={"Authorization": f"Bearer {at}"}, timeout=10)
    assert as_bearer.status_code == 401
    stranger = requests.get(userinfo, timeout=10, headers={
        "Authorization": f"DPoP {at}", "DPoP": Holder().proof("GET", userinfo, access_token=at)})
    assert stranger.status_code == 401
    mine = requests.get(userinfo, timeout=10, headers={
        "Authorization": f"DPoP {at}", "DPoP": holder.proof("GET", userinfo, access_token=at)})
    assert mine.status_code == 200 and mine.json()["email"] == live_world.alice

    refreshed = oauth.refresh_token(token_endpoint, refresh_token=token["refresh_token"],
                                    headers={"DPoP": holder.proof("POST", token_endpoint)})
    assert refreshed["token_type"] == "DPoP"
    assert jwt_claims(refreshed["access_token"])["cnf"] == {"jkt": holder.jkt}


def test_an_assertion_and_a_proof_are_each_good_once_at_the_token_endpoint(app, client, world):
    """Both marks are set in one round trip: a replayed proof beside a new assertion, or a
    replayed assertion beside a new proof, is refused for what was replayed."""
    import time
    import uuid

    from joserfc import jwt

    key = ECKey.generate_key("P-256", parameters={"kid": "svc-1"})
    with app.app_context():
        session = idp_db.session()
        tenant = session.scalar(select(Tenant).where(Tenant.slug == world.slug))
        service = directory.create_client(
            session, tenant, "Signed service", [], grant_types=["client_credentials"],
            auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]},
            dpop_bound_access_tokens=True).client.client_id
        session.commit()
    token_url = f"{world.issuer}/token"

    def assertion() -> str:
        now = int(time.time())
        return jwt.encode({"alg": "ES256", "kid": "svc-1"}, {
            "iss": service, "sub": service, "aud": token_url, "iat": now, "exp": now + 60,
            "jti": str(uuid.uuid4())}, key, algorithms=["ES256"])

    def ask(signed: str, proof: str):
        return client.post(f"/t/{world.slug}/token", headers={"DPoP": proof}, data={
            "grant_type": "client_credentials", "client_assertion": signed,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"})

    holder = Holder()
    first_assertion, first_proof = assertion(), holder.proof("POST", token_url)
    ok = ask(first_assertion, first_proof)
    assert ok.status_code == 200 and ok.get_json()["token_type"] == "DPoP"
    again = ask(assertion(), first_proof)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_dpop_proof"
    assert "used already" in again.get_json()["error_description"]
    replayed = ask(first_assertion, holder.proof("POST", token_url))
    assert replayed.status_code == 401 and replayed.get_json()["error"] == "invalid_client"
    assert "used already" in replayed.get_json()["error_description"]
    assert ask(assertion(), holder.proof("POST", token_url)).status_code == 200
