"""Pairwise subject identifiers (OIDC Core 8.1, OIDC Registration 5): a portal registered with
``subject_type=pairwise`` sees an id of its sector's own for each user, in every place a
user's ``sub`` reaches it. Portals sign in through Authlib's OAuth 2 client at the live
server and check the ID token with the issuer's JWKS (joserfc), as an application does."""

from __future__ import annotations

import secrets

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select

from idp import db, directory, subjects
from idp.models import Tenant, User
from idp.notify import outbox
from tests.support.backchannel import Receiver, validated
from tests.support.journey import Browser, query
from tests.support.relying_party import ID_TOKEN_ALGS, code_flow, discovery, portal_request
from tests.support.rp import get_code, jwt_claims, redeem
from tests.support.sector import SectorDocument
from tests.support.world import ClientCreds


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    # The live server listens on http://127.0.0.1; Authlib's client refuses plain http otherwise.
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def register(app, world, redirect_uri: str, **options) -> ClientCreds:
    """A confidential portal of ``world``'s tenant, as an administrator registers it."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        new = directory.create_client(session, tenant, "Pairwise portal", [redirect_uri],
                                      post_logout_redirect_uris=[f"{redirect_uri}/bye"],
                                      private_allowed=True, **options)
        session.commit()
        return ClientCreds(new.client.client_id, new.secret, redirect_uri, f"{redirect_uri}/bye")


def refusal(app, world, redirect_uris: list[str], private_allowed=True, **options) -> str:
    """Why registering a portal with these redirect URIs is refused."""
    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        with pytest.raises(directory.DirectoryError) as refused:
            directory.create_client(session, tenant, "Refused", redirect_uris,
                                    private_allowed=private_allowed, **options)
        session.rollback()
        return str(refused.value)


def public_subject(app, world, email: str) -> str:
    with app.app_context():
        return db.session().scalar(select(User.subject).join(Tenant).where(
            Tenant.slug == world.slug, User.email == email.lower()))


@pytest.fixture
def provider(live_world) -> dict:
    return discovery(live_world.issuer)


@pytest.fixture
def jwks(provider) -> KeySet:
    return KeySet.import_key_set(requests.get(provider["jwks_uri"], timeout=10).json())


def id_token_sub(token: dict, jwks: KeySet, world, creds) -> str:
    claims = jwt.decode(token["id_token"], jwks, algorithms=ID_TOKEN_ALGS).claims
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": world.issuer},
                          aud={"essential": True, "value": creds.client_id},
                          sub={"essential": True}).validate(claims)
    return claims["sub"]


def sign_in_sub(live_server, world, provider, jwks, creds, email=None) -> str:
    """A fresh browser signs in at ``creds``' portal; the ``sub`` of its verified ID token."""
    signed = code_flow(live_server, world, provider, creds, email=email)
    return id_token_sub(signed.token, jwks, world, creds)


def test_discovery_offers_pairwise_subjects(provider):
    assert provider["subject_types_supported"] == ["public", "pairwise"]


def test_each_sector_sees_its_own_stable_sub_and_public_portals_the_public_one(
        app, live_server, live_world, provider, jwks):
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise")
    shop_admin = register(app, live_world, "https://shop.example/admin/cb", subject_type="pairwise")
    clinic = register(app, live_world, "https://clinic.example/cb", subject_type="pairwise")
    public = public_subject(app, live_world, live_world.alice)

    at_shop = sign_in_sub(live_server, live_world, provider, jwks, shop)
    assert sign_in_sub(live_server, live_world, provider, jwks, shop) == at_shop  # stable
    assert sign_in_sub(live_server, live_world, provider, jwks, shop_admin) == at_shop  # one sector
    at_clinic = sign_in_sub(live_server, live_world, provider, jwks, clinic)
    assert at_clinic != at_shop  # sectors cannot correlate their users
    assert public not in (at_shop, at_clinic)
    # Another user of the same sector has another sub; a public portal sees the public id.
    assert sign_in_sub(live_server, live_world, provider, jwks, shop,
                       email=live_world.bob) != at_shop
    assert sign_in_sub(live_server, live_world, provider, jwks, live_world.portal) == public


def test_the_pairwise_sub_needs_the_servers_secret(app, settings, live_server, live_world,
                                                   provider, jwks):
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise")
    sub = sign_in_sub(live_server, live_world, provider, jwks, shop)
    public = public_subject(app, live_world, live_world.alice)
    with app.app_context():
        tenant_id = directory.get_tenant(db.session(), live_world.slug).id
    # Made from the tenant, the sector and the public id with a key only the server holds:
    # another IDP_SECRET_KEY (or none) gives another value.
    assert subjects.pairwise(settings.secret_key, tenant_id, "shop.example", public) == sub
    assert subjects.pairwise(secrets.token_hex(32), tenant_id, "shop.example", public) != sub


def test_userinfo_access_token_introspection_and_refresh_say_the_same_sub(
        app, live_server, live_world, provider, jwks):
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise")
    signed = code_flow(live_server, live_world, provider, shop)
    sub = id_token_sub(signed.token, jwks, live_world, shop)

    userinfo = signed.oauth.get(provider["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200 and userinfo.json()["sub"] == sub
    access = jwt.decode(signed.token["access_token"], jwks, algorithms=["ES256", "RS256"])
    assert access.claims["sub"] == sub
    introspected = signed.oauth.introspect_token(provider["introspection_endpoint"],
                                                 token=signed.token["access_token"], timeout=10)
    assert introspected.json()["active"] is True and introspected.json()["sub"] == sub

    refreshed = signed.oauth.refresh_token(provider["token_endpoint"],
                                           refresh_token=signed.token["refresh_token"])
    assert jwt.decode(refreshed["access_token"], jwks,
                      algorithms=["ES256", "RS256"]).claims["sub"] == sub
    assert signed.oauth.get(provider["userinfo_endpoint"], timeout=10).json()["sub"] == sub


def test_id_token_hint_with_the_pairwise_sub_at_authorize_and_logout(
        app, live_server, live_world, provider, jwks):
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise")
    clinic = register(app, live_world, "https://clinic.example/cb", subject_type="pairwise")
    signed = code_flow(live_server, live_world, provider, shop)
    hint = signed.token["id_token"]
    browser = Browser(signed.browser, origin=live_server.url)

    # The portal's own hint names the user signed in here: a silent sign-in succeeds.
    silent = portal_request(shop, provider, prompt="none", id_token_hint=hint)
    back = browser.follow(browser.get(silent.url), shop.redirect_uri)
    assert "code" in query(back.location), back.location
    assert silent.finish(provider, back.location)["sub"] == id_token_sub(
        signed.token, jwks, live_world, shop)

    # Another portal cannot pass this hint off as its own.
    other = portal_request(clinic, provider, prompt="none", id_token_hint=hint)
    refused = browser.follow(browser.get(other.url), clinic.redirect_uri)
    assert query(refused.location)["error"] == "invalid_request"
    elsewhere = signed.browser.get(provider["end_session_endpoint"], params={
        "id_token_hint": hint, "client_id": clinic.client_id}, allow_redirects=False, timeout=10)
    assert elsewhere.status_code == 400

    # At /logout the hint signs its user out without asking, back to the portal.
    out = signed.browser.get(provider["end_session_endpoint"], params={
        "id_token_hint": hint, "post_logout_redirect_uri": shop.post_logout_redirect_uri,
        "state": "bye"}, allow_redirects=False, timeout=10)
    assert out.status_code == 302, out.text[:300]
    assert out.headers["Location"] == f"{shop.post_logout_redirect_uri}?state=bye"
    after = portal_request(shop, provider, prompt="none")
    gone = browser.follow(browser.get(after.url), shop.redirect_uri)
    assert query(gone.location)["error"] == "login_required"


def test_a_hint_for_someone_else_asks_for_a_sign_in(app, live_server, live_world, provider):
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise")
    bobs = code_flow(live_server, live_world, provider, shop, email=live_world.bob)
    alices = code_flow(live_server, live_world, provider, shop)
    browser = Browser(alices.browser, origin=live_server.url)
    asked = portal_request(shop, provider, prompt="none", id_token_hint=bobs.token["id_token"])
    back = browser.follow(browser.get(asked.url), shop.redirect_uri)
    assert query(back.location)["error"] == "login_required"


def test_the_back_channel_logout_token_carries_the_pairwise_sub(app, client, world):
    with Receiver() as receiver:
        shop = register(app, world, "https://shop.example/cb", subject_type="pairwise",
                        backchannel_logout_uri=receiver.url)
        code, verifier = get_code(client, world, shop)
        tokens = redeem(client, world, shop, code, verifier).get_json()
        sub = jwt_claims(tokens["id_token"])["sub"]
        assert sub != public_subject(app, world, world.alice)
        out = client.get(f"/t/{world.slug}/logout", query_string={"id_token_hint": tokens["id_token"]})
        assert out.status_code == 200  # signed out at once: the hint named this user
        assert outbox.deliver(app.extensions["idp.engine"], app.config["IDP"],
                              keyring=app.extensions["idp.keyrings"]).sent == 1
        (got,) = receiver.received
    jwks = client.get(f"/t/{world.slug}/jwks").get_json()
    _, claims = validated(got.token, jwks, world.issuer, shop.client_id)
    assert claims["sub"] == sub


# -- registration: the sector -----------------------------------------------------------------


def test_redirect_uris_on_two_hosts_need_a_sector_identifier_uri(app, world):
    message = refusal(app, world, ["https://a.example/cb", "https://b.example/cb"],
                      subject_type="pairwise")
    assert "several hosts" in message and "sector identifier URI" in message


def test_a_sector_document_must_list_every_redirect_uri(app, world):
    with SectorDocument(["https://a.example/cb"]) as sector:
        message = refusal(app, world, ["https://a.example/cb", "https://b.example/cb"],
                          subject_type="pairwise", sector_identifier_uri=sector.url)
    assert message == (f"the sector identifier URI {sector.url} does not list the redirect "
                       "URI(s) https://b.example/cb")


def test_a_sector_document_that_is_not_a_list_or_not_there_is_refused(app, world):
    with SectorDocument({"redirect_uris": ["https://a.example/cb"]}) as sector:  # type: ignore[arg-type]
        assert "JSON array" in refusal(app, world, ["https://a.example/cb"],
                                       subject_type="pairwise", sector_identifier_uri=sector.url)
    assert "cannot be reached" in refusal(app, world, ["https://a.example/cb"],
                                          subject_type="pairwise",
                                          sector_identifier_uri=sector.url)


def test_portals_of_one_sector_document_share_the_sub(app, live_server, live_world, provider, jwks):
    uris = ["https://www.shop.example/cb", "https://m.shop-mobile.example/cb"]
    with SectorDocument(uris) as sector:
        web = register(app, live_world, uris[0], subject_type="pairwise",
                       sector_identifier_uri=sector.url)
        mobile = register(app, live_world, uris[1], subject_type="pairwise",
                          sector_identifier_uri=sector.url)
    # Fetched at registration only: signing in works with the document gone.
    at_web = sign_in_sub(live_server, live_world, provider, jwks, web)
    assert sign_in_sub(live_server, live_world, provider, jwks, mobile) == at_web


def test_a_sector_document_on_a_private_address_needs_the_installations_consent(app, world):
    # As for back-channel logout: only an installation that allows private callbacks
    # (IDP_PRIVATE_CALLBACKS=allow, or one on loopback) fetches from a private address.
    with SectorDocument(["https://a.example/cb"]) as sector:
        message = refusal(app, world, ["https://a.example/cb"], private_allowed=False,
                          subject_type="pairwise", sector_identifier_uri=sector.url)
    assert message == f"the sector identifier URI {sector.url} leads to a private address"


def test_introspection_does_not_hand_a_pairwise_portal_the_users_email(
        app, live_server, live_world, provider, jwks):
    # A portal given pairwise subjects and neither the email nor the profile scope (both
    # say the e-mail) must not learn who the user is elsewhere: introspecting its own access
    # token says the pairwise sub, not the e-mail every portal could correlate on.
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise",
                    scope="openid offline_access")
    signed = code_flow(live_server, live_world, provider, shop)
    assert signed.token["scope"].split() == ["openid", "offline_access"]
    sub = id_token_sub(signed.token, jwks, live_world, shop)
    body = signed.oauth.introspect_token(provider["introspection_endpoint"],
                                         token=signed.token["access_token"], timeout=10).json()
    assert body["active"] is True and body["sub"] == sub
    assert live_world.alice not in body.values()
    assert "username" not in body


def test_a_pairwise_portal_with_the_profile_scope_alone_is_not_told_the_address(
        app, live_server, live_world, provider, jwks):
    # Our user name is the e-mail address: as preferred_username (profile) it would let
    # pairwise portals match their users. It comes only with the email scope.
    shop = register(app, live_world, "https://shop.example/cb", subject_type="pairwise",
                    scope="openid profile")
    signed = code_flow(live_server, live_world, provider, shop)
    info = signed.oauth.get(provider["userinfo_endpoint"], timeout=10).json()
    assert info["name"] and "preferred_username" not in info and "email" not in info
    assert live_world.alice not in info.values()
    body = signed.oauth.introspect_token(provider["introspection_endpoint"],
                                         token=signed.token["access_token"], timeout=10).json()
    assert "username" not in body
