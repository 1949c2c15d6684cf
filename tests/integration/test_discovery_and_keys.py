"""Discovery metadata, JWKS, key files and rotation."""

from __future__ import annotations

import stat
import json
import time

from joserfc import jwt
from joserfc.jwk import KeySet

from idp.oidc import keys
from idp.oidc.keys import Keyring
from tests.support.keys import KeyClock, jwks_kids, tenant_folder
from tests.support.rp import get_code, redeem, userinfo
from tests.support.world import ClientCreds


def test_discovery_describes_this_issuer(client, world):
    meta = client.get(f"/t/{world.slug}/.well-known/openid-configuration").get_json()
    assert meta["issuer"] == world.issuer
    for name in ("authorization", "token", "userinfo", "revocation", "introspection", "end_session"):
        assert meta[f"{name}_endpoint"].startswith(world.issuer + "/")
    assert meta["jwks_uri"] == f"{world.issuer}/jwks"
    assert meta["acr_values_supported"] == ["pwd", "mfa", "phr"]
    assert {"amr", "acr", "auth_time"} <= set(meta["claims_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["ui_locales_supported"] == ["en", "de", "fr", "es"]  # the hosted pages speak them
    # RFC 8414 metadata is the same document.
    assert client.get(f"/t/{world.slug}/.well-known/oauth-authorization-server").get_json() == meta


def test_jwks_publishes_public_keys_only(client, world):
    body = client.get(f"/t/{world.slug}/jwks").get_json()
    algs = {k["alg"] for k in body["keys"]}
    assert {"RS256", "ES256"} <= algs
    for key in body["keys"]:
        assert "d" not in key and "p" not in key and key["use"] == "sig" and key["kid"]


def test_key_files_are_private(app, client, world, settings):
    assert jwks_kids(client, world.slug)  # the tenant's keys exist once asked for
    folder = tenant_folder(app, settings, world.slug)
    files = list(folder.glob("*.json"))
    assert {p.stem for p in files} == jwks_kids(client, world.slug)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in (folder, folder.parent):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_id_token_verifies_against_jwks(client, world):
    code, verifier = get_code(client, world, world.portal)
    tokens = redeem(client, world, world.portal, code, verifier).get_json()
    jwks = KeySet.import_key_set(client.get(f"/t/{world.slug}/jwks").get_json())
    claims = jwt.decode(tokens["id_token"], jwks, algorithms=["RS256"]).claims
    assert claims["iss"] == world.issuer and claims["aud"] == [world.portal.client_id]
    assert claims["amr"] == ["pwd"] and claims["acr"] == "pwd"
    assert isinstance(claims["auth_time"], int) and claims["sid"]


def test_rotation_keeps_old_keys_published_until_their_tokens_expire(tmp_path):
    keys.ensure(tmp_path)
    ring = Keyring(tmp_path, grace=2)
    old_kid, _ = ring.active("RS256")

    def served() -> set[str]:  # the JSON the JWKS endpoint sends (cached between changes)
        return {k["kid"] for k in json.loads(ring.jwks_json())["keys"]}

    assert old_kid in served()
    time.sleep(0.01)
    created = keys.rotate(tmp_path, ahead=0)
    new_kid = next(k.kid for k in created if k.alg == "RS256")
    assert ring.active("RS256")[0] == new_kid  # the running keyring notices the rotation
    published = {k["kid"] for k in ring.jwks()["keys"]}
    assert {old_kid, new_kid} <= published and {old_kid, new_kid} <= served()
    time.sleep(2.1)
    assert old_kid not in {k["kid"] for k in ring.jwks()["keys"]}
    assert old_kid not in served() and new_kid in served()


def test_a_rotation_publishes_new_keys_before_they_sign(tmp_path):
    keys.ensure(tmp_path)
    ring = Keyring(tmp_path, grace=60)
    old = {alg: ring.active(alg)[0] for alg in keys.ALGORITHMS}
    created = {k.alg: k.kid for k in keys.rotate(tmp_path, ahead=1.0)}
    # In JWKS at once, for RPs and resource servers to cache; the old keys still sign.
    served = {k["kid"] for k in json.loads(ring.jwks_json())["keys"]}
    assert set(created.values()) | set(old.values()) <= served
    assert {alg: ring.active(alg)[0] for alg in keys.ALGORITHMS} == old
    time.sleep(1.1)
    # The switch: the new keys sign, the old ones stay published for their tokens.
    assert {alg: ring.active(alg)[0] for alg in keys.ALGORITHMS} == created
    assert set(old.values()) <= {k["kid"] for k in json.loads(ring.jwks_json())["keys"]}


def test_a_second_rotation_before_the_switch_still_leaves_one_signing_key(tmp_path, monkeypatch):
    keys.ensure(tmp_path)
    ring = Keyring(tmp_path, grace=60)
    clock = KeyClock()
    monkeypatch.setattr(keys, "time", clock)
    first = {k.alg: k.kid for k in keys.rotate(tmp_path, ahead=10)}
    second = {k.alg: k.kid for k in keys.rotate(tmp_path, ahead=20)}
    clock.now += 12
    assert {alg: ring.active(alg)[0] for alg in keys.ALGORITHMS} == first
    clock.now += 10
    assert {alg: ring.active(alg)[0] for alg in keys.ALGORITHMS} == second


def test_the_jwks_cache_lifetime_is_the_publication_lead(client, world):
    # An RP's cached JWKS holds a rotation's new keys before they sign anything.
    r = client.get(f"/t/{world.slug}/jwks")
    assert r.headers["Cache-Control"] == f"public, max-age={keys.JWKS_MAX_AGE}"


def test_tokens_signed_before_a_rotation_still_work(app, client, world, settings):
    code, verifier = get_code(client, world, world.portal)
    before = redeem(client, world, world.portal, code, verifier).get_json()
    keys.rotate(tenant_folder(app, settings, world.slug), ahead=0)
    assert userinfo(client, world, before["access_token"]).status_code == 200
    code, verifier = get_code(client, world, world.portal)
    after = redeem(client, world, world.portal, code, verifier).get_json()
    from joserfc import jws

    old_kid = jws.extract_compact(before["id_token"].encode()).protected["kid"]
    new_kid = jws.extract_compact(after["id_token"].encode()).protected["kid"]
    assert old_kid != new_kid
    published = {k["kid"] for k in client.get(f"/t/{world.slug}/jwks").get_json()["keys"]}
    assert {old_kid, new_kid} <= published


def test_a_client_registered_for_es256_gets_es256_id_tokens(app, client, world):
    from idp import db, directory

    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        new = directory.create_client(session, tenant, "EC portal", ["https://ec.test/cb"], id_token_alg="ES256")
        session.commit()
    creds = ClientCreds(new.client.client_id, new.secret, "https://ec.test/cb", "")
    code, verifier = get_code(client, world, creds)
    tokens = redeem(client, world, creds, code, verifier).get_json()
    from joserfc import jws

    assert jws.extract_compact(tokens["id_token"].encode()).protected["alg"] == "ES256"
    jwks = KeySet.import_key_set(client.get(f"/t/{world.slug}/jwks").get_json())
    assert jwt.decode(tokens["id_token"], jwks, algorithms=["ES256"]).claims["sub"]


def test_a_rotation_for_a_leak_also_stops_a_key_an_earlier_rotation_retires_later(tmp_path):
    # A scheduled rotation leaves the current key signing for five more minutes; if that key
    # then leaks, `idp keys rotate --now` must not leave it able to sign until then.
    keys.ensure(tmp_path)
    keys.rotate(tmp_path, ahead=300)
    emergency = {k.kid for k in keys.rotate(tmp_path, ahead=0)}
    later = time.time() + 1
    assert {k.kid for k in keys.read_all(tmp_path) if k.signs_at(later)} == emergency


def test_a_worker_reading_the_keyring_while_a_rotation_writes_it_has_the_new_keys(
        tmp_path, monkeypatch):
    # The rotation lands after the worker listed the folder and before it read the files:
    # it reads the old keys retired, and must still find the new ones rather than none.
    keys.ensure(tmp_path)
    read, created = keys._read, []

    def read_during_a_rotation(path):
        if not created:
            created.append(None)
            created[:] = keys.rotate(tmp_path, ahead=0)
        return read(path)

    monkeypatch.setattr(keys, "_read", read_during_a_rotation)
    ring = Keyring(tmp_path, grace=60)
    assert {alg: ring.active(alg)[0] for alg in keys.ALGORITHMS} == {k.alg: k.kid for k in created}


def test_a_keyring_sees_a_change_that_left_the_folder_time_as_it_was(tmp_path):
    # Writes within one clock tick of the file system leave the folder's time unchanged.
    keys.ensure(tmp_path)
    import os

    tick = time.time_ns() + 30_000_000_000
    os.utime(tmp_path, ns=(tick, tick))
    ring = Keyring(tmp_path, grace=60)
    old = ring.active("ES256")[0]
    created = {k.alg: k.kid for k in keys.rotate(tmp_path, ahead=0)}
    os.utime(tmp_path, ns=(tick, tick))
    assert ring.active("ES256")[0] == created["ES256"] != old
