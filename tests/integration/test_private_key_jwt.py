"""private_key_jwt client authentication (RFC 7523, OIDC Core 9) as clients use it: Authlib's
``OAuth2Session`` with ``PrivateKeyJWT`` at the token, revocation and introspection endpoints,
keys registered inline or served at a ``jwks_uri``; and every assertion we must refuse, each
with a 401 ``invalid_client`` that says why."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid

import pytest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from werkzeug.test import Client

from idp import db as idp_db, directory
from idp.models import Tenant
from idp.oidc import client_keys
from tests.support.in_process import mount
from tests.support.local_http import LocalService
from tests.support.rp import basic, get_code
from tests.support.world import ClientCreds

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(autouse=True)
def plain_http(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the app answers at http://idp.test


def ec_key(kid="k1"):
    return ECKey.generate_key("P-256", parameters={"kid": kid})


def public_jwks(*keys) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def keyed_client(app, world, *, jwks=None, jwks_uri=None, grant_types=("client_credentials",),
                 redirect_uri=None) -> ClientCreds:
    """A client registered with private_key_jwt, as an operator registers one."""
    with app.app_context():
        session = idp_db.session()
        tenant = session.query(Tenant).filter_by(slug=world.slug).one()
        new = directory.create_client(session, tenant, "Keyed service",
                                      [redirect_uri] if redirect_uri else [],
                                      grant_types=list(grant_types), auth_method="private_key_jwt",
                                      jwks=jwks, jwks_uri=jwks_uri)
        session.commit()
        return ClientCreds(new.client.client_id, None, redirect_uri or "", "")


def oauth(app, world, client_id, key, alg="ES256", **kw) -> OAuth2Session:
    """Authlib's client, authenticating with ``PrivateKeyJWT`` (it signs a fresh assertion,
    aud = the endpoint it calls, for each request)."""
    session = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt",
                            revocation_endpoint_auth_method="private_key_jwt", **kw)
    session.register_client_auth_method(PrivateKeyJWT(alg=alg))
    return mount(session, app, world.issuer.split("/t/")[0])


def post_token(client, world, form: dict):
    return client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials", **form})


def assertion(key, claims: dict, header=None, alg="ES256") -> str:
    return jwt.encode({"alg": alg, **(header or {})}, claims, key, algorithms=[alg])


def claims_for(world, client_id, **over) -> dict:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": f"{world.issuer}/token",
              "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def refused_with(response, words: str):
    assert response.status_code == 401, response.get_json()
    body = response.get_json()
    assert body["error"] == "invalid_client"
    assert words in body["error_description"], body["error_description"]


# -- Authlib's client succeeds ----------------------------------------------------------------

def test_client_credentials_with_a_registered_jwks(app, world):
    key = ec_key()
    creds = keyed_client(app, world, jwks=public_jwks(key))
    session = oauth(app, world, creds.client_id, key)
    token = session.fetch_token(f"{world.issuer}/token", grant_type="client_credentials")
    assert token["token_type"] == "Bearer" and token["access_token"]
    again = session.fetch_token(f"{world.issuer}/token", grant_type="client_credentials")
    assert again["access_token"] != token["access_token"]  # each assertion is a new jti


@pytest.mark.parametrize("make, alg", [
    (lambda: RSAKey.generate_key(2048, parameters={"kid": "r"}), "RS256"),
    (lambda: RSAKey.generate_key(2048, parameters={"kid": "r"}), "PS256"),
    (lambda: OKPKey.generate_key("Ed25519", parameters={"kid": "o"}), "EdDSA"),
])
def test_rsa_pss_and_ed25519_keys_authenticate(app, world, make, alg):
    key = make()
    creds = keyed_client(app, world, jwks=public_jwks(key))
    token = oauth(app, world, creds.client_id, key, alg=alg).fetch_token(
        f"{world.issuer}/token", grant_type="client_credentials")
    assert token["access_token"]


def test_code_redemption_revocation_and_introspection_with_private_key_jwt(app, client, world):
    key = ec_key()
    creds = keyed_client(app, world, jwks=public_jwks(key),
                         grant_types=("authorization_code", "refresh_token"),
                         redirect_uri="https://keyed.test/cb")
    code, verifier = get_code(client, world, creds)
    session = oauth(app, world, creds.client_id, key, redirect_uri=creds.redirect_uri)
    token = session.fetch_token(f"{world.issuer}/token", grant_type="authorization_code",
                                code=code, code_verifier=verifier)
    assert token["id_token"] and token["refresh_token"]

    # Introspection: Authlib's client signs for the token endpoint's method here too.
    seen = session.introspect_token(f"{world.issuer}/introspect", token=token["access_token"])
    assert seen.status_code == 200 and seen.json()["active"] is True
    assert seen.json()["client_id"] == creds.client_id

    revoked = session.revoke_token(f"{world.issuer}/revoke", token=token["refresh_token"],
                                   token_type_hint="refresh_token")
    assert revoked.status_code == 200
    after = session.introspect_token(f"{world.issuer}/introspect", token=token["refresh_token"])
    assert after.json() == {"active": False}


def test_the_issuer_is_an_accepted_audience(app, client, world):
    key = ec_key()
    creds = keyed_client(app, world, jwks=public_jwks(key))
    signed = assertion(key, claims_for(world, creds.client_id, aud=world.issuer))
    r = post_token(client, world, {"client_assertion_type": ASSERTION_TYPE,
                                   "client_assertion": signed})
    assert r.status_code == 200, r.get_json()


def test_discovery_advertises_private_key_jwt_and_its_algorithms(client, world):
    doc = client.get(f"/t/{world.slug}/.well-known/openid-configuration").get_json()
    for endpoint in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        assert "private_key_jwt" in doc[f"{endpoint}_auth_methods_supported"]
        algs = doc[f"{endpoint}_auth_signing_alg_values_supported"]
        assert set(algs) == set(directory.CLIENT_SIGNING_ALGS)
        assert "none" not in algs and not any(a.startswith("HS") for a in algs)


# -- refused assertions -----------------------------------------------------------------------

@pytest.fixture
def keyed(app, world):
    key = ec_key()
    return key, keyed_client(app, world, jwks=public_jwks(key))


def send(client, world, signed, **form):
    return post_token(client, world, {"client_assertion_type": ASSERTION_TYPE,
                                      "client_assertion": signed, **form})


def test_a_replayed_assertion_is_refused(client, world, keyed):
    key, creds = keyed
    signed = assertion(key, claims_for(world, creds.client_id))
    assert send(client, world, signed).status_code == 200
    refused_with(send(client, world, signed), "used already")


def test_a_wrong_audience_is_refused(client, world, keyed):
    key, creds = keyed
    signed = assertion(key, claims_for(world, creds.client_id, aud="https://elsewhere.test/token"))
    refused_with(send(client, world, signed), "aud must be")


def test_an_expired_assertion_is_refused(client, world, keyed):
    key, creds = keyed
    past = int(time.time()) - 600
    signed = assertion(key, claims_for(world, creds.client_id, iat=past - 60, exp=past))
    refused_with(send(client, world, signed), "expired")


def test_an_assertion_without_exp_or_jti_is_refused(client, world, keyed):
    key, creds = keyed
    refused_with(send(client, world, assertion(key, claims_for(world, creds.client_id, exp=None))),
                 "needs an exp")
    refused_with(send(client, world, assertion(key, claims_for(world, creds.client_id, jti=None))),
                 "needs a jti")


def test_an_assertion_valid_for_days_is_refused(client, world, keyed):
    key, creds = keyed
    signed = assertion(key, claims_for(world, creds.client_id, exp=int(time.time()) + 86400 * 3))
    refused_with(send(client, world, signed), "too far ahead")


def test_an_assertion_issued_in_the_future_is_refused(client, world, keyed):
    key, creds = keyed
    later = int(time.time()) + 3600
    signed = assertion(key, claims_for(world, creds.client_id, iat=later, exp=later + 60))
    refused_with(send(client, world, signed), "iat is in the future")


def test_alg_none_is_refused(client, world, keyed):
    _, creds = keyed
    b64 = lambda d: __import__("base64").urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    unsigned = f"{b64({'alg': 'none'})}.{b64(claims_for(world, creds.client_id))}."
    refused_with(send(client, world, unsigned), "alg must be one of")


def test_hs256_is_refused_whatever_its_key(client, world, keyed):
    key, creds = keyed
    # The classic confusion: the public key's own bytes as an HMAC secret.
    for secret in (OctKey.generate_key(256), OctKey.import_key(json.dumps(key.as_dict(private=False)))):
        signed = assertion(secret, claims_for(world, creds.client_id), alg="HS256")
        refused_with(send(client, world, signed), "alg must be one of")


def test_a_key_not_in_the_set_is_refused(client, world, keyed):
    _, creds = keyed
    stranger = ec_key("k1")  # same kid, another key
    refused_with(send(client, world, assertion(stranger, claims_for(world, creds.client_id))),
                 "signature does not verify")
    other = ec_key("unknown")
    refused_with(send(client, world, assertion(other, claims_for(world, creds.client_id),
                                               header={"kid": "unknown"})),
                 "No key of the client's set")


def test_iss_differing_from_sub_is_refused(client, world, keyed):
    key, creds = keyed
    signed = assertion(key, claims_for(world, creds.client_id, iss="someone-else"))
    refused_with(send(client, world, signed), "iss and sub must both be the client_id")


def test_a_client_id_beside_another_clients_assertion_is_refused(client, world, keyed):
    key, creds = keyed
    signed = assertion(key, claims_for(world, creds.client_id))
    refused_with(send(client, world, signed, client_id=world.service.client_id),
                 "not about the client_id")


def test_a_secret_client_sending_an_assertion_is_refused(client, world):
    key = ec_key()
    signed = assertion(key, claims_for(world, world.service.client_id))
    refused_with(send(client, world, signed), "not registered for private_key_jwt")


def test_a_private_key_jwt_client_sending_a_secret_is_refused(client, world, keyed):
    _, creds = keyed
    refused_with(post_token(client, world, {"client_id": creds.client_id, "client_secret": "guess"}),
                 "authenticates with private_key_jwt")
    refused_with(client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                             headers=basic(creds.client_id, "guess")),
                 "authenticates with private_key_jwt")


def test_a_wrong_assertion_type_is_refused(client, world, keyed):
    key, creds = keyed
    r = post_token(client, world, {"client_assertion_type": "urn:x",
                                   "client_assertion": assertion(key, claims_for(world, creds.client_id))})
    refused_with(r, "client_assertion_type must be")


def test_garbage_assertions_are_refused_clearly(client, world, keyed):
    deep = base64.urlsafe_b64encode(b"[" * 3000).decode().rstrip("=")  # nested too deep
    for garbage in ("not-a-jwt", "a.b.c", "eyJhbGciOiJFUzI1NiJ9.e30.", "x" * 9000,
                    f"{deep}.{deep}.AA", f"eyJhbGciOiJFUzI1NiJ9.{deep}.AA"):
        r = send(client, world, garbage)
        assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


# -- keys served at a jwks_uri ----------------------------------------------------------------

class JwksService(LocalService):
    """A client's jwks_uri: serves ``document`` (or a given status / body)."""

    def __init__(self, document=None):
        super().__init__()
        self.document = document
        self.status, self.body, self.content_type, self.headers = 200, None, "application/json", {}
        self.fetches = 0

    @property
    def uri(self):
        return f"http://127.0.0.1:{self.port}/jwks.json"

    def answer(self, method, path, headers, body):
        self.fetches += 1
        content = self.body if self.body is not None else json.dumps(self.document).encode()
        return self.status, self.content_type, content


@pytest.fixture(autouse=True)
def fresh_key_cache():
    client_keys._entries.clear()
    yield
    client_keys._entries.clear()


def test_keys_from_a_jwks_uri_and_a_rotation_picked_up(app, world, monkeypatch):
    old, new = ec_key("old"), ec_key("new")
    with JwksService(public_jwks(old)) as service:
        creds = keyed_client(app, world, jwks_uri=service.uri)
        endpoint = f"{world.issuer}/token"
        assert oauth(app, world, creds.client_id, old).fetch_token(
            endpoint, grant_type="client_credentials")["access_token"]
        assert oauth(app, world, creds.client_id, old).fetch_token(
            endpoint, grant_type="client_credentials")["access_token"]
        assert service.fetches == 1  # kept, not fetched per request

        # The client rotates: its jwks_uri now has the new key; an assertion signed with it
        # (kid "new", unknown to us) makes us fetch again, once the minimum interval is over.
        service.document = public_jwks(new)
        monkeypatch.setattr(client_keys, "REFETCH_INTERVAL", 0)
        assert oauth(app, world, creds.client_id, new).fetch_token(
            endpoint, grant_type="client_credentials")["access_token"]
        assert service.fetches == 2


def test_an_unknown_kid_does_not_refetch_within_the_interval(app, client, world):
    known = ec_key("known")
    with JwksService(public_jwks(known)) as service:
        creds = keyed_client(app, world, jwks_uri=service.uri)
        assert send(client, world, assertion(known, claims_for(world, creds.client_id),
                                             header={"kid": "known"})).status_code == 200
        for _ in range(3):
            stranger = ec_key("made-up")
            refused_with(send(client, world, assertion(stranger, claims_for(world, creds.client_id),
                                                       header={"kid": "made-up"})),
                         "No key of the client's set")
        assert service.fetches == 1


@pytest.mark.parametrize("status, content_type, body, words", [
    (404, "text/html", b"not here", "answered HTTP 404"),
    (302, "text/html", b"", "answered HTTP 302"),  # redirects are not followed
    (200, "text/html", b"<html>", "is not JSON"),
    (200, "application/json", b"[" * 5000, "is not JSON"),  # nested deeper than json reads
    (200, "application/json", b'{"keys": [' + b'{"kty": "EC"},' * 8000 + b"]}", "larger than 64 KB"),
    (200, "application/json", b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}',
     "not an acceptable JWKS"),
])
def test_a_bad_jwks_uri_is_a_clear_invalid_client(app, client, world, status, content_type, body,
                                                  words):
    key = ec_key()
    with JwksService() as service:
        service.status, service.content_type, service.body = status, content_type, body
        creds = keyed_client(app, world, jwks_uri=service.uri)
        r = send(client, world, assertion(key, claims_for(world, creds.client_id)))
    refused_with(r, "jwks_uri")
    refused_with(r, words)


def test_why_a_jwks_uri_is_refused_stays_english_for_a_german_speaking_caller(app, world):
    """The reason is an OAuth error_description (US-ASCII, RFC 6749 5.2) for the client's
    developers, though ``idp.jwks`` says it in German on a German console page."""
    flask_path = Client(app.wsgi_app.wsgi_app)  # Flask's own view, as a request it handles
    with JwksService() as service:
        service.body = b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'
        creds = keyed_client(app, world, jwks_uri=service.uri)
        r = flask_path.post(f"/t/{world.slug}/token", headers={"Accept-Language": "de-DE,de"},
                            data={"grant_type": "client_credentials",
                                  "client_assertion_type": ASSERTION_TYPE,
                                  "client_assertion": assertion(
                                      ec_key(), claims_for(world, creds.client_id))})
    refused_with(r, "key 1 is a symmetric key (kty oct): give public keys only")
    assert r.get_json()["error_description"].isascii()


def calls_only_public_addresses(app, monkeypatch):
    """The installation as in production: requests to addresses admins typed go out only to
    public addresses."""
    monkeypatch.setitem(app.config, "IDP", dataclasses.replace(app.config["IDP"],
                                                               private_callbacks=False))


def test_a_private_jwks_uri_is_refused_when_the_installation_calls_only_public_addresses(
        app, client, world, monkeypatch):
    key = ec_key()
    with JwksService(public_jwks(key)) as service:
        creds = keyed_client(app, world, jwks_uri=service.uri)
        calls_only_public_addresses(app, monkeypatch)
        r = send(client, world, assertion(key, claims_for(world, creds.client_id)))
        assert service.fetches == 0
    refused_with(r, "is not https")


def test_an_https_jwks_uri_to_a_private_address_is_refused(app, client, world, monkeypatch):
    key = ec_key()
    creds = keyed_client(app, world, jwks_uri="https://127.0.0.1:9/jwks.json")
    calls_only_public_addresses(app, monkeypatch)
    refused_with(send(client, world, assertion(key, claims_for(world, creds.client_id))),
                 "leads to a private address")


# -- the command line -------------------------------------------------------------------------

def test_cli_creates_a_private_key_jwt_client_from_a_jwks_file_or_stdin(app, client, idp, world,
                                                                       tmp_path):
    key = ec_key("cli-key")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(public_jwks(key)))
    code, out, err = idp("client", "create", world.slug, "--name", "Batch", "--grant-types",
                         "client_credentials", "--auth-method", "private_key_jwt", "--jwks", str(path))
    assert code == 0, err
    created = json.loads(out)
    assert created["client_secret"] is None
    assert created["token_endpoint_auth_method"] == "private_key_jwt"
    assert created["jwks_kids"] == ["cli-key"]
    r = send(client, world, assertion(key, claims_for(world, created["client_id"])))
    assert r.status_code == 200, r.get_json()

    code, out, err = idp("client", "create", world.slug, "--name", "Batch 2", "--grant-types",
                         "client_credentials", "--auth-method", "private_key_jwt", "--jwks", "-",
                         stdin=json.dumps(public_jwks(key)))
    assert code == 0, err


def test_cli_creates_a_private_key_jwt_client_with_a_jwks_uri(idp, world):
    code, out, err = idp("client", "create", world.slug, "--name", "Batch", "--grant-types",
                         "client_credentials", "--auth-method", "private_key_jwt",
                         "--jwks-uri", "https://batch.example.com/jwks.json")
    assert code == 0, err
    assert json.loads(out)["jwks_uri"] == "https://batch.example.com/jwks.json"


@pytest.mark.parametrize("extra, stdin, words", [
    (("--jwks", "-"), json.dumps({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}),
     "private part"),
    (("--jwks", "-"), "{not json", "not JSON"),
    (("--jwks", "-"), json.dumps(public_jwks(RSAKey.generate_key(1024))), "too short"),
    (("--jwks", "/no/such/file.json"), "", "cannot be read"),
    ((), "", "needs the client's public keys"),
    (("--jwks-uri", "http://keys.example.com/jwks"), "", "must use https"),
])
def test_cli_refuses_bad_keys_with_one_clear_line(idp, world, extra, stdin, words):
    code, out, err = idp("client", "create", world.slug, "--name", "Batch", "--grant-types",
                         "client_credentials", "--auth-method", "private_key_jwt", *extra,
                         stdin=stdin)
    assert code != 0 and out == ""
    assert words in err and len(err.strip().splitlines()) == 1, err


# -- the admin API ----------------------------------------------------------------------------

def test_api_registers_a_keyed_client_and_moves_it_to_a_secret_and_back(app, client, world):
    from tests.support.api import api_for

    api = api_for(app, app.test_client(), world)
    key = ec_key("api")
    r = api.post("/clients", json={"name": "Keyed", "grant_types": ["client_credentials"],
                                   "token_endpoint_auth_method": "private_key_jwt",
                                   "jwks": public_jwks(key)})
    assert r.status_code == 201, r.get_data(as_text=True)
    made = r.get_json()
    assert made["client_secret"] is None and made["token_endpoint_auth_method"] == "private_key_jwt"
    assert made["jwks"]["keys"][0]["kid"] == "api"
    assert send(client, world, assertion(key, claims_for(world, made["client_id"]))).status_code == 200

    # To a secret: a new one, shown once; the key no longer works.
    moved = api.patch(f"/clients/{made['client_id']}",
                      json={"token_endpoint_auth_method": "client_secret_basic"}).get_json()
    assert moved["client_secret"] and moved["jwks"] is None
    refused_with(send(client, world, assertion(key, claims_for(world, made["client_id"]))),
                 "not registered for private_key_jwt")
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(made["client_id"], moved["client_secret"]))
    assert r.status_code == 200

    # Back to keys: the secret stops working.
    back = api.patch(f"/clients/{made['client_id']}",
                     json={"token_endpoint_auth_method": "private_key_jwt",
                           "jwks": public_jwks(key)}).get_json()
    assert back["client_secret"] is None and back["token_endpoint_auth_method"] == "private_key_jwt"
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(made["client_id"], moved["client_secret"]))
    assert r.status_code == 401
    assert send(client, world, assertion(key, claims_for(world, made["client_id"]))).status_code == 200
    rotated = api.post(f"/clients/{made['client_id']}/secret")
    assert rotated.status_code == 422 and "proves itself with a key" in rotated.get_data(as_text=True)


def test_api_refuses_a_jwks_with_a_private_key(app, world):
    from tests.support.api import api_for

    api = api_for(app, app.test_client(), world)
    r = api.post("/clients", json={"name": "Keyed", "grant_types": ["client_credentials"],
                                   "token_endpoint_auth_method": "private_key_jwt",
                                   "jwks": {"keys": [ec_key().as_dict(private=True)]}})
    assert r.status_code == 422 and "private part" in r.get_data(as_text=True)


# -- the console ------------------------------------------------------------------------------

def test_console_moves_a_portal_from_its_secret_to_keys_and_back(app, client, world):
    import html
    import re

    from tests.support.console import admin_browser
    from tests.support.journey import CSRF, field

    browser = admin_browser(app, world)
    key = ec_key("console")
    url = f"/t/{world.slug}/admin/portals/{world.service.client_id}"

    def save(**form):
        page = browser.get(url).text
        name = html.unescape(re.search(r'id="portal-name" name="name" value="([^"]*)"', page).group(1))
        return browser.post(url, {"csrf_token": field(CSRF, page), "name": name,
                                  "redirect_uris": "", "post_logout_redirect_uris": "",
                                  "min_acr": "", **form})

    refused = save(proof="key", jwks="", jwks_uri="")
    assert refused.status == 400 and "needs its public keys" in refused.text
    refused = save(proof="key", jwks=json.dumps({"keys": [key.as_dict(private=True)]}))
    assert refused.status == 400 and "private part" in refused.text
    assert key.as_dict(private=True)["d"] not in refused.text  # not shown back

    saved = save(proof="key", jwks=json.dumps(public_jwks(key)), jwks_uri="")
    assert saved.status in (200, 302)
    page = browser.get(url).text
    assert "private_key_jwt" in page and "console" in page and "Rotate the secret" not in page
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(world.service.client_id, world.service.client_secret))
    assert r.status_code == 401  # the secret was dropped
    assert send(client, world, assertion(key, claims_for(world, world.service.client_id))).status_code == 200

    back = save(proof="secret")
    assert back.status == 200 and back.headers.get("Cache-Control") == "no-store"
    secret = re.search(r'id="client-secret" value="([^"]+)"', back.text).group(1)
    r = client.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                    headers=basic(world.service.client_id, secret))
    assert r.status_code == 200
    refused_with(send(client, world, assertion(key, claims_for(world, world.service.client_id))),
                 "not registered for private_key_jwt")


# -- pushed authorization requests ------------------------------------------------------------

def test_a_pushed_authorization_request_authenticated_with_private_key_jwt(app, world):
    from tests.support.par import authorization_params, push

    key = ec_key()
    creds = keyed_client(app, world, jwks=public_jwks(key),
                         grant_types=("authorization_code", "refresh_token"),
                         redirect_uri="https://keyed.test/cb")
    session = oauth(app, world, creds.client_id, key)
    provider = {"pushed_authorization_request_endpoint": f"{world.issuer}/par"}
    params, _ = authorization_params(creds)
    pushed = push(session, provider, params)  # aud: the PAR endpoint's URL (Authlib's choice)
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")

    stranger = ec_key()
    refused = push(oauth(app, world, creds.client_id, stranger), provider, params)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
