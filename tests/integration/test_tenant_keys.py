"""Each tenant signs with keys of its own: its JWKS holds only them, another tenant's tokens
fail against it, `idp keys rotate` works per tenant, and the shared keys of earlier versions
move to every tenant without breaking a token they signed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet

from idp import create_app, db as idp_db
from idp.oidc import keys
from tests.support.api import grant_scopes, token as service_token
from tests.support.keys import KeyClock, fetched_jwks, jwks_kids, tenant_folder
from tests.support.rp import get_code, jwt_claims, redeem, userinfo
from tests.support.world import make_world


def kid(token: str) -> str:
    return jws.extract_compact(token.encode()).protected["kid"]


def signed_in(client, world) -> dict:
    """A person signs in at the world's portal: its token response."""
    code, verifier = get_code(client, world, world.portal)
    response = redeem(client, world, world.portal, code, verifier)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_a_tenants_tokens_verify_against_its_own_jwks_and_not_another_tenants(
        app, settings, live_server):
    a, b = (make_world(app, settings, base_url=live_server.url) for _ in range(2))
    id_token = signed_in(app.test_client(), a)["id_token"]
    session = OAuth2Session(a.service.client_id, a.service.client_secret)
    access_token = session.fetch_token(f"{a.issuer}/token",
                                       grant_type="client_credentials")["access_token"]
    theirs, others = fetched_jwks(a.issuer), fetched_jwks(b.issuer)  # as an RP fetches them
    assert not {k.kid for k in theirs.keys} & {k.kid for k in others.keys}
    assert jwt.decode(id_token, theirs, algorithms=["RS256"]).claims["aud"] == [a.portal.client_id]
    assert jwt.decode(access_token, theirs,
                      algorithms=["ES256"]).claims["client_id"] == a.service.client_id
    for token, alg in ((id_token, "RS256"), (access_token, "ES256")):
        with pytest.raises(JoseError):
            jwt.decode(token, others, algorithms=[alg])
        # Not only an unknown kid: no key of B's verifies the signature, whatever it is called.
        for key in others.keys:
            if key.key_type == theirs.get_by_kid(kid(token)).key_type:
                with pytest.raises(BadSignatureError):
                    jws.deserialize_compact(token, key, algorithms=[alg])


def _signed_with(token: str, key: keys.StoredKey) -> str:
    """``token``'s header and claims signed again with ``key`` (and named after it)."""
    header = {**jws.extract_compact(token.encode()).protected, "kid": key.kid}
    return jwt.encode(header, jwt_claims(token), key.imported())


def test_another_tenants_access_tokens_are_refused_by_userinfo_and_the_admin_api(
        app, client, settings, world):
    other = make_world(app, settings)
    for w in (world, other):
        grant_scopes(app, w)
    ours = signed_in(client, world)["access_token"]
    admin = service_token(client, world)
    assert userinfo(client, world, ours).status_code == 200
    assert client.get(f"/t/{world.slug}/api/v1/users",
                      headers={"Authorization": f"Bearer {admin}"}).status_code == 200
    # At the other tenant: its issuer differs, and so does its key.
    assert userinfo(client, other, ours).status_code == 401
    assert client.get(f"/t/{other.slug}/api/v1/users",
                      headers={"Authorization": f"Bearer {admin}"}).status_code == 401
    # The key alone is enough: the other tenant's own tokens, signed again with our key (under
    # our kid or theirs), are refused there.
    theirs = signed_in(client, other)["access_token"]
    their_admin = service_token(client, other)
    assert userinfo(client, other, theirs).status_code == 200
    our_key = next(k for k in keys.read_all(tenant_folder(app, settings, world.slug))
                   if k.kid == kid(ours))
    for forged in (_signed_with(theirs, our_key),
                   _signed_with(theirs, replace(our_key, kid=kid(theirs)))):
        assert userinfo(client, other, forged).status_code == 401
    forged_admin = _signed_with(their_admin, replace(our_key, kid=kid(their_admin)))
    assert client.get(f"/t/{other.slug}/api/v1/users",
                      headers={"Authorization": f"Bearer {forged_admin}"}).status_code == 401


def test_rotating_one_tenant_publishes_then_signs_and_leaves_the_others_alone(
        app, client, idp, settings, world, monkeypatch):
    other = make_world(app, settings)
    before, their_before = signed_in(client, world), signed_in(client, other)
    our_kids, their_kids = jwks_kids(client, world.slug), jwks_kids(client, other.slug)
    code, out, err = idp("keys", "rotate", world.slug)
    assert code == 0, err
    [rotated] = json.loads(out)["rotated"]
    new = set(rotated["keys"].values())
    assert rotated["tenant"] == world.slug and len(new) == 2
    clock = KeyClock()
    monkeypatch.setattr(keys, "time", clock)
    # Published at once, not signing yet.
    assert jwks_kids(client, world.slug) == our_kids | new
    assert kid(signed_in(client, world)["id_token"]) == kid(before["id_token"])
    clock.now += keys.JWKS_MAX_AGE + 1
    # The switch: the new keys sign, the old ones stay published for the tokens they signed.
    after = signed_in(client, world)
    assert {kid(after["id_token"]), kid(after["access_token"])} == new
    assert userinfo(client, world, before["access_token"]).status_code == 200
    ours = KeySet.import_key_set(client.get(f"/t/{world.slug}/jwks").get_json())
    for token in (before["id_token"], after["id_token"]):
        assert jwt.decode(token, ours, algorithms=["RS256"]).claims["sub"]
    # The other tenant: the same keys published, the same keys signing.
    assert jwks_kids(client, other.slug) == their_kids
    assert kid(signed_in(client, other)["id_token"]) == kid(their_before["id_token"])
    clock.now += max(settings.id_token_ttl, settings.access_token_ttl) + 1
    assert jwks_kids(client, world.slug) == new


def test_rotating_with_no_tenant_named_rotates_each_tenant(idp, settings, tmp_path):
    environ = {"IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
               "IDP_KEYS_DIR": str(tmp_path / "keys")}
    assert idp("init", environ=environ)[0] == 0
    for slug in ("north", "south"):
        assert idp("tenant", "create", slug, environ=environ)[0] == 0
    code, out, err = idp("keys", "rotate", "--now", environ=environ)
    assert code == 0, err
    rotated = json.loads(out)["rotated"]
    assert [r["tenant"] for r in rotated] == ["north", "south"]
    north, south = (set(r["keys"].values()) for r in rotated)
    assert len(north) == len(south) == 2 and not north & south
    # Each in its own folder (north was made first: tenant 1).
    for tenant_id, kids in ((1, north), (2, south)):
        folder = keys.tenant_folder(tmp_path / "keys", tenant_id)
        assert kids <= {p.stem for p in folder.glob("*.json")}


class SharedKeyrings:
    """The keyrings of earlier versions: one keyring, at the root of IDP_KEYS_DIR, signing
    for every tenant."""

    def __init__(self, root, grace):
        self.ring = keys.Keyring(root, grace)

    def for_tenant(self, tenant_id):
        return self.ring


def test_the_shared_keys_of_earlier_versions_move_to_each_tenant_without_breaking_a_token(
        idp, settings, tmp_path, monkeypatch):
    mine = replace(settings, database_url=f"sqlite:///{tmp_path / 'idp.sqlite3'}",
                   keys_dir=tmp_path / "keys")
    grace = max(mine.id_token_ttl, mine.access_token_ttl)
    idp_db.upgrade(mine.database_url)
    shared = {k.alg: k.kid for k in keys.ensure(mine.keys_dir)}  # `idp init` of before
    earlier = create_app(mine, TESTING=True)
    earlier.extensions["idp.keyrings"] = SharedKeyrings(mine.keys_dir, grace)
    world = make_world(earlier, mine)
    before = signed_in(earlier.test_client(), world)
    assert {kid(before["id_token"]), kid(before["access_token"])} == set(shared.values())
    earlier.extensions["idp.engine"].dispose()

    environ = {"IDP_DATABASE_URL": mine.database_url, "IDP_KEYS_DIR": str(mine.keys_dir)}
    code, out, err = idp("init", environ=environ)  # the upgrade
    assert code == 0, err
    upgrade = json.loads(out)
    assert upgrade["tenants_given_shared_keys"] == [world.slug]
    assert sorted(upgrade["shared_keys_retired"]) == sorted(shared.values())
    assert list(mine.keys_dir.glob("*.json")) == []
    assert {p.stem for p in (mine.keys_dir / keys.SHARED_RETIRED).glob("*.json")} == set(
        shared.values())

    now = create_app(mine, TESTING=True)
    client = now.test_client()
    clock = KeyClock()
    monkeypatch.setattr(keys, "time", clock)
    assert userinfo(client, world, before["access_token"]).status_code == 200
    published = jwks_kids(client, world.slug)
    own = published - set(shared.values())
    assert set(shared.values()) <= published and len(own) == 2  # the tenant's own, ahead
    # Until every cached JWKS has the tenant's own keys, the shared ones still sign.
    assert kid(signed_in(client, world)["id_token"]) == shared["RS256"]
    clock.now += keys.JWKS_MAX_AGE + 1
    after = signed_in(client, world)
    assert {kid(after["id_token"]), kid(after["access_token"])} == own
    assert userinfo(client, world, before["access_token"]).status_code == 200
    jwks = KeySet.import_key_set(client.get(f"/t/{world.slug}/jwks").get_json())
    for token in (before["id_token"], after["id_token"]):
        assert jwt.decode(token, jwks, algorithms=["RS256"]).claims["iss"] == world.issuer
    # A tenant made after the move has keys of its own only.
    later = make_world(now, mine)
    assert not jwks_kids(client, later.slug) & (published | set(shared.values()))
    clock.now += grace + 1
    assert jwks_kids(client, world.slug) == own  # the shared keys' tokens have all expired

    code, out, err = idp("init", environ=environ)  # again: nothing to do
    assert code == 0, err
    assert json.loads(out)["tenants_given_shared_keys"] == json.loads(out)[
        "shared_keys_retired"] == []
    assert jwks_kids(client, world.slug) == own
    now.extensions["idp.engine"].dispose()


# A worker of another process: waits for the go, then asks for tenant 7's keyring.
WORKER = """
import sys, time
from pathlib import Path
from idp.oidc import keys
root = Path(sys.argv[1])
(root / f"ready-{sys.argv[2]}").touch()
while not (root / "go").exists():
    time.sleep(0.001)
print(keys.Keyrings(root, grace=60).for_tenant(7).active("RS256")[0])
"""


def test_workers_asking_at_once_for_a_new_tenants_keyring_make_one_key_per_algorithm(tmp_path):
    processes = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(n)],
                                  stdout=subprocess.PIPE, text=True) for n in range(2)]
    while not all((tmp_path / f"ready-{n}").exists() for n in range(2)):
        time.sleep(0.01)
    start, seen = threading.Barrier(3), []

    def worker():  # a thread of this process, each with the keyrings of a worker of its own
        start.wait()
        seen.append(keys.Keyrings(tmp_path, grace=60).for_tenant(7).active("RS256")[0])

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    (tmp_path / "go").touch()
    start.wait()
    for t in threads:
        t.join(60)
    for p in processes:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        seen.append(out.strip())
    made = keys.read_all(keys.tenant_folder(tmp_path, 7))
    assert sorted(k.alg for k in made) == sorted(keys.ALGORITHMS)
    assert set(seen) == {k.kid for k in made if k.alg == "RS256"}
