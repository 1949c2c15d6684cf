"""DPoP proofs (RFC 9449): checking one, the key thumbprint a token is bound to, server nonces.

``check()`` is RFC 9449 4.3 step by step: one compact JWS in one ``DPoP`` header, ``typ
dpop+jwt``, an asymmetric ``alg`` we support, a public ``jwk`` that verifies the signature,
``htm`` and ``htu`` of this request, a fresh ``iat``, a ``jti`` never seen before, ``ath`` of the
access token at a resource, and our ``nonce`` when the tenant asks for one (8). The proof's key
is read and its signature verified with ``cryptography`` directly: the token endpoint checks one
proof per request on its busiest path (benchmarks/README.md), and a JOSE library's registries
would cost as much as the signature. Tests make their proofs with joserfc.

Nonces are stateless: an HMAC of the tenant and a time step under the installation's secret;
the current and the previous step's are accepted, so one lives between ``NONCE_STEP`` and twice
that. The ``jti`` of each accepted proof is kept in the shared store for as long as ``iat``
would accept the proof (``REPLAY_TTL``): a second use within that time is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from flask import current_app, g

from idp.web import settings

# The algorithms a proof may use (discovery's dpop_signing_alg_values_supported): asymmetric
# only, so never "none" nor an HMAC (RFC 9449 4.3 step 5).
ALGS = ("ES256", "RS256", "PS256", "EdDSA")
IAT_AHEAD = 60  # seconds a client's clock may run ahead of ours
IAT_BEHIND = 300  # seconds a proof stays acceptable after it was made
REPLAY_TTL = IAT_AHEAD + IAT_BEHIND  # a proof made as far ahead as allowed, until it is stale
NONCE_STEP = 300
MAX_PROOF = 8192
JTI_KEY = "dpop-jti:{}:{}"
# Members of a private key (RFC 7518 6.2.2, 6.3.2, RFC 8037 2) and of a symmetric one.
PRIVATE_MEMBERS = frozenset(("d", "p", "q", "dp", "dq", "qi", "oth", "k"))
THUMBPRINT = re.compile(r"[A-Za-z0-9_-]{43}")  # base64url of a SHA-256 digest
_CURVES = {"P-256": (ec.SECP256R1, 32)}
_OKP = {"Ed25519": Ed25519PublicKey, "Ed448": Ed448PublicKey}


class InvalidProof(Exception):
    """The ``DPoP`` header is not a proof we accept; the message says why (for the client)."""

    error = "invalid_dpop_proof"


class NonceNeeded(InvalidProof):
    """The proof lacks our current nonce: the client must retry with ``fresh`` (RFC 9449 8)."""

    error = "use_dpop_nonce"

    def __init__(self, description: str, fresh: str):
        super().__init__(description)
        self.fresh = fresh


class TokenRequestError(OAuth2Error):
    """A token request's DPoP proof refused (RFC 9449 5): ``invalid_dpop_proof``, or
    ``use_dpop_nonce`` with the nonce to use in ``DPoP-Nonce`` (8)."""

    status_code = 400

    def __init__(self, refused: InvalidProof):
        super().__init__(str(refused))
        self.error = refused.error
        if isinstance(refused, NonceNeeded):
            g.dpop_nonce = refused.fresh


@dataclass(frozen=True)
class Proof:
    """A proof accepted for this request: the thumbprint of its key (RFC 7638) and its claims."""

    jkt: str
    jti: str
    claims: dict
    # Checked with ``spend=False``: the single-use mark still to set (its key, its seconds).
    unspent: tuple[str, int] | None = None


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


B64URL = re.compile(r"[A-Za-z0-9_-]*")


def _unb64(text) -> bytes:
    if not isinstance(text, str) or not B64URL.fullmatch(text):
        raise InvalidProof("The DPoP proof is not base64url encoded.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidProof("The DPoP proof is not base64url encoded.") from None


def _json(part: str) -> dict:
    try:
        value = json.loads(_unb64(part))
    except (ValueError, UnicodeError, RecursionError):
        raise InvalidProof("The DPoP proof is not a JWT.") from None
    if not isinstance(value, dict):
        raise InvalidProof("The DPoP proof is not a JWT.")
    return value


def ath(access_token: str) -> str:
    """The ``ath`` of an access token: base64url(SHA-256(its ASCII)) (RFC 9449 4.2)."""
    return b64url(hashlib.sha256(access_token.encode("ascii")).digest())


def thumbprint(jwk: dict) -> str:
    """The JWK SHA-256 thumbprint (RFC 7638 3): the required members only, sorted, compact."""
    kty = jwk.get("kty")
    names = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"),
             "OKP": ("crv", "kty", "x")}.get(kty)
    if names is None or not all(isinstance(jwk.get(n), str) for n in names):
        raise InvalidProof("The DPoP proof's key is not a public key we can use.")
    canonical = json.dumps({n: jwk[n] for n in names}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def is_thumbprint(value) -> bool:
    """Is ``value`` shaped like a JWK SHA-256 thumbprint (``dpop_jkt``, RFC 9449 10)?"""
    return isinstance(value, str) and bool(THUMBPRINT.fullmatch(value))


@lru_cache(maxsize=4096)
def _public_key(alg: str, members: tuple):
    """The ``cryptography`` key of a proof's ``jwk`` for ``alg`` and its thumbprint (cached: a
    client signs its proofs with one key for a long time)."""
    jwk = dict(members)
    return _imported(alg, jwk), thumbprint(jwk)


def _imported(alg: str, jwk: dict):
    kty = jwk.get("kty")
    try:
        if alg == "ES256" and kty == "EC" and jwk.get("crv") in _CURVES:
            curve, size = _CURVES[jwk["crv"]]
            x, y = _unb64(jwk.get("x")), _unb64(jwk.get("y"))
            if len(x) != size or len(y) != size:
                raise ValueError
            return ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                                 curve()).public_key()
        if alg in ("RS256", "PS256") and kty == "RSA":
            n, e = int.from_bytes(_unb64(jwk.get("n")), "big"), int.from_bytes(_unb64(jwk.get("e")), "big")
            if not 2048 <= n.bit_length() <= 8192:
                raise InvalidProof("The DPoP proof's RSA key must have 2048 to 8192 bits.")
            if e.bit_length() > 32:  # each verification would cost a private-key operation
                raise InvalidProof("The DPoP proof's RSA key must have a public exponent of at "
                                   "most 32 bits (65537).")
            return rsa.RSAPublicNumbers(e, n).public_key()
        if alg == "EdDSA" and kty == "OKP" and jwk.get("crv") in _OKP:
            return _OKP[jwk["crv"]].from_public_bytes(_unb64(jwk.get("x")))
    except InvalidProof:
        raise
    except (ValueError, TypeError):
        raise InvalidProof("The DPoP proof's key is not a valid public key.") from None
    raise InvalidProof(f"The DPoP proof's key does not fit its algorithm {alg}.")


def _verify(alg: str, key, signature: bytes, signing_input: bytes) -> None:
    try:
        if alg == "ES256":
            if len(signature) != 64:
                raise InvalidSignature
            key.verify(encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                            int.from_bytes(signature[32:], "big")),
                       signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256":
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            key.verify(signature, signing_input,
                       padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                       hashes.SHA256())
        else:
            key.verify(signature, signing_input)
    except InvalidSignature:
        raise InvalidProof("The DPoP proof's signature does not verify with its key.") from None


@lru_cache(maxsize=1024)
def normalised_url(url) -> str:
    """A URL compared as RFC 9449 4.3 step 9 says, with RFC 3986 6.2.2 and 6.2.3's
    normalisation: scheme and host in lower case, no default port, an empty path as "/",
    percent-escapes in upper case and unreserved characters unescaped; no query, no fragment."""
    if not isinstance(url, str) or len(url) > 2048:
        return ""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if not scheme or not host:
        return ""
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    path = re.sub(r"%[0-9A-Fa-f]{2}", _unescape, parts.path) or "/"
    return f"{scheme}://{host}{path}"


def _unescape(match: re.Match) -> str:
    char = chr(int(match.group(0)[1:], 16))
    if char.isascii() and (char.isalnum() or char in "-._~"):
        return char
    return match.group(0).upper()


def nonce(secret: str, tenant_id: int, now: float | None = None, step: int = 0) -> str:
    """Our nonce for ``tenant_id`` in the time step of ``now`` (``step`` steps back)."""
    count = int((time.time() if now is None else now) // NONCE_STEP) - step
    return b64url(hmac.new(secret.encode(), f"dpop-nonce:{tenant_id}:{count}".encode(),
                           hashlib.sha256).digest()[:18])


def _nonce_ok(value, secret: str, tenant_id: int, now: float) -> bool:
    return isinstance(value, str) and any(
        hmac.compare_digest(value, nonce(secret, tenant_id, now, step)) for step in (0, 1))


@dataclass(frozen=True)
class Expected:
    """What a proof must say for the request it came with."""

    method: str
    url: str  # the endpoint as we publish it: issuer + path
    tenant_id: int
    secret: str  # the installation's secret, for nonces
    nonce_required: bool = False
    access_token: str | None = None  # at a resource: the token the proof must name (ath)


def header_value(values: list[str]) -> str | None:
    """The request's one ``DPoP`` header (None without); two are refused (RFC 9449 4.3 step 1).
    A WSGI server joins repeated headers with commas, which a compact JWS never holds."""
    if not values:
        return None
    if len(values) > 1 or "," in values[0]:
        raise InvalidProof("Send exactly one DPoP header.")
    return values[0].strip()


USED_ALREADY = "This DPoP proof was used already (jti): make a new one per request."


def check(proof: str, expected: Expected, store, now: float | None = None, *,
          spend: bool = True) -> Proof:
    """The proof, checked (RFC 9449 4.3), its ``jti`` spent; or ``InvalidProof``. With
    ``spend=False`` the ``jti`` is left for ``spend`` (``Proof.unspent``): the token endpoint
    spends it with the client assertion's in one round trip."""
    now = time.time() if now is None else now
    if not proof or len(proof) > MAX_PROOF or proof.count(".") != 2:
        raise InvalidProof("The DPoP proof is not a compact JWS.")
    header_part, payload_part, signature_part = proof.split(".")
    header = _json(header_part)
    if header.get("typ") != "dpop+jwt":
        raise InvalidProof("The DPoP proof's typ must be dpop+jwt.")
    alg = header.get("alg")
    if alg not in ALGS:
        raise InvalidProof(f"The DPoP proof's alg must be one of {', '.join(ALGS)}.")
    jwk = header.get("jwk")
    if not isinstance(jwk, dict):
        raise InvalidProof("The DPoP proof has no jwk header.")
    if PRIVATE_MEMBERS & jwk.keys():
        raise InvalidProof("The DPoP proof's jwk holds a private key: send only its public part.")
    members = tuple(sorted((k, v) for k, v in jwk.items() if isinstance(v, str)))
    key, jkt = _public_key(alg, members)
    _verify(alg, key, _unb64(signature_part),
            f"{header_part}.{payload_part}".encode("ascii"))
    claims = _json(payload_part)
    jti, iat = claims.get("jti"), claims.get("iat")
    if not isinstance(jti, str) or not 0 < len(jti) <= 256:
        raise InvalidProof("The DPoP proof needs a jti.")
    if claims.get("htm") != expected.method:
        raise InvalidProof(f"The DPoP proof's htm must be {expected.method}.")
    if normalised_url(claims.get("htu")) != normalised_url(expected.url):
        raise InvalidProof(f"The DPoP proof's htu must be {expected.url}.")
    if not isinstance(iat, (int, float)) or isinstance(iat, bool):
        raise InvalidProof("The DPoP proof needs an iat.")
    if iat > now + IAT_AHEAD:
        raise InvalidProof("The DPoP proof's iat is in the future.")
    if iat < now - IAT_BEHIND:
        raise InvalidProof("The DPoP proof is too old (iat).")
    if expected.access_token is not None:
        presented = claims.get("ath")
        if not isinstance(presented, str) or not hmac.compare_digest(
                presented, ath(expected.access_token)):
            raise InvalidProof("The DPoP proof's ath does not match the access token.")
    if expected.nonce_required and not _nonce_ok(claims.get("nonce"), expected.secret,
                                                 expected.tenant_id, now):
        raise NonceNeeded("Use the DPoP-Nonce this server sent.",
                          nonce(expected.secret, expected.tenant_id, now))
    # Last, once everything else holds: the jti is spent only by a proof we accept.
    digest = hashlib.sha256(jti.encode()).hexdigest()[:32]
    if not spend:
        return Proof(jkt, jti, claims, (JTI_KEY.format(jkt, digest), REPLAY_TTL))
    if not store.set(JTI_KEY.format(jkt, digest), "1", nx=True, ex=REPLAY_TTL):
        raise InvalidProof(USED_ALREADY)
    return Proof(jkt, jti, claims)


# Both single-use marks in one command (one reply to parse, where a pipeline has two): the
# proof's first, ``also``'s (when given) second; each 1 when it was new.
_SPEND = """
local answers = {}
for i, key in ipairs(KEYS) do
  answers[i] = redis.call('SET', key, '1', 'NX', 'EX', ARGV[i]) and 1 or 0
end
return answers
"""


def spend(proof: Proof, store, also: tuple[str, int] | None = None) -> bool:
    """Set the single-use mark of a proof checked with ``spend=False`` and, in the same round
    trip, ``also`` (another one: key, seconds). ``InvalidProof`` when the proof was used
    already; else whether ``also`` was new."""
    marks = [proof.unspent] if also is None else [proof.unspent, also]
    answers = store.eval(_SPEND, len(marks), *[key for key, _ in marks],
                         *[seconds for _, seconds in marks])
    if not answers[0]:
        raise InvalidProof(USED_ALREADY)
    return also is None or bool(answers[1])


# -- the request's proof, as the endpoints ask for it -----------------------------------------

def expected(method: str, url: str, access_token: str | None = None) -> Expected:
    """What a proof sent to this tenant's ``url`` must say."""
    return Expected(method, url, g.tenant.id, settings().secret_key,
                    g.tenant.protocol.dpop_nonce_required, access_token)


def of_request(values: list[str], method: str, url: str,
               access_token: str | None = None, *, spend: bool = True) -> Proof | None:
    """The request's proof, checked (None when it sent no ``DPoP`` header)."""
    value = header_value(values)
    if value is None:
        return None
    return check(value, expected(method, url, access_token), current_app.extensions["idp.store"],
                 spend=spend)


def spend_request_proof(also: tuple[str, int] | None = None) -> bool:
    """At the token endpoint: spend the request's proof (``g.dpop``, checked unspent) once,
    with ``also`` when given (``spend``); True when there was none to spend or ``also`` was
    new. Raises ``TokenRequestError`` for a proof used already."""
    proof = g.get("dpop")
    if proof is None or proof.unspent is None or g.get("dpop_spent"):
        if also is None:
            return True
        return bool(current_app.extensions["idp.store"].set(also[0], "1", nx=True, ex=also[1]))
    try:
        fresh = spend(proof, current_app.extensions["idp.store"], also)
    except InvalidProof as refused:
        raise TokenRequestError(refused) from None
    g.dpop_spent = True
    return fresh


def fresh_nonce() -> str | None:
    """The nonce to hand out with an answer, when this tenant requires them (RFC 9449 8.2)."""
    if not g.tenant.protocol.dpop_nonce_required:
        return None
    return nonce(settings().secret_key, g.tenant.id)


def pushed_request_key(values: list[str], url: str, dpop_jkt) -> str | None:
    """The key a pushed authorization request (RFC 9126) binds its code to (RFC 9449 10.1):
    the proof's, when the request came with a ``DPoP`` header, else its ``dpop_jkt``
    parameter; both must then name the same key. None: the code is not bound. For the PAR
    endpoint (``url``: its address as published), which stores it as the request's
    ``dpop_jkt``; raises ``InvalidProof`` (answer 400 ``invalid_dpop_proof``)."""
    if dpop_jkt is not None and not is_thumbprint(dpop_jkt):
        raise InvalidProof("dpop_jkt must be a JWK SHA-256 thumbprint (RFC 9449 10).")
    proof = of_request(values, "POST", url)
    if proof is None:
        return dpop_jkt
    if dpop_jkt is not None and not hmac.compare_digest(dpop_jkt, proof.jkt):
        raise InvalidProof("dpop_jkt names another key than the DPoP proof's.")
    return proof.jkt


# -- resources: userinfo, the admin API, SCIM (RFC 9449 7) -----------------------------------

class ResourceRefused(Exception):
    """A protected resource refuses the request's token or proof: ``status``, the OAuth
    ``error`` and its description, the ``challenge`` to send in ``WWW-Authenticate`` and, for
    ``use_dpop_nonce``, the ``nonce`` to send in ``DPoP-Nonce``."""

    def __init__(self, error: str, description: str, *, scheme: str = "DPoP",
                 nonce: str | None = None):
        super().__init__(description)
        self.status, self.error, self.description, self.nonce = 401, error, description, nonce
        self.challenge = challenge(error, description) if scheme == "DPoP" else \
            f'Bearer error="{error}", error_description="{_quoted(description)}"'


def _quoted(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")


def challenge(error: str | None = None, description: str | None = None) -> str:
    """The ``DPoP`` challenge of ``WWW-Authenticate``, with the algorithms we accept (7.1)."""
    parts = ["DPoP"]
    if error:
        parts.append(f'error="{error}", error_description="{_quoted(description or error)}",')
    parts.append(f'algs="{" ".join(ALGS)}"')
    return " ".join(parts)


def bound_key(claims: dict) -> str | None:
    """The thumbprint an access token's claims bind it to (``cnf.jkt``), or None."""
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None


def at_resource(scheme: str, access_token: str, claims: dict, headers, method: str,
                url: str) -> Proof | None:
    """Check how a verified access token was presented to a resource (RFC 9449 7): a bound
    token only with the ``DPoP`` scheme and a proof of its key naming it (``ath``), an unbound
    one only as a ``Bearer`` token. The proof (None for a Bearer token) or ``ResourceRefused``."""
    jkt = bound_key(claims)
    if scheme != "dpop":
        if jkt is not None:
            raise ResourceRefused("invalid_token", "This access token is DPoP-bound: send it as "
                                  "Authorization: DPoP <token>, with a DPoP proof.")
        return None
    if jkt is None:
        raise ResourceRefused("invalid_token", "This access token is not DPoP-bound: send it "
                              "as Authorization: Bearer <token>.")
    try:
        proof = of_request(headers.getlist("DPoP"), method, url, access_token)
    except NonceNeeded as e:
        raise ResourceRefused(e.error, str(e), nonce=e.fresh) from None
    except InvalidProof as e:
        raise ResourceRefused(e.error, str(e)) from None
    if proof is None:
        raise ResourceRefused("invalid_dpop_proof", "A DPoP proof must come with a DPoP-bound "
                              "access token (the DPoP header).")
    if not hmac.compare_digest(proof.jkt, jkt):
        raise ResourceRefused("invalid_dpop_proof", "The DPoP proof is not signed with the key "
                              "the access token is bound to.")
    return proof
