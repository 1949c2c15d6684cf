"""A client's back-channel logout endpoint (OpenID Connect Back-Channel Logout 1.0, 2.5/2.6):
a loopback server that takes the POSTed logout tokens, answers as it is told, and checks each
token as a relying party must, with the issuer's JWKS and joserfc."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.local_http import LocalService

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass(frozen=True)
class Received:
    content_type: str
    form: dict[str, list[str]]

    @property
    def token(self) -> str:
        (token,) = self.form["logout_token"]
        return token


class Receiver(LocalService):
    """Answers each POST with the next of ``statuses`` (then 200); keeps what it got."""

    def __init__(self, *statuses: int):
        super().__init__()
        self.statuses = list(statuses)
        self.received: list[Received] = []
        self.arrived = threading.Event()  # set at each POST

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/backchannel-logout"

    def answer(self, method, path, headers, body):
        self.received.append(Received(headers.get("Content-Type", ""),
                                      parse_qs(body.decode(), strict_parsing=True)))
        status = self.statuses.pop(0) if self.statuses else 200
        self.arrived.set()
        return status, "text/plain", b""


def validated(token: str, jwks: dict, issuer: str, client_id: str) -> tuple[dict, dict]:
    """(header, claims) of a logout token checked as 2.6 asks: signature by a key of the
    issuer's JWKS, ``iss``, ``aud``, ``iat``/``exp``, the event, a ``sid`` or ``sub``, no
    ``nonce``. Raises on anything wrong."""
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer}, aud={"essential": True, "value": client_id},
        iat={"essential": True}, exp={"essential": True}, jti={"essential": True},
        events={"essential": True},
    ).validate(decoded.claims)
    claims = decoded.claims
    assert claims["events"] == {EVENT: {}}, claims["events"]
    assert "nonce" not in claims
    assert claims.get("sid") or claims.get("sub")
    return decoded.header, claims
