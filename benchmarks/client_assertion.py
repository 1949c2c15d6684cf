"""What private_key_jwt costs a token request, on one core, on the embedded defaults.

    .venv/bin/python benchmarks/client_assertion.py [--runs 2000] [--redis-url redis://...]

A client that authenticates with private_key_jwt (RFC 7523) sends a signed assertion with each
token request; we read it, check its claims, verify its signature with a key of the client's
(imported once per worker, ``idp.oidc.client_keys``) and mark its ``jti`` used (one Redis
SET NX). This times, after a warm-up, in a scratch app (SQLite and the in-process store in a
temporary folder):

- ``verify``: ``idp.oidc.client_auth.authenticate_private_key_jwt`` alone (inside a request
  context), for each algorithm a client may sign with, one fresh assertion each time (signed
  beforehand, not timed); the signature check alone (``client_keys.verify`` on the keys
  imported once); beside them joserfc's ``jwt.decode`` of the same assertion with the same
  key, for comparison;
- ``token``: a whole client-credentials request through the WSGI stack (``idp.oidc.direct``,
  Authlib's server, our token signed with ES256) with the Flask test client, with
  private_key_jwt (ES256) and, for comparison, with a client secret (HTTP Basic).

It prints the mean in microseconds and, for the whole request, the rate one core sustains
(1 / mean). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from joserfc import jwt  # noqa: E402
from joserfc.jwk import ECKey, OKPKey, RSAKey  # noqa: E402

from idp import create_app, db as idp_db, directory  # noqa: E402
from idp.config import Settings  # noqa: E402
from idp.oidc import client_auth, client_keys, keys  # noqa: E402
from idp.oidc.oauth_client import query_client  # noqa: E402

KEYS = {"ES256": lambda: ECKey.generate_key("P-256", parameters={"kid": "b"}),
        "EdDSA": lambda: OKPKey.generate_key("Ed25519", parameters={"kid": "b"}),
        "RS256": lambda: RSAKey.generate_key(2048, parameters={"kid": "b"}),
        "PS256": lambda: RSAKey.generate_key(2048, parameters={"kid": "b"})}
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def assertions(key, alg, client_id, audience, n):
    now = int(time.time())
    return [jwt.encode({"alg": alg, "kid": "b"},
                       {"iss": client_id, "sub": client_id, "aud": audience, "iat": now,
                        "exp": now + 300, "jti": str(uuid.uuid4())}, key, algorithms=[alg])
            for _ in range(n)]


def mean_us(fn, items) -> float:
    fn(items[0])  # warm-up: the key import, caches
    started = time.perf_counter()
    for item in items[1:]:
        fn(item)
    return (time.perf_counter() - started) / (len(items) - 1) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--redis-url", default=None,
                        help="a Redis (as in production: the worker's caches follow it); "
                             "default: the embedded store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/idp.sqlite3"
        idp_db.upgrade(url)
        keys.ensure(Path(tmp) / "keys")
        app = create_app(Settings.from_env({}, base_url="http://idp.bench", database_url=url,
                                           redis_url=args.redis_url, keys_dir=Path(tmp) / "keys",
                                           secret_key=secrets.token_hex(32)))
        clients = {}
        with app.app_context():
            session = idp_db.session()
            tenant = directory.create_tenant(session, "bench", "Bench")
            for alg, make in KEYS.items():
                key = make()
                new = directory.create_client(
                    session, tenant, f"Keyed {alg}", [], grant_types=["client_credentials"],
                    auth_method="private_key_jwt", jwks={"keys": [key.as_dict(private=False)]})
                clients[alg] = (new.client.client_id, key)
            secret_client = directory.create_client(session, tenant, "Secret", [],
                                                    grant_types=["client_credentials"])
            session.commit()
        issuer = "http://idp.bench/t/bench"

        print(f"{'case':<44}{'mean µs':>10}{'per s':>10}")
        for alg, (client_id, key) in clients.items():
            signed = assertions(key, alg, client_id, f"{issuer}/token", args.runs + 1)
            with app.test_request_context("/t/bench/token", base_url="http://idp.bench"):
                from flask import g
                from idp import cache, web
                cache.follow()  # as a request does: the worker's caches of clients and tenants
                g.tenant = web._load_tenant("bench")

                class Request:
                    uri = f"{issuer}/token"

                    def __init__(self, assertion):
                        self.payload = type("P", (), {"data": {
                            "client_assertion": assertion,
                            "client_assertion_type": ASSERTION_TYPE}})()

                ours = mean_us(lambda a: client_auth.authenticate_private_key_jwt(
                    query_client, Request(a)), signed)
                client = query_client(client_id).row

                def signature_only(a):
                    head, body, sig = a.split(".")
                    assert client_keys.verify(client, "b", alg, f"{head}.{body}".encode(),
                                              client_auth._b64(sig))

                bare = mean_us(signature_only, signed)
                public = key.as_dict(private=False)
                imported = type(key).import_key(public)
                theirs = mean_us(lambda a: jwt.decode(a, imported, algorithms=[alg]), signed)
            print(f"{'verify ' + alg + ' (ours, claims + jti)':<44}{ours:>10.0f}{1e6 / ours:>10.0f}")
            print(f"{'verify ' + alg + ' (ours, signature only)':<44}{bare:>10.0f}{1e6 / bare:>10.0f}")
            print(f"{'verify ' + alg + ' (joserfc jwt.decode)':<44}{theirs:>10.0f}{1e6 / theirs:>10.0f}")

        http = app.test_client()
        client_id, key = clients["ES256"]
        signed = assertions(key, "ES256", client_id, f"{issuer}/token", args.runs + 1)

        def keyed(a):
            r = http.post("/t/bench/token", data={"grant_type": "client_credentials",
                                                  "client_assertion_type": ASSERTION_TYPE,
                                                  "client_assertion": a})
            assert r.status_code == 200, r.get_json()

        basic = "Basic " + base64.b64encode(
            f"{secret_client.client.client_id}:{secret_client.secret}".encode()).decode()

        def secret(_):
            r = http.post("/t/bench/token", data={"grant_type": "client_credentials"},
                          headers={"Authorization": basic})
            assert r.status_code == 200, r.get_json()

        for name, fn in (("token: private_key_jwt ES256", keyed), ("token: client secret (Basic)", secret)):
            us = mean_us(fn, signed)
            print(f"{name:<44}{us:>10.0f}{1e6 / us:>10.0f}")
        app.extensions["idp.engine"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
