"""What an upstream OpenID provider may make us say, and where its discovery may send us.

Review findings 3 and 4 of issue 15. No CVE matches either exactly; the classes are:

- **an identity broker vouching for more than the upstream proved** (acr/amr inflation through
  federation). Keycloak's own tracker names the class: a brokered login does not carry the
  upstream's level into step-up (keycloak/keycloak#25335), and mapping it means deciding which
  upstream values count. Here ``fed`` plus one upstream factor was counted as two kinds, and
  any ``acr`` *containing* "mfa" (``urn:example:loa:nomfa``) was trusted.
- **SSRF through OpenID metadata**, the "malicious endpoints" attack of Mladenov and Mainka,
  *OpenID Connect Security Considerations* (2017), 2.1.2; Keycloak CVE-2020-10770 is the same
  class through ``request_uri``. Here a discovery document could also point the request that
  carries our client secret, the code and the PKCE verifier at a plain-http loopback service.

Every sign-in goes through the hosted pages (Flask's test client for our side, a real https
upstream on a socket for theirs) and ends in the ID token a portal would receive.
"""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import select

from idp import admin, db, directory
from idp.models import Upstream
from tests.support.journey import Browser, Page, query
from tests.support.upstream import Recorder, ScriptedProvider
from tests.support.upstream_signin import add_upstream, sign_in_upstream
from tests.support.world import World


@pytest.fixture
def recorder():
    listener = Recorder()
    yield listener
    listener.stop()


def upstream_row(session, world: World, slug: str) -> Upstream | None:
    tenant = directory.get_tenant(session, world.slug)
    return session.scalar(select(Upstream).where(Upstream.tenant_id == tenant.id,
                                                 Upstream.slug == slug))


def id_token_claims(client, world: World, done: Page, verifier: str) -> dict:
    assert done.status == 302 and done.location.startswith(world.portal.redirect_uri), \
        (done.status, done.location, done.text[:800])
    basic = base64.b64encode(f"{world.portal.client_id}:{world.portal.client_secret}".encode())
    r = client.post(f"/t/{world.slug}/token", headers={"Authorization": f"Basic {basic.decode()}"},
                    data={"grant_type": "authorization_code", "code": query(done.location)["code"],
                          "redirect_uri": world.portal.redirect_uri, "code_verifier": verifier})
    assert r.status_code == 200, r.get_data(as_text=True)
    payload = r.get_json()["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def signed_in_claims(app, client, world: World, provider: ScriptedProvider, **upstream) -> dict:
    add_upstream(app, world, provider, **upstream)
    done, verifier = sign_in_upstream(Browser(client), world, provider)
    return id_token_claims(client, world, done, verifier)


# --- Finding 3: the upstream's word is repeated only when it proves MFA ------------------------


@pytest.mark.parametrize("trust_mfa", ["always", "when_upstream_mfa"])
@pytest.mark.parametrize("one_factor", [["otp"], ["sms"], ["hwk"], ["pwd", "kba"]])
def test_fed_plus_one_upstream_factor_is_not_mfa(app, client, world, upstream, trust_mfa,
                                                 one_factor):
    upstream.claims = {"amr": one_factor}
    claims = signed_in_claims(app, client, world, upstream, trust_mfa=trust_mfa)
    # fed stands in for the factor the upstream checked: one factor, said as fed alone.
    assert claims["acr"] == "pwd" and claims["amr"] == ["fed"]


@pytest.mark.parametrize("acr", ["urn:example:loa:nomfa", "mfa", "phr", "urn:example:loa:2fa:x",
                                 "URN:EXAMPLE:LOA:2FA"])
def test_an_acr_is_trusted_only_when_listed_exactly(app, client, world, upstream, acr):
    upstream.claims = {"amr": ["pwd"], "acr": acr}
    claims = signed_in_claims(app, client, world, upstream, trust_mfa="when_upstream_mfa",
                              trusted_acrs=["urn:example:loa:2fa"])
    assert claims["acr"] == "pwd" and "mfa" not in claims["amr"]


def test_a_listed_acr_counts_as_the_upstreams_mfa(app, client, world, upstream):
    upstream.claims = {"amr": ["pwd"], "acr": "urn:example:loa:2fa"}
    claims = signed_in_claims(app, client, world, upstream, trust_mfa="when_upstream_mfa",
                              trusted_acrs=["urn:example:loa:2fa"])
    assert claims["acr"] == "mfa" and claims["amr"] == ["fed", "pwd", "mfa"]


@pytest.mark.parametrize("amr,acr", [(["pwd", "otp"], "mfa"), (["otp", "mfa"], "mfa"),
                                     (["hwk", "user"], "phr")])
def test_an_upstream_amr_that_proves_mfa_is_repeated(app, client, world, upstream, amr, acr):
    upstream.claims = {"amr": amr}
    claims = signed_in_claims(app, client, world, upstream, trust_mfa="when_upstream_mfa")
    assert claims["acr"] == acr and claims["amr"][0] == "fed" and "mfa" in claims["amr"]


def test_an_upstream_never_trusted_is_fed_alone_whatever_it_says(app, client, world, upstream):
    upstream.claims = {"amr": ["pwd", "otp", "mfa"], "acr": "mfa"}
    claims = signed_in_claims(app, client, world, upstream, trust_mfa="never")
    assert claims["amr"] == ["fed"] and claims["acr"] == "pwd"


def test_cli_lists_trusted_acr_values_exactly(idp, app, world, upstream):
    code, out, err = idp("upstream", "add", world.slug, "--name", "Partner SSO",
                         "--issuer", upstream.issuer, "--client-id", "abc", "--client-secret-stdin",
                         "--trust-mfa", "when_upstream_mfa", "--trusted-acr", "urn:example:loa:2fa",
                         "--trusted-acr", "urn:example:loa:3", stdin="s3cret\n",
                         environ={"REQUESTS_CA_BUNDLE": str(upstream.ca_file)})
    assert code == 0, err
    added = json.loads(out)
    assert added["trusted_acrs"] == ["urn:example:loa:2fa", "urn:example:loa:3"]
    assert added["discovery"] == "checked"
    with app.app_context():
        row = upstream_row(db.session(), world, "partner-sso")
        assert row.trusted_acrs == ["urn:example:loa:2fa", "urn:example:loa:3"]

    code, out, err = idp("upstream", "add", world.slug, "--name", "Other SSO",
                         "--issuer", upstream.issuer, "--client-id", "abc", "--client-secret-stdin",
                         "--trust-mfa", "never", "--trusted-acr", "urn:example:loa:2fa",
                         stdin="s3cret\n")
    assert code == 1 and out == "" and "trusted acr" in err and len(err.strip().splitlines()) == 1


def test_cli_set_lists_an_acr_for_an_upstream_added_before(idp, app, client, world, upstream):
    add_upstream(app, world, upstream, trust_mfa="when_upstream_mfa")  # as migration 0009 left it
    upstream.claims = {"amr": ["pwd"], "acr": "urn:example:loa:2fa"}
    done, verifier = sign_in_upstream(Browser(client), world, upstream)
    assert id_token_claims(client, world, done, verifier)["acr"] == "pwd"

    code, out, err = idp("upstream", "set", world.slug, "partner", "--trusted-acr",
                         "urn:example:loa:2fa", environ={"REQUESTS_CA_BUNDLE": str(upstream.ca_file)})
    assert code == 0, err
    assert json.loads(out)["trusted_acrs"] == ["urn:example:loa:2fa"]
    another_browser = app.test_client()
    done, verifier = sign_in_upstream(Browser(another_browser), world, upstream)
    assert id_token_claims(another_browser, world, done, verifier)["acr"] == "mfa"

    code, out, err = idp("upstream", "set", world.slug, "partner", "--trust-mfa", "never")
    assert code == 1 and "trusted acr" in err and len(err.strip().splitlines()) == 1


# --- Finding 4: the back channel of an https upstream stays on https and on its host -----------


def test_a_discovery_pointing_the_token_endpoint_at_local_http_gets_nothing(
        app, client, world, upstream, recorder):
    upstream.discovery_changes = {"token_endpoint": f"{recorder.url}/token"}
    add_upstream(app, world, upstream)
    page, _ = sign_in_upstream(Browser(client), world, upstream)
    assert page.status == 502 and "not set up correctly" in page.text
    assert "tell your administrator" in page.text and "Back to sign in" in page.text
    # Neither the secret, nor a code, nor a verifier went anywhere.
    assert recorder.requests == [] and upstream.token_requests == []


@pytest.mark.parametrize("endpoint", ["jwks_uri", "userinfo_endpoint"])
def test_a_discovery_pointing_keys_or_userinfo_at_local_http_is_refused(
        app, client, world, upstream, recorder, endpoint):
    upstream.discovery_changes = {endpoint: f"{recorder.url}/{endpoint}"}
    add_upstream(app, world, upstream)
    page, _ = sign_in_upstream(Browser(client), world, upstream)
    assert page.status == 502 and "not set up correctly" in page.text
    assert recorder.requests == [] and upstream.token_requests == []


def test_a_back_channel_on_another_host_needs_the_admin_to_list_it(app, client, world, upstream):
    port = upstream.issuer.rsplit(":", 1)[1]
    # The same server under another name: https, but not the issuer's host.
    upstream.discovery_changes = {"token_endpoint": f"https://localhost:{port}/token"}
    add_upstream(app, world, upstream)
    page, _ = sign_in_upstream(Browser(client), world, upstream)
    assert page.status == 502 and upstream.token_requests == []

    with app.app_context():
        session = db.session()
        admin.update_upstream(session, directory.get_tenant(session, world.slug), "partner",
                              "test", back_channel_hosts=[f"localhost:{port}"])
        session.commit()
    upstream.claims = {"amr": ["pwd"]}
    done, verifier = sign_in_upstream(Browser(client), world, upstream)
    assert id_token_claims(client, world, done, verifier)["amr"] == ["fed"]
    assert len(upstream.token_requests) == 1


def test_the_token_endpoint_cannot_redirect_the_code_elsewhere(app, client, world, upstream,
                                                               recorder):
    upstream.token_redirect = f"{recorder.url}/token"  # a 307 keeps the body: code, verifier
    add_upstream(app, world, upstream)
    page, _ = sign_in_upstream(Browser(client), world, upstream)
    assert page.status == 502 and "Back to sign in" in page.text
    assert recorder.requests == []


def test_cli_refuses_an_upstream_whose_discovery_points_elsewhere(idp, app, world, upstream,
                                                                   recorder):
    upstream.discovery_changes = {"token_endpoint": f"{recorder.url}/token"}
    code, out, err = idp("upstream", "add", world.slug, "--name", "Partner SSO",
                         "--issuer", upstream.issuer, "--client-id", "abc", "--client-secret-stdin",
                         stdin="s3cret\n", environ={"REQUESTS_CA_BUNDLE": str(upstream.ca_file)})
    assert code == 1 and out == "" and len(err.strip().splitlines()) == 1
    assert "token endpoint" in err and "not https" in err and "nothing was changed" in err
    with app.app_context():
        assert upstream_row(db.session(), world, "partner-sso") is None
    assert recorder.requests == []


@pytest.mark.parametrize("host,message", [("127.0.0.1:8080", "this machine"),
                                          ("https://evil.test", "not a host name")])
def test_cli_refuses_a_listed_host_that_is_not_one(idp, world, host, message):
    code, out, err = idp("upstream", "add", world.slug, "--name", "Partner SSO",
                         "--issuer", "https://sso.partner.test", "--client-id", "abc",
                         "--client-secret-stdin", "--back-channel-host", host, stdin="s3cret\n")
    assert code == 1 and out == "" and message in err and len(err.strip().splitlines()) == 1
