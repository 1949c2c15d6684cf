"""The token endpoint and what hangs off it: codes, PKCE, client auth, refresh, revocation,
introspection, userinfo — including every failure path a client can hit."""

from __future__ import annotations

import threading

import pytest

from tests.support.journey import pkce_pair
from tests.support.rp import basic, get_code, introspect, redeem, refresh, userinfo
from tests.support.world import ClientCreds, make_world


def at_once(*calls) -> list:
    """Run ``calls`` in threads released together; their results, in order."""
    start, results = threading.Barrier(len(calls)), [None] * len(calls)

    def run(i):
        start.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def tokens(client, world):
    code, verifier = get_code(client, world, world.portal)
    r = redeem(client, world, world.portal, code, verifier)
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_code_exchange_issues_access_id_and_refresh_tokens(tokens):
    assert tokens["token_type"] == "Bearer"
    assert {"access_token", "id_token", "refresh_token", "expires_in"} <= tokens.keys()


def test_token_responses_are_not_cached(client, world):
    code, verifier = get_code(client, world, world.portal)
    r = redeem(client, world, world.portal, code, verifier)
    assert r.headers["Cache-Control"] == "no-store"


def test_client_secret_post_is_accepted(client, world):
    code, verifier = get_code(client, world, world.portal)
    assert redeem(client, world, world.portal, code, verifier, auth="post").status_code == 200


def test_public_client_redeems_with_pkce_and_no_secret(client, world):
    code, verifier = get_code(client, world, world.spa)
    r = redeem(client, world, world.spa, code, verifier, auth="none")
    assert r.status_code == 200 and "id_token" in r.get_json()


def test_public_client_without_verifier_is_refused(client, world):
    code, _ = get_code(client, world, world.spa)
    r = redeem(client, world, world.spa, code, None, auth="none")
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_request"


def test_wrong_code_verifier_is_refused(client, world):
    code, _ = get_code(client, world, world.portal)
    r = redeem(client, world, world.portal, code, pkce_pair()[0])
    assert r.status_code == 400 and r.get_json()["error"] in ("invalid_grant", "invalid_request")


def test_bad_client_secret_is_401_invalid_client(client, world):
    code, verifier = get_code(client, world, world.portal)
    r = client.post(f"/t/{world.slug}/token", headers=basic(world.portal.client_id, "wrong"),
                    data={"grant_type": "authorization_code", "code": code,
                          "redirect_uri": world.portal.redirect_uri, "code_verifier": verifier})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_confidential_client_cannot_skip_authentication(client, world):
    code, verifier = get_code(client, world, world.portal)
    r = redeem(client, world, world.portal, code, verifier, auth="none")
    assert r.status_code in (400, 401) and r.get_json()["error"] == "invalid_client"


def test_redirect_uri_must_match_the_authorization_request(client, world):
    code, verifier = get_code(client, world, world.portal)
    r = redeem(client, world, world.portal, code, verifier, redirect_uri="https://portal.test/other")
    assert r.get_json()["error"] == "invalid_grant"


def test_a_code_is_bound_to_its_client(client, world):
    code, verifier = get_code(client, world, world.portal)
    r = client.post(f"/t/{world.slug}/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": world.portal.redirect_uri,
        "code_verifier": verifier, "client_id": world.spa.client_id})
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def test_replayed_code_is_refused_and_revokes_what_it_issued(client, world):
    code, verifier = get_code(client, world, world.portal)
    first = redeem(client, world, world.portal, code, verifier).get_json()
    assert userinfo(client, world, first["access_token"]).status_code == 200
    again = redeem(client, world, world.portal, code, verifier)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    # RFC 9700 4.2.4: what the code issued no longer works.
    assert userinfo(client, world, first["access_token"]).status_code == 401
    assert introspect(client, world, world.portal, first["access_token"]) == {"active": False}
    assert refresh(client, world, world.portal, first["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_one_code_redeemed_twice_at_once_issues_tokens_once(app, world):
    """Two redemptions of one code racing (on PostgreSQL the claim is made by the statement that
    writes the tokens): one gets tokens, the other is a replay, which ends what the first got."""
    code, verifier = get_code(app.test_client(), world, world.portal)
    clients = [app.test_client() for _ in range(2)]
    results = at_once(*(lambda c=c: redeem(c, world, world.portal, code, verifier)
                        for c in clients))
    assert sorted(r.status_code for r in results) == [200, 400]
    won = next(r for r in results if r.status_code == 200).get_json()
    assert next(r for r in results if r.status_code == 400).get_json()["error"] == "invalid_grant"
    assert userinfo(clients[0], world, won["access_token"]).status_code == 401
    assert refresh(clients[0], world, world.portal, won["refresh_token"]).status_code == 400


def test_refresh_rotates_and_the_new_token_works(client, world, tokens):
    r = refresh(client, world, world.portal, tokens["refresh_token"])
    assert r.status_code == 200
    rotated = r.get_json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert userinfo(client, world, rotated["access_token"]).status_code == 200
    assert refresh(client, world, world.portal, rotated["refresh_token"]).status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client, world, tokens):
    rotated = refresh(client, world, world.portal, tokens["refresh_token"]).get_json()
    reuse = refresh(client, world, world.portal, tokens["refresh_token"])
    assert reuse.status_code == 400 and reuse.get_json()["error"] == "invalid_grant"
    # The attacker's replay also kills the legitimate holder's newer tokens (RFC 9700 4.14.2).
    assert refresh(client, world, world.portal, rotated["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert userinfo(client, world, rotated["access_token"]).status_code == 401


def test_one_refresh_token_presented_twice_at_once_is_spent_once(app, world, tokens):
    """Two requests racing with the same refresh token: one rotation, and the other is a
    reuse, which ends the family (the winner's new refresh token too)."""
    clients = [app.test_client() for _ in range(2)]
    results = at_once(*(lambda c=c: refresh(c, world, world.portal, tokens["refresh_token"])
                        for c in clients))
    assert sorted(r.status_code for r in results) == [200, 400]
    won = next(r for r in results if r.status_code == 200).get_json()
    lost = next(r for r in results if r.status_code == 400).get_json()
    assert lost["error"] == "invalid_grant"
    later = refresh(clients[0], world, world.portal, won["refresh_token"])
    assert later.status_code == 400 and later.get_json()["error"] == "invalid_grant"


def test_refresh_token_is_bound_to_its_client(client, world, tokens):
    other = make_other_confidential_client(client, world)
    r = refresh(client, world, other, tokens["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    # The failed attempt did not burn the real holder's token.
    assert refresh(client, world, world.portal, tokens["refresh_token"]).status_code == 200


def test_a_refresh_may_narrow_the_scope_but_never_widen_it(client, world, tokens):
    def ask(refresh_token, scope):
        return client.post(f"/t/{world.slug}/token", headers=basic(world.portal.client_id, world.portal.client_secret),
                           data={"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": scope})

    wider = ask(tokens["refresh_token"], tokens["scope"] + " admin")
    assert wider.status_code == 400 and wider.get_json()["error"] == "invalid_scope"
    # Refused before it was spent: the holder can still use it, for a narrower scope.
    narrower = ask(tokens["refresh_token"], "openid offline_access")
    assert narrower.status_code == 200 and narrower.get_json()["scope"] == "openid offline_access"
    assert refresh(client, world, world.portal, tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_an_expired_refresh_token_is_refused(app, client, world, tokens):
    from sqlalchemy import update

    from idp import db
    from idp import hashing
    from idp.models import Token

    with app.app_context():
        session = db.session()
        session.execute(update(Token).where(
            Token.refresh_token_hash == hashing.digest("refresh-token", tokens["refresh_token"]))
            .values(refresh_expires_at=Token.issued_at))
        session.commit()
    r = refresh(client, world, world.portal, tokens["refresh_token"])
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"


def make_other_confidential_client(client, world):
    from idp import db, directory

    with client.application.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        new = directory.create_client(session, tenant, "Other", ["https://other.test/cb"])
        session.commit()
    return ClientCreds(new.client.client_id, new.secret, "https://other.test/cb", "")


def test_no_refresh_token_without_offline_access(client, world):
    code, verifier = get_code(client, world, world.portal, scope="openid email")
    body = redeem(client, world, world.portal, code, verifier).get_json()
    assert "refresh_token" not in body and "id_token" in body


def test_client_credentials_for_a_client_that_has_the_grant(client, world):
    r = client.post(f"/t/{world.slug}/token", headers=basic(world.service.client_id, world.service.client_secret),
                    data={"grant_type": "client_credentials"})
    assert r.status_code == 200
    body = r.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    info = introspect(client, world, world.service, body["access_token"])
    assert info["active"] is True and info["client_id"] == world.service.client_id


def test_a_client_may_only_use_the_grants_it_was_given(client, world, tokens):
    r = client.post(f"/t/{world.slug}/token", headers=basic(world.portal.client_id, world.portal.client_secret),
                    data={"grant_type": "client_credentials"})
    assert r.status_code == 400 and r.get_json()["error"] == "unauthorized_client"


def test_userinfo_by_get_and_post(client, world, tokens):
    got = userinfo(client, world, tokens["access_token"])
    assert got.status_code == 200 and got.get_json()["email"] == world.alice
    posted = client.post(f"/t/{world.slug}/userinfo", data={"access_token": tokens["access_token"]})
    assert posted.status_code == 200 and posted.get_json() == got.get_json()


def test_userinfo_without_or_with_a_bad_token_is_401(client, world):
    assert client.get(f"/t/{world.slug}/userinfo").status_code == 401
    r = userinfo(client, world, "not-a-token")
    assert r.status_code == 401 and "invalid_token" in r.headers["WWW-Authenticate"]


def test_an_access_token_of_another_tenant_is_refused(app, client, settings, world, tokens):
    other = make_world(app, settings)
    assert userinfo(client, other, tokens["access_token"]).status_code == 401


def test_revoking_an_access_token(client, world, tokens):
    r = client.post(f"/t/{world.slug}/revoke", headers=basic(world.portal.client_id, world.portal.client_secret),
                    data={"token": tokens["access_token"], "token_type_hint": "access_token"})
    assert r.status_code == 200
    assert userinfo(client, world, tokens["access_token"]).status_code == 401
    # The refresh token lives on (RFC 7009: revoking an access token need not end the grant).
    assert refresh(client, world, world.portal, tokens["refresh_token"]).status_code == 200


def test_revoking_a_refresh_token_ends_its_access_tokens(client, world, tokens):
    r = client.post(f"/t/{world.slug}/revoke", headers=basic(world.portal.client_id, world.portal.client_secret),
                    data={"token": tokens["refresh_token"]})
    assert r.status_code == 200
    assert refresh(client, world, world.portal, tokens["refresh_token"]).status_code == 400
    assert userinfo(client, world, tokens["access_token"]).status_code == 401


def test_revoking_an_unknown_token_is_200(client, world):
    r = client.post(f"/t/{world.slug}/revoke", headers=basic(world.portal.client_id, world.portal.client_secret),
                    data={"token": "whatever"})
    assert r.status_code == 200


def test_introspection_needs_an_authenticated_client(client, world, tokens):
    r = client.post(f"/t/{world.slug}/introspect",
                    data={"token": tokens["access_token"], "client_id": world.spa.client_id})
    assert r.status_code == 401 and r.get_json()["error"] == "invalid_client"


def test_introspection_of_access_and_refresh_tokens(client, world, tokens):
    info = introspect(client, world, world.portal, tokens["access_token"])
    assert info["active"] is True and info["username"] == world.alice and info["acr"] == "pwd"
    assert introspect(client, world, world.portal, tokens["refresh_token"])["active"] is True
    assert introspect(client, world, world.portal, "nonsense") == {"active": False}


def test_an_expired_code_is_refused(app, settings, world):
    from dataclasses import replace

    from idp import create_app

    impatient = create_app(replace(settings, code_ttl=0), TESTING=True)
    c = impatient.test_client()
    code, verifier = get_code(c, world, world.portal)
    r = redeem(c, world, world.portal, code, verifier)
    assert r.status_code == 400 and r.get_json()["error"] == "invalid_grant"
    impatient.extensions["idp.engine"].dispose()
