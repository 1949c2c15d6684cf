"""Who may provision: a service of this tenant holding ``users:provision``. Another tenant's
token, a token without the scope, a person's token or none at all is refused, and another
tenant's ids are not found here."""

from __future__ import annotations

import pytest

from tests.support.scim import USER, Scim, grant_scope, token_in_process
from tests.support.world import make_world


def _ids(scim: Scim) -> dict[str, str]:
    listed = scim("GET", "/Users").get_json()["Resources"]
    return {u["userName"]: u["id"] for u in listed}


def test_without_a_token_the_answer_is_401_with_a_challenge(client, world):
    r = client.get(f"/t/{world.slug}/scim/v2/Users")
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert r.get_json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    r = client.get(f"/t/{world.slug}/scim/v2/Users", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]


def test_a_token_without_users_provision_is_403(app, client, world):
    grant_scope(app, world, "admin:read users:provision")
    scim = Scim(client, world, token_in_process(client, world, scope="admin:read"))
    for method, path in [("GET", "/Users"), ("GET", "/ServiceProviderConfig"),
                         ("POST", "/Users")]:
        r = scim(method, path, {"schemas": [USER], "userName": "x@example.com"}
                 if method == "POST" else None)
        assert r.status_code == 403, (method, path)
        assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]


def test_taking_the_scope_from_the_client_takes_it_from_its_token(app, client, world):
    grant_scope(app, world)
    scim = Scim(client, world, token_in_process(client, world))
    assert scim("GET", "/Users").status_code == 200
    grant_scope(app, world, "admin:read")
    assert scim("GET", "/Users").status_code == 403


def test_another_tenant_s_token_and_ids_are_refused(app, settings, client, world):
    other = make_world(app, settings)
    grant_scope(app, world)
    grant_scope(app, other)
    ours = Scim(client, world, token_in_process(client, world))
    theirs = Scim(client, other, token_in_process(client, other))
    their_bob = _ids(theirs)[other.bob]

    # Their token at our address: not a token of this issuer.
    r = Scim(client, world, theirs.token)("GET", "/Users")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    # Our token, their ids: nothing here has them.
    for method, body in [("GET", None), ("DELETE", None),
                         ("PUT", {"schemas": [USER], "userName": "x@example.com"}),
                         ("PATCH", {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                                    "Operations": [{"op": "replace", "path": "active",
                                                    "value": False}]})]:
        r = ours(method, f"/Users/{their_bob}", body)
        assert r.status_code == 404 and r.get_json()["status"] == "404", method
    assert their_bob not in _ids(ours).values()
    assert ours("GET", "/Users", filter=f'id eq "{their_bob}"').get_json()["totalResults"] == 0
    assert theirs("GET", f"/Users/{their_bob}").get_json()["active"] is True


@pytest.mark.parametrize("path", ["/Schemas", "/ResourceTypes", "/ServiceProviderConfig"])
def test_discovery_is_read_only(app, client, world, path):
    grant_scope(app, world)
    scim = Scim(client, world, token_in_process(client, world))
    assert scim("GET", path).status_code == 200
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r = scim(method, path, {})
        assert r.status_code == 405 and r.get_json()["status"] == "405"


def test_an_unknown_address_is_a_scim_404(app, client, world):
    grant_scope(app, world)
    scim = Scim(client, world, token_in_process(client, world))
    r = scim("GET", "/Nothing")
    assert r.status_code == 404 and r.get_json()["detail"]
    assert scim("GET", "/Schemas/urn:nope").status_code == 404
    assert scim("GET", "/ResourceTypes/Nope").status_code == 404
