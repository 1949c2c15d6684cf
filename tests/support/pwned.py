"""A local server in the shape of Pwned Passwords' range API: it knows the passwords a test
gives it, pads its answers with count-0 lines as the real service does under
``Add-Padding: true``, and records each request, so a test sees what left us."""

from __future__ import annotations

import hashlib
import secrets

from tests.support.local_http import LocalService


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode()).hexdigest().upper()


class FakePwnedPasswords(LocalService):
    """``GET /range/{prefix}``: every known suffix under the prefix, then padding lines.

    ``breached`` maps a password to its count; ``body`` (when set) replaces the answer, and
    ``status`` its status, for the broken-service cases."""

    def __init__(self, breached: dict[str, int] | None = None, padding: int = 400):
        super().__init__()
        self.breached = dict(breached or {})
        self.padding = padding
        self.status = 200
        self.body: bytes | None = None
        self.requests: list[dict] = []
        self.url = f"http://127.0.0.1:{self.port}"

    def answer(self, method, path, headers, body):
        self.requests.append({"path": path, "headers": headers})
        return self.status, "text/plain", self.body if self.body is not None else self.range(path)

    def range(self, path: str) -> bytes:
        prefix = path.rsplit("/", 1)[-1]
        lines = [f"{digest[5:]}:{count}" for digest, count in
                 ((sha1_hex(p), c) for p, c in self.breached.items()) if digest.startswith(prefix)]
        # Padding: random suffixes with a count of 0, which mean nothing.
        lines += [f"{secrets.token_hex(18).upper()[:35]}:0" for _ in range(self.padding)]
        return "\r\n".join(lines).encode()
