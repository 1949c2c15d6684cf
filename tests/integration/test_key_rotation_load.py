"""`idp keys rotate` while a live server is busy issuing tokens: no request fails, every token
issued before or after verifies against the JWKS, and the new key takes over."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest
import requests
from joserfc import jws, jwt
from joserfc.jwk import KeySet

from idp.oidc import keys
from tests.support.keys import tenant_id
from tests.support.live_server import serve

THREADS = 4


@pytest.fixture
def own_keys_server(settings, tmp_path):
    """A live server with a keyring of its own (the session's servers keep theirs)."""
    keys_dir = tmp_path / "keys"
    shutil.copytree(settings.keys_dir, keys_dir)
    mine = replace(settings, keys_dir=keys_dir)
    server = serve(mine, tmp_path / "server.log")
    yield server, mine
    server.stop()


class Load:
    """Threads asking for client-credentials tokens until stopped; every answer kept."""

    def __init__(self, url: str, creds):
        self.url, self.creds = url, creds
        # (asked at, answered at, status, token or body)
        self.answers: list[tuple[float, float, int, str]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]

    def _run(self):
        http = requests.Session()
        while not self.stop.is_set():
            asked = time.time()
            r = http.post(self.url, data={"grant_type": "client_credentials"},
                          auth=self.creds, timeout=30)
            body = r.json().get("access_token", r.text) if r.ok else r.text
            self.answers.append((asked, time.time(), r.status_code, body))

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)


def kid(token: str) -> str:
    return jws.extract_compact(token.encode()).protected["kid"]


def test_rotating_keys_under_load_loses_no_request_and_no_token(app, own_keys_server, world):
    server, mine = own_keys_server
    folder = keys.tenant_folder(mine.keys_dir, tenant_id(app, world.slug))
    url = f"{server.url}/t/{world.slug}/token"
    creds = (world.service.client_id, world.service.client_secret)
    env = {**os.environ, "IDP_KEYS_DIR": str(mine.keys_dir),
           "IDP_DATABASE_URL": mine.database_url, "IDP_SECRET_KEY": mine.secret_key}
    old_kid = kid(requests.post(url, data={"grant_type": "client_credentials"}, auth=creds,
                                timeout=10).json()["access_token"])
    with Load(url, creds) as load:
        time.sleep(0.5)
        # The scheduled rotation (published now, signing later), made soon for the test...
        created = keys.rotate(folder, ahead=1.0)
        scheduled, switch = {k.alg: k.kid for k in created}, created[0].active_from
        time.sleep(1.5)
        # ...then one at once, as after a leak, by the command an operator types.
        done = subprocess.run([sys.executable, "-m", "idp", "keys", "rotate", world.slug, "--now"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        time.sleep(1.0)
    assert len(load.answers) > 50
    failed = [(status, body[:200]) for _, _, status, body in load.answers if status != 200]
    assert failed == []
    # Every token, whichever key signed it, verifies with the JWKS published now.
    jwks = requests.get(f"{server.url}/t/{world.slug}/jwks", timeout=10)
    keyset = KeySet.import_key_set(jwks.json())
    for _, _, _, token in load.answers:
        assert jwt.decode(token, keyset, algorithms=["ES256"]).claims["client_id"]
    # The old key signed until the scheduled switch, the scheduled key after it, and the
    # emergency key last.
    emergency = json.loads(done.stdout)["rotated"][0]["keys"]["ES256"]
    first_seen = []
    for _, _, _, token in sorted(load.answers):
        if kid(token) not in first_seen:
            first_seen.append(kid(token))
    ring = [(k.kid, k.created_at, k.active_from, k.retired_at)
            for k in keys.read_all(folder)]
    assert first_seen == [old_kid, scheduled["ES256"], emergency], (ring, done.stdout)
    # A token is signed between its request and its answer: none asked for after the switch
    # has the old key, none answered before it has the new one.
    assert not [a for a in load.answers if kid(a[3]) == old_kid and a[0] > switch]
    assert not [a for a in load.answers if kid(a[3]) == scheduled["ES256"] and a[1] < switch]
