"""panva's openid-client (v6), an OpenID-certified relying party, against the live ``idp serve``
over real HTTP (issue 22, Tests): it reads discovery, builds the authorization request, redeems
the code with every check a strict RP makes (state, ``iss`` in the callback, PKCE, the ID
token's signature, issuer, audience and nonce), calls userinfo, and takes client-credentials
tokens. The person's browser is a ``requests.Session`` filling in our hosted pages.

The PAR, DPoP and private_key_jwt flows are written against openid-client's own API
(``buildAuthorizationUrlWithPAR``, ``getDPoPHandle``, ``PrivateKeyJwt``): they pass once those
features are in (issue 22 points 2, 3 and 7).
"""

from __future__ import annotations

import secrets

import pytest
import requests
from joserfc.jwk import ECKey

from idp import db, directory
from tests.support.openid_client import OpenIdClient
from tests.support.relying_party import browse
from tests.support.world import ClientCreds

SCOPE = "openid profile email"
REDIRECT_URI = "https://portal.test/callback"


@pytest.fixture
def rp(tmp_path):
    node = OpenIdClient(tmp_path / "openid-client.log")
    yield node
    node.close()


def register(app, world, name: str, **kw) -> ClientCreds:
    """A client of the world's tenant, registered as an operator would (``directory``)."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        made = directory.create_client(session, tenant, name,
                                       [] if "grant_types" in kw else [REDIRECT_URI], **kw)
        session.commit()
        return ClientCreds(made.client.client_id, made.secret,
                           REDIRECT_URI if "grant_types" not in kw else "", "")


def key_pair() -> tuple[dict, dict]:
    """(private JWK for openid-client, public JWK set to register): ES256, P-256."""
    key = ECKey.generate_key("P-256", parameters={"kid": secrets.token_hex(8), "use": "sig",
                                                  "alg": "ES256"})
    return key.as_dict(private=True), {"keys": [key.as_dict(private=False)]}


def introspect(world, token: str) -> dict:
    """What the server says of ``token``, asked by the world's service (a resource server)."""
    r = requests.post(f"{world.issuer}/introspect", data={"token": token},
                      auth=(world.service.client_id, world.service.client_secret), timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def sign_in(rp, live_server, world, **authorize) -> dict:
    """openid-client's authorization URL, a person signing in at it, and openid-client
    redeeming the callback (ID token checked, userinfo fetched)."""
    url = rp.call("authorize_url", redirect_uri=REDIRECT_URI, scope=SCOPE, **authorize)["url"]
    callback = browse(requests.Session(), live_server, world, url, world.alice, REDIRECT_URI)
    return rp.call("redeem", callback=callback)


def test_code_flow_with_pkce_and_client_secret_basic(rp, live_server, live_world):
    metadata = rp.call("configure", issuer=live_world.issuer,
                       client_id=live_world.portal.client_id,
                       client_secret=live_world.portal.client_secret)["metadata"]
    assert metadata["issuer"] == live_world.issuer
    done = sign_in(rp, live_server, live_world)
    assert done["token_type"].lower() == "bearer"
    claims = done["claims"]
    assert claims["iss"] == live_world.issuer and claims["aud"] in (
        live_world.portal.client_id, [live_world.portal.client_id])
    assert done["userinfo"]["sub"] == claims["sub"]
    assert done["userinfo"]["email"] == live_world.alice
    assert done["has_refresh_token"] is False  # not asked for (no offline_access)


def test_client_credentials_with_client_secret_basic(rp, live_world):
    rp.call("configure", issuer=live_world.issuer, client_id=live_world.service.client_id,
            client_secret=live_world.service.client_secret)
    done = rp.call("client_credentials")
    assert done["token_type"].lower() == "bearer" and done["expires_in"] > 0
    about = introspect(live_world, done["access_token"])
    assert about["active"] is True and about["client_id"] == live_world.service.client_id


def test_a_wrong_secret_is_refused_as_openid_client_reports_it(rp, live_world):
    rp.call("configure", issuer=live_world.issuer, client_id=live_world.service.client_id,
            client_secret="not-the-secret")
    refused = rp.try_call("client_credentials")
    assert refused["ok"] is False and refused["oauth_error"] == "invalid_client", refused


# -- PAR, DPoP and private_key_jwt (issue 22 points 2, 3, 7) ---------------------------------


def test_par_dpop_and_private_key_jwt_code_flow_with_userinfo(app, rp, live_server, live_world):
    private, public = key_pair()
    creds = register(app, live_world, "FAPI portal", auth_method="private_key_jwt", jwks=public,
                     require_par=True, dpop_bound_access_tokens=True)
    metadata = rp.call("configure", issuer=live_world.issuer, client_id=creds.client_id,
                       private_jwk=private, dpop=True)["metadata"]
    assert metadata["pushed_authorization_request_endpoint"] == f"{live_world.issuer}/par"
    assert "ES256" in metadata["dpop_signing_alg_values_supported"]
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    done = sign_in(rp, live_server, live_world, par=True)
    assert done["token_type"].lower() == "dpop"
    assert done["claims"]["iss"] == live_world.issuer
    assert done["userinfo"]["email"] == live_world.alice  # userinfo took the DPoP-bound token


def test_client_credentials_with_private_key_jwt_and_dpop(app, rp, live_world):
    private, public = key_pair()
    creds = register(app, live_world, "FAPI service", auth_method="private_key_jwt",
                     jwks=public, grant_types=["client_credentials"],
                     dpop_bound_access_tokens=True)
    rp.call("configure", issuer=live_world.issuer, client_id=creds.client_id,
            private_jwk=private, dpop=True)
    done = rp.call("client_credentials")
    assert done["token_type"].lower() == "dpop"
    about = introspect(live_world, done["access_token"])
    assert about["active"] is True and about["cnf"] == {"jkt": done["dpop_jkt"]}
