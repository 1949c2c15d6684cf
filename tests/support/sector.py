"""A portal's sector identifier URI (OIDC Registration 5): a loopback server that serves the
JSON array of its redirect URIs at ``/sector.json`` (anything else: 404)."""

from __future__ import annotations

import json

from tests.support.local_http import LocalService


class SectorDocument(LocalService):
    def __init__(self, uris):
        super().__init__()
        self.uris = uris

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sector.json"

    def answer(self, method, path, headers, body):
        if path != "/sector.json":
            return 404, "text/plain", b"not here"
        return 200, "application/json", json.dumps(self.uris).encode()
