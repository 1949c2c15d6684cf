"""An administrator requires PAR and signed request objects of one portal: in the console,
the admin API and the CLI; the portal's next sign-in request is held to it."""

from __future__ import annotations

import html
import json
import re

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
