"""A client's public keys, for what it signs: ``private_key_jwt`` assertions (RFC 7523) and
request objects (RFC 9101). From its registered ``jwks``, or fetched from its ``jwks_uri``.
"""

from __future__ import annotations

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.clients import ClientRef


class NoClientKeys(Exception):
    """The client has no usable public keys; the message says why (for an OAuth error)."""


def keyset(client: ClientRef) -> KeySet:
    """The client's public keys. (jwks_uri: not yet.)"""
    if client.jwks:
        try:
            return KeySet.import_key_set(client.jwks)
        except (JoseError, ValueError, TypeError, KeyError):
            raise NoClientKeys("The client's registered JWKS cannot be read.") from None
    raise NoClientKeys("The client has registered no public keys.")
