"""A software WebAuthn authenticator (and the browser around it) for the integration tests.

It answers the options our pages put in ``<script id="webauthn-options">`` the way a browser
with a platform authenticator would, and returns the PublicKeyCredential as the JSON that
``idp/static/webauthn.js`` posts:

* ``create()``: a new ES256 (P-256) key; ``attestationObject`` = CBOR {fmt: "none", attStmt: {},
  authData}; ``authData`` = rpIdHash || flags (UP, UV, AT) || signCount || attested
  credential data (AAGUID, credential id, COSE public key) — WebAuthn §6.1, §6.5.1, §8.7;
* ``get()``: ``authData`` = rpIdHash || flags || signCount and an ECDSA signature over
  authData || SHA-256(clientDataJSON) (§6.3.3).

Every field a test wants to get wrong can be overridden per call: the origin in clientDataJSON,
the RP ID whose hash is in authData, the challenge, the UP and UV flags, the counter, the
credential used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40  # §6.1 authenticator data flags


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def options_from(html: str) -> dict:
    """The options a page hands to webauthn.js."""
    start = html.index('<script type="application/json" id="webauthn-options">')
    start = html.index(">", start) + 1
    return json.loads(html[start:html.index("</script>", start)])


class NotAllowed(Exception):
    """What a real authenticator does instead of answering (the browser's NotAllowedError)."""


class InvalidState(Exception):
    """create() for an authenticator that holds one of excludeCredentials (§6.3.2 step 3)."""


@dataclass
class Credential:
    id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


class SoftAuthenticator:
    """One authenticator. ``counts`` = how much the signature counter moves per use: 1 like a
    security key, 0 like most synced passkeys (which send 0 every time)."""

    aaguid = bytes(16)

    def __init__(self, origin: str, counts: int = 1, user_verifying: bool = True,
                 backed_up: bool = False):
        self.origin = origin
        self.counts = counts
        self.user_verifying = user_verifying
        self.backed_up = backed_up
        self.credentials: dict[bytes, Credential] = {}

    # -- building blocks ------------------------------------------------------------------

    @staticmethod
    def cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
        """RFC 9052/9053 COSE_Key for an EC2 P-256 key used with ES256 (WebAuthn §5.8.5)."""
        numbers = key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                            -3: numbers.y.to_bytes(32, "big")})

    def _flags(self, up: bool, uv: bool | None, attested: bool) -> int:
        flags = (UP if up else 0) | (UV if (self.user_verifying if uv is None else uv) else 0)
        if self.backed_up:
            flags |= BE | BS
        return flags | (AT if attested else 0)

    @staticmethod
    def client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": origin,
                           "crossOrigin": False}, separators=(",", ":")).encode()

    # -- navigator.credentials.create() ---------------------------------------------------

    def create(self, options: dict, *, origin: str | None = None, rp_id: str | None = None,
               challenge: str | None = None, up: bool = True, uv: bool | None = None,
               reuse: str | None = None) -> dict:
        """A new credential; or, with ``reuse``, one of ours attested again (what a client
        that ignores excludeCredentials and replays an old credential would send)."""
        rp = options["rp"]["id"]
        for excluded in options.get("excludeCredentials") or []:
            if unb64url(excluded["id"]) in self.credentials and reuse is None:
                raise InvalidState("this authenticator holds an excluded credential")
        if reuse is not None:
            credential = self.credentials[unb64url(reuse)]
        else:
            credential = Credential(os.urandom(32), ec.generate_private_key(ec.SECP256R1()), rp,
                                    unb64url(options["user"]["id"]))
        attested = (self.aaguid + len(credential.id).to_bytes(2, "big") + credential.id
                    + self.cose_key(credential.key))
        auth_data = (hashlib.sha256((rp_id or rp).encode()).digest()
                     + bytes([self._flags(up, uv, True)])
                     + credential.sign_count.to_bytes(4, "big") + attested)
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self.client_data("webauthn.create", challenge or options["challenge"],
                                       origin or self.origin)
        self.credentials[credential.id] = credential
        return {
            "id": b64url(credential.id), "rawId": b64url(credential.id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "attestationObject": b64url(attestation), "transports": ["internal"]},
        }

    # -- navigator.credentials.get() ------------------------------------------------------

    def get(self, options: dict, *, credential_id: str | None = None, origin: str | None = None,
            rp_id: str | None = None, challenge: str | None = None, up: bool = True,
            uv: bool | None = None, sign_count: int | None = None) -> dict:
        """An assertion with one of ours that ``allowCredentials`` lists (or ``credential_id``,
        whatever the options say: what a malicious client could send)."""
        if credential_id is not None:
            credential = self.credentials[unb64url(credential_id)]
        else:
            allowed = [unb64url(c["id"]) for c in options.get("allowCredentials") or []]
            mine = [self.credentials[c] for c in allowed if c in self.credentials]
            if not mine:
                raise NotAllowed("no credential of this authenticator is allowed")
            credential = mine[0]
        credential.sign_count = (credential.sign_count + self.counts if sign_count is None
                                 else sign_count)
        auth_data = (hashlib.sha256((rp_id or options["rpId"]).encode()).digest()
                     + bytes([self._flags(up, uv, False)])
                     + credential.sign_count.to_bytes(4, "big"))
        client_data = self.client_data("webauthn.get", challenge or options["challenge"],
                                       origin or self.origin)
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                        ec.ECDSA(hashes.SHA256()))
        return {
            "id": b64url(credential.id), "rawId": b64url(credential.id), "type": "public-key",
            "authenticatorAttachment": "platform", "clientExtensionResults": {},
            "response": {"clientDataJSON": b64url(client_data),
                         "authenticatorData": b64url(auth_data), "signature": b64url(signature),
                         "userHandle": b64url(credential.user_handle)},
        }
