"""An administrator requires PAR and signed request objects of one portal: in the console,
the admin API and the CLI; the portal's next sign-in request is held to it."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select

from idp import db
from idp.models import Client
from tests.support.api import api_for
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field, query
from tests.support.rp import params_for


def _edit_portal(browser, world, client_id, **form):
    url = f"/t/{world.slug}/admin/portals/{client_id}"
    page = browser.get(url).text
    data = {"csrf_token": field(CSRF, page),
            "name": html.unescape(re.search(r'id="portal-name" name="name" value="([^"]*)"', page).group(1)),
            "redirect_uris": html.unescape(re.search(r'name="redirect_uris"[^>]*>([^<]*)</textarea>', page).group(1)),
            "post_logout_redirect_uris": "", "min_acr": "", **form}
    return browser.post(url, data), page


def test_console_requires_par_of_a_portal(app, client, world):
    browser = admin_browser(app, world)
    answer, page = _edit_portal(browser, world, world.portal.client_id, require_par="1",
                                request_object_signing_alg="ES256")
    assert "pushed authorization requests" in page  # the box says what it asks, in words
    assert answer.status == 302, answer.text[:500]
    shown = browser.get(f"/t/{world.slug}/admin/portals/{world.portal.client_id}").text
    assert re.search(r'id="portal-require-par"[^>]*checked', shown)
    assert re.search(r'<option value="ES256" selected>', shown)
    refused = Browser(client).get(f"/t/{world.slug}/authorize", params_for(world.portal))
    assert query(refused.location)["error"] == "invalid_request"
    # Unticked again: the portal's plain requests work again.
    _edit_portal(browser, world, world.portal.client_id)
    page = Browser(client).get(f"/t/{world.slug}/authorize", params_for(world.portal))
    assert page.status == 302 and "/login" in page.location


def test_console_refuses_an_unknown_algorithm(app, world):
    browser = admin_browser(app, world)
    answer, _ = _edit_portal(browser, world, world.portal.client_id,
                             request_object_signing_alg="HS256")
    assert answer.status == 400 and "request object algorithm" in answer.text


def test_admin_api_client_fields(app, client, world):
    api = api_for(app, client, world)
    made = api.post("/clients", json={
        "name": "Bank", "redirect_uris": ["https://bank.test/cb"],
        "require_pushed_authorization_requests": True, "require_signed_request_object": True,
        "request_object_signing_alg": "PS256"})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["require_pushed_authorization_requests"] is True
    assert body["require_signed_request_object"] is True
    assert body["request_object_signing_alg"] == "PS256"
    changed = api.patch(f"/clients/{body['client_id']}", json={
        "require_pushed_authorization_requests": False, "request_object_signing_alg": None})
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["require_pushed_authorization_requests"] is False
    assert changed.get_json()["request_object_signing_alg"] is None
    assert changed.get_json()["require_signed_request_object"] is True  # not given: unchanged
    bad = api.post("/clients", json={"name": "Bank", "redirect_uris": ["https://bank.test/cb"],
                                     "request_object_signing_alg": "none"})
    assert bad.status_code in (400, 422)


def test_cli_creates_a_client_that_requires_par(idp, world):
    code, out, err = idp("client", "create", world.slug, "--name", "Bank", "--redirect-uri",
                         "https://bank.test/cb", "--require-par",
                         "--require-signed-request-object", "--request-object-alg", "ES256")
    assert code == 0, err
    made = json.loads(out)
    assert made["require_par"] is True and made["require_signed_request_object"] is True
    assert made["request_object_signing_alg"] == "ES256"
    code, out, err = idp("client", "create", world.slug, "--name", "Bank", "--redirect-uri",
                         "https://bank.test/cb", "--request-object-alg", "HS256")
    assert code != 0 and "ES256" in err and len(err.strip().splitlines()) == 1


def test_cli_update_sets_and_clears_each_rule(app, idp, world):
    def updated(*flags: str) -> dict:
        code, out, err = idp("client", "update", world.slug, world.portal.client_id, *flags)
        assert code == 0, err
        shown = json.loads(out)
        with app.app_context():
            row = db.session().scalar(select(Client).where(
                Client.client_id == world.portal.client_id))
            stored = {"require_par": row.require_par,
                      "require_signed_request_object": row.require_signed_request_object,
                      "request_object_signing_alg": row.request_object_signing_alg,
                      "dpop_bound_access_tokens": row.dpop_bound_access_tokens}
        assert {k: shown[k] for k in stored} == stored  # what it prints is what it stored
        return stored

    assert updated("--require-par", "--require-signed-request-object",
                   "--request-object-alg", "PS256", "--dpop") == {
        "require_par": True, "require_signed_request_object": True,
        "request_object_signing_alg": "PS256", "dpop_bound_access_tokens": True}
    # What is not given stays.
    assert updated("--name", "Renamed")["request_object_signing_alg"] == "PS256"
    assert updated("--no-require-par")["require_par"] is False
    assert updated("--no-require-signed-request-object") == {
        "require_par": False, "require_signed_request_object": False,
        "request_object_signing_alg": "PS256", "dpop_bound_access_tokens": True}
    assert updated("--request-object-alg", "")["request_object_signing_alg"] is None
    assert updated("--no-dpop")["dpop_bound_access_tokens"] is False
    assert updated("--dpop", "yes")["dpop_bound_access_tokens"] is True
    assert updated("--dpop", "no")["dpop_bound_access_tokens"] is False


def test_cli_update_holds_the_portal_to_par(client, idp, world):
    code, _, err = idp("client", "update", world.slug, world.portal.client_id, "--require-par")
    assert code == 0, err
    refused = Browser(client).get(f"/t/{world.slug}/authorize", params_for(world.portal))
    assert query(refused.location)["error"] == "invalid_request"


@pytest.mark.parametrize("flags,message", [
    (("--request-object-alg", "HS256"), "RS256, PS256, ES256, EdDSA"),
    (("--request-object-alg", "none"), "RS256, PS256, ES256, EdDSA"),
    (("--dpop", "maybe"), "invalid choice: 'maybe'"),
    (("--require-par", "yes"), "unrecognized arguments: yes"),
    (("--dpop", "--no-dpop"), "not allowed with argument"),
])
def test_cli_update_refuses_a_bad_value_with_a_clear_error(app, idp, world, flags, message):
    code, out, err = idp("client", "update", world.slug, world.portal.client_id,
                         "--require-par", *flags)
    assert code != 0 and out == "" and "Traceback" not in err
    assert message in err.strip().splitlines()[-1]  # said last, after argparse's usage if any
    with app.app_context():
        row = db.session().scalar(select(Client).where(Client.client_id == world.portal.client_id))
        assert not row.require_par  # nothing changed


def test_sign_in_request_rules_are_refused_for_a_machine_client(app, client, idp, world):
    """PAR and request objects govern sign-in requests: a client_credentials-only service
    never sends one, so the CLI and the API refuse them there (the console's form too)."""
    code, out, err = idp("client", "update", world.slug, world.service.client_id,
                         "--require-par")
    assert code == 1 and out == ""
    assert "for a client that signs people in" in err.strip().splitlines()[-1]
    api = api_for(app, client, world)
    refused = api.patch(f"/clients/{world.service.client_id}",
                        json={"require_signed_request_object": True})
    assert refused.status_code in (400, 409, 422), refused.get_json()
    assert "signs people in" in json.dumps(refused.get_json())
    made = api.post("/clients", json={"name": "Batch", "grant_types": ["client_credentials"],
                                      "require_pushed_authorization_requests": True})
    assert made.status_code in (400, 422), made.get_json()
    assert "signs people in" in json.dumps(made.get_json())
    with app.app_context():
        row = db.session().scalar(select(Client).where(
            Client.client_id == world.service.client_id))
        assert not (row.require_par or row.require_signed_request_object)
    # Turning them off is always allowed (nothing to refuse).
    code, _, err = idp("client", "update", world.slug, world.service.client_id,
                       "--no-require-par", "--request-object-alg", "")
    assert code == 0, err
