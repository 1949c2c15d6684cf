"""A client's "DPoP required" (``dpop_bound_access_tokens``, RFC 9449 5.2), set where admins
set a client up: the ``idp`` command, the console's portal page and the admin API. Each test
then asks the token endpoint, as the client would, whether the setting holds."""

from __future__ import annotations

import html
import json
import re

from tests.support.api import Api, grant_scopes, token
from tests.support.console import admin_browser
from tests.support.dpop import Holder
from tests.support.journey import CSRF, field
from tests.support.rp import basic


def client_credentials(client, world, client_id, secret, proof=None):
    headers = basic(client_id, secret)
    if proof:
        headers["DPoP"] = proof
    return client.post(f"/t/{world.slug}/token", headers=headers,
                       data={"grant_type": "client_credentials"})


def test_cli_creates_and_updates_a_dpop_only_client(client, world, idp, settings):
    # The CLI tells the server's workers of the change through Redis, when there is one.
    shared = {"IDP_REDIS_URL": settings.redis_url} if settings.redis_url else {}
    code, out, err = idp("client", "create", world.slug, "--name", "Bound service",
                         "--grant-types", "client_credentials", "--dpop")
    assert code == 0, err
    made = json.loads(out)
    assert made["dpop_bound_access_tokens"] is True
    refused = client_credentials(client, world, made["client_id"], made["client_secret"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"
    holder = Holder()
    bound = client_credentials(client, world, made["client_id"], made["client_secret"],
                               holder.proof("POST", f"{world.issuer}/token"))
    assert bound.status_code == 200 and bound.get_json()["token_type"] == "DPoP"

    code, out, err = idp("client", "update", world.slug, made["client_id"], "--dpop", "no",
                         environ=shared)
    assert code == 0, err and json.loads(out)["dpop_bound_access_tokens"] is False
    assert client_credentials(client, world, made["client_id"], made["client_secret"]).status_code == 200


def test_console_checkbox_makes_a_portal_dpop_only(app, client, world):
    browser = admin_browser(app, world)
    url = f"/t/{world.slug}/admin/portals/{world.service.client_id}"
    page = browser.get(url).text
    assert "Tokens only for the portal's own key (DPoP)" in html.unescape(page)
    assert not re.search(r'id="portal-dpop"[^>]*checked', page)
    done = browser.post(url, {"csrf_token": field(CSRF, page), "name": "Service",
                              "redirect_uris": "", "post_logout_redirect_uris": "",
                              "min_acr": "", "dpop_bound_access_tokens": "1"})
    assert done.status == 302
    assert re.search(r'id="portal-dpop"[^>]*checked', browser.get(url).text)
    creds = world.service
    refused = client_credentials(client, world, creds.client_id, creds.client_secret)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_dpop_proof"


def test_admin_api_sets_and_shows_the_flag(app, client, world):
    grant_scopes(app, world)
    api = Api(client, world.slug, token(client, world))
    made = api.post("/clients", json={"name": "Bound", "grant_types": ["client_credentials"],
                                      "dpop_bound_access_tokens": True})
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["dpop_bound_access_tokens"] is True
    refused = client_credentials(client, world, body["client_id"], body["client_secret"])
    assert refused.get_json()["error"] == "invalid_dpop_proof"
    changed = api.patch(f"/clients/{body['client_id']}", json={"dpop_bound_access_tokens": False})
    assert changed.status_code == 200 and changed.get_json()["dpop_bound_access_tokens"] is False
    assert api.get(f"/clients/{body['client_id']}").get_json()["dpop_bound_access_tokens"] is False
    assert client_credentials(client, world, body["client_id"], body["client_secret"]).status_code == 200
