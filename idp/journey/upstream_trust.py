"""How much of an upstream's sign-in we vouch for: the one place that decides it.

An upstream's ID token says what it did (``amr``, RFC 8176) and at what level (``acr``). We
repeat its word in our own token, and let it stand in for our second step, only when that word
itself proves two factors:

- its ``amr`` contains ``mfa``, or methods of two different kinds by our own ``KIND`` table
  (``["pwd", "otp"]`` is two; ``["otp"]``, ``["sms"]`` or ``["hwk"]`` alone is one); or
- its ``acr`` is exactly one of the values the admin listed for this upstream. ``acr`` values
  are the upstream's private vocabulary (``urn:example:loa:nomfa`` contains "mfa" and means the
  opposite), so none is recognised by its spelling.

Our ``fed`` is not a factor of its own next to the upstream's: it stands in for the password
the upstream checked (``claims.KIND``), so ``fed`` plus one upstream possession factor is still
one factor. An upstream whose word does not prove MFA is therefore represented by ``fed``
alone; its own values are kept in the audit log (``upstream_amr``), not in the token, where
they would also hide a local factor of the same ``amr`` from a step-up.

The tenant's ``trust_mfa`` setting decides what a proof or its absence changes:

- ``never``: the upstream's word is not repeated; our policy applies after ``fed``;
- ``when_upstream_mfa``: the word is repeated, and replaces our second step, when it proves
  MFA; otherwise as ``never``;
- ``always``: our policy never asks its own second step after this upstream (the tenant vouches
  for the upstream's policy), but the token still says only what was proven.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from idp.policy import KIND, Primary

TRUST_MFA = ("never", "when_upstream_mfa", "always")
# RFC 8176 method values are short tokens; anything else an upstream sends is dropped.
AMR_VALUE = re.compile(r"^[A-Za-z0-9_.-]{1,16}$")
MAX_AMR_VALUES = 10
# An acr is a short string or URI (OIDC Core 2); one an admin may list for an upstream.
ACR_VALUE = re.compile(r"^[\x21-\x7e]{1,200}$")


def upstream_methods(claims: dict) -> list[str]:
    """The upstream's ``amr`` values (RFC 8176), kept only if they are plain short tokens."""
    amr = claims.get("amr")
    if not isinstance(amr, list):
        return []
    values = [v for v in amr if isinstance(v, str) and AMR_VALUE.fullmatch(v) and v != "fed"]
    return list(dict.fromkeys(values))[:MAX_AMR_VALUES]


def upstream_did_mfa(claims: dict, trusted_acrs: list[str] | tuple[str, ...]) -> bool:
    """Does the upstream's own word prove two factors? (See the module's docstring.)"""
    methods = upstream_methods(claims)
    if "mfa" in methods or len({KIND[m] for m in methods if m in KIND}) >= 2:
        return True
    acr = claims.get("acr")
    return isinstance(acr, str) and acr in trusted_acrs


@dataclass(frozen=True)
class UpstreamProof:
    """What an upstream sign-in puts in the login transaction."""

    methods: list[str]
    primary: Primary


def progress_for(trust_mfa: str, trusted_acrs: list[str] | tuple[str, ...],
                 claims: dict) -> UpstreamProof:
    """The transaction's methods and primary for this upstream sign-in and trust setting."""
    proved_mfa = trust_mfa != "never" and upstream_did_mfa(claims, trusted_acrs)
    if proved_mfa:
        methods = ["fed"] + upstream_methods(claims)
        if "mfa" not in methods:
            # Two kinds upstream, or a listed acr: claims.amr_and_acr keeps "mfa" next to "fed".
            methods.append("mfa")
        return UpstreamProof(methods, Primary.FEDERATION_TRUSTED)
    if trust_mfa == "always":
        return UpstreamProof(["fed"], Primary.FEDERATION_TRUSTED)
    return UpstreamProof(["fed"], Primary.FEDERATION)
