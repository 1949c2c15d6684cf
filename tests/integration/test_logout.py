"""RP-Initiated Logout: id_token_hint, exact post_logout_redirect_uri, state, confirmation."""

from __future__ import annotations

from tests.support.journey import CSRF, Browser, field, query
from tests.support.rp import get_code, params_for, redeem


def signed_in_tokens(client, world):
    code, verifier = get_code(client, world, world.portal)
    return redeem(client, world, world.portal, code, verifier).get_json()


def still_signed_in(client, world) -> bool:
    page = Browser(client).get(f"/t/{world.slug}/authorize", params_for(world.portal, prompt="none"))
    return "code" in query(page.location)


def test_logout_with_hint_returns_to_the_registered_uri_with_state(client, world):
    tokens = signed_in_tokens(client, world)
    r = client.get(f"/t/{world.slug}/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": world.portal.post_logout_redirect_uri,
        "state": "bye-1"})
    assert r.status_code == 302
    assert r.headers["Location"] == f"{world.portal.post_logout_redirect_uri}?state=bye-1"
    assert not still_signed_in(client, world)


def test_unregistered_post_logout_uri_is_an_error_page(client, world):
    tokens = signed_in_tokens(client, world)
    r = client.get(f"/t/{world.slug}/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": "https://evil.test/"})
    assert r.status_code == 400 and "Location" not in r.headers
    assert still_signed_in(client, world)


def test_post_logout_uri_without_a_client_is_refused(client, world):
    signed_in_tokens(client, world)
    r = client.get(f"/t/{world.slug}/logout",
                   query_string={"post_logout_redirect_uri": world.portal.post_logout_redirect_uri})
    assert r.status_code == 400 and "Location" not in r.headers


def test_logout_without_hint_asks_before_signing_out(client, world):
    signed_in_tokens(client, world)
    r = client.get(f"/t/{world.slug}/logout", query_string={
        "client_id": world.portal.client_id, "post_logout_redirect_uri": world.portal.post_logout_redirect_uri})
    assert r.status_code == 200 and "Sign out?" in r.get_data(as_text=True)
    assert still_signed_in(client, world)  # a cross-site link alone signs no one out
    html = r.get_data(as_text=True)
    done = client.post(f"/t/{world.slug}/logout", data={
        "csrf_token": field(CSRF, html), "confirm": "yes", "client_id": world.portal.client_id,
        "post_logout_redirect_uri": world.portal.post_logout_redirect_uri})
    assert done.status_code == 302 and done.headers["Location"] == world.portal.post_logout_redirect_uri
    assert not still_signed_in(client, world)


def test_confirmation_without_csrf_token_signs_no_one_out(client, world):
    signed_in_tokens(client, world)
    r = client.post(f"/t/{world.slug}/logout", data={"confirm": "yes"})
    assert r.status_code == 400
    assert still_signed_in(client, world)


def test_a_forged_id_token_hint_is_an_error_page(client, world):
    signed_in_tokens(client, world)
    r = client.get(f"/t/{world.slug}/logout", query_string={"id_token_hint": "eyJhbGciOiJub25lIn0.e30."})
    assert r.status_code == 400 and still_signed_in(client, world)


def test_hint_and_client_id_must_agree(client, world):
    tokens = signed_in_tokens(client, world)
    r = client.get(f"/t/{world.slug}/logout", query_string={
        "id_token_hint": tokens["id_token"], "client_id": world.spa.client_id})
    assert r.status_code == 400
