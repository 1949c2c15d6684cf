"""A client's public keys as it registers them (a JWK Set, RFC 7517 5): what we accept before
storing one (the CLI, the console, the admin API, dynamic registration) and when we fetch one
from a client's ``jwks_uri``.

Only public signing keys of the kinds a client may sign with (``directory.CLIENT_SIGNING_ALGS``):
RSA of at least 2048 bits, EC on P-256, P-384 or P-521, OKP Ed25519. A set holding a private
member (``d``, ``p``, ``q``, ...) is refused outright, not trimmed: whoever pasted it has just
shown us the client's private key, and should know to make a new one. Symmetric keys (``oct``)
are refused too: a shared secret is not a public key.

Each refusal is said in the language of the page that asked (the console's German admin reads
it in German inside the console's sentence); outside a page (the CLI) and in machine answers
(the admin API; ``idp.oidc.client_keys``'s OAuth errors) it is English.
"""

from __future__ import annotations

import base64
import json

from flask_babel import gettext as _
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

MAX_KEYS = 20  # a client rotating its keys publishes two or three; more is a mistake
MIN_RSA_BITS = 2048  # NIST SP 800-131A; FAPI 2.0 Security Profile 5.4.1
MAX_RSA_EXPONENT_BITS = 32
CURVES = {"EC": ("P-256", "P-384", "P-521"), "OKP": ("Ed25519",)}
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


class BadKeySet(ValueError):
    """A JWKS we do not accept; the message says why, in words an administrator acts on."""


class PrivateKeyShown(BadKeySet):
    """A JWKS holding a private key: refused, and not to be shown back to whoever sent it."""


def parse(text: str) -> dict:
    """A JWKS typed or uploaded as JSON text, checked (``check``)."""
    try:
        document = json.loads(text)
    except ValueError:
        raise BadKeySet(_("the public keys are not JSON (a JWKS looks like "
                          "{\"keys\": [...]})")) from None
    return check(document)


def check(document) -> dict:
    """``document`` if it is a JWKS of public signing keys we accept; else ``BadKeySet``."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise BadKeySet(_("a JWKS is a JSON object with a \"keys\" list"))
    keys = document["keys"]
    if not keys:
        raise BadKeySet(_("the JWKS holds no key"))
    if len(keys) > MAX_KEYS:
        raise BadKeySet(_("the JWKS holds %(count)d keys: at most %(most)d", count=len(keys),
                          most=MAX_KEYS))
    kids = set()
    for number, key in enumerate(keys, 1):
        _check_key(key, _which(number, key))
        kid = key.get("kid")
        if kid is not None:
            if not isinstance(kid, str) or not kid:
                raise BadKeySet(_("%(which)s: \"kid\" must be a non-empty string",
                                  which=_which(number, key)))
            if kid in kids:
                raise BadKeySet(_("two keys have the kid %(kid)s: each key needs its own",
                                  kid=repr(kid)))
            kids.add(kid)
    if len(keys) > 1 and len(kids) < len(keys):
        raise BadKeySet(_("with several keys, each needs a \"kid\" (the signer names the key "
                          "it used)"))
    try:
        KeySet.import_key_set(document)
    except (JoseError, ValueError, TypeError, KeyError) as error:
        raise BadKeySet(_("the JWKS cannot be read: %(error)s", error=str(error))) from None
    return document


def _which(number: int, key) -> str:
    """How a refusal names a key of the set: its place, and its kid when it has one."""
    if isinstance(key, dict) and isinstance(key.get("kid"), str):
        return _("key %(number)d (%(kid)s)", number=number, kid=repr(key["kid"]))
    return _("key %(number)d", number=number)


def _check_key(key, which: str) -> None:
    if not isinstance(key, dict):
        raise BadKeySet(_("%(which)s is not a JSON object", which=which))
    private = [m for m in PRIVATE_MEMBERS if m in key]
    kty = key.get("kty")
    if kty == "oct":
        raise BadKeySet(_("%(which)s is a symmetric key (kty oct): give public keys only",
                          which=which))
    if private:
        raise PrivateKeyShown(_("%(which)s holds a private part (%(members)s): give the public "
                                "keys only, and make a new key pair, since this one's private "
                                "key was shown", which=which, members=", ".join(private)))
    if kty not in ("RSA", "EC", "OKP"):
        raise BadKeySet(_("%(which)s: the key type must be RSA, EC or OKP, not %(kty)s",
                          which=which, kty=repr(kty)))
    if key.get("use", "sig") != "sig":
        raise BadKeySet(_("%(which)s is marked for \"use\": %(use)s; a client's keys here sign "
                          "(\"sig\")", which=which, use=repr(key.get("use"))))
    if kty == "RSA":
        n = key.get("n")
        if not isinstance(n, str):
            raise BadKeySet(_("%(which)s: an RSA key needs its modulus \"n\"", which=which))
        bits = _bits(n)
        if bits < MIN_RSA_BITS:
            raise BadKeySet(_("%(which)s: an RSA key of %(bits)d bits is too short (at least "
                              "%(least)d)", which=which, bits=bits, least=MIN_RSA_BITS))
        # A long exponent makes every check of a signature as dear as a private-key operation.
        if not isinstance(key.get("e"), str) or _bits(key["e"]) > MAX_RSA_EXPONENT_BITS:
            raise BadKeySet(_("%(which)s: an RSA key's public exponent \"e\" must have at most "
                              "%(most)d bits (65537 is usual)", which=which,
                              most=MAX_RSA_EXPONENT_BITS))
    elif key.get("crv") not in CURVES[kty]:
        raise BadKeySet(_("%(which)s: the curve must be one of %(curves)s, not %(curve)s",
                          which=which, curves=", ".join(CURVES[kty]),
                          curve=repr(key.get("crv"))))


def _bits(n: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        raise BadKeySet(_("an RSA modulus is not base64url")) from None
    return int.from_bytes(raw, "big").bit_length()
