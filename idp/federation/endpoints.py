"""Where an upstream's discovery document may send us: the rule, in one place.

We send the upstream's token endpoint our client secret, the authorization code and the PKCE
verifier, and we trust the keys its ``jwks_uri`` serves. A discovery document (or whoever
changed it) must not point them at another service — say one on our own loopback, a blind SSRF
that carries credentials. So for an https issuer:

- every endpoint is https;
- the back channel (``BACK_CHANNEL``) is on the issuer's host and port, or on a host the admin
  listed for this upstream (Google's token endpoint is on ``oauth2.googleapis.com``, not on
  ``accounts.google.com``).

An issuer on plain http is a development provider on the admin's own machine (the only http
issuer ``admin.add_upstream`` accepts): its endpoints may then be plain http on loopback.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

LOOPBACK = ("localhost", "127.0.0.1", "::1")
# Where we send the client secret, the code and the PKCE verifier, or fetch the keys we trust.
BACK_CHANNEL = ("token_endpoint", "jwks_uri", "userinfo_endpoint")
ENDPOINT_NAMES = {"authorization_endpoint": "sign-in page", "token_endpoint": "token endpoint",
                  "jwks_uri": "signing keys", "userinfo_endpoint": "userinfo endpoint"}
HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?(:[0-9]{1,5})?$")


def origin(url: str) -> tuple[str, int] | None:
    """(host, port) of an http(s) URL without credentials in it; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or "@" in parts.netloc:
        return None
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def is_development(upstream_issuer: str) -> bool:
    """An issuer on plain http, which ``admin.add_upstream`` allows only on loopback: a provider
    on the admin's own machine, whose endpoints may then be plain http on loopback too."""
    return urlsplit(upstream_issuer).scheme == "http"


def endpoint_problem(upstream_issuer: str, name: str, url, back_channel_hosts=()) -> str | None:
    """Why the discovery document's endpoint ``name`` may not be used, or None.

    Every endpoint of an https issuer is https. The back channel (``BACK_CHANNEL``) stays on the
    issuer's host, or on a host the admin listed for this upstream: a discovery document must not
    get the secret, the code and the verifier sent to another service, say one on our own
    loopback (a blind SSRF carrying credentials). Plain http only for a development issuer.
    """
    what = ENDPOINT_NAMES.get(name, name)
    where = origin(url) if isinstance(url, str) else None
    if where is None:
        return f"it names no usable address for its {what}"
    scheme = urlsplit(url).scheme
    listed = name in BACK_CHANNEL and _host(where) in back_channel_hosts
    if is_development(upstream_issuer):
        if where[0] in LOOPBACK:
            return None
        if scheme != "https":
            return f"its {what} ({url}) is plain http away from this machine"
        if name in BACK_CHANNEL and not listed:
            return (f"its {what} ({url}) is neither on this machine nor on a host listed for "
                    f"this upstream")
        return None
    if scheme != "https":
        return f"its {what} ({url}) is not https"
    if name in BACK_CHANNEL and where != origin(upstream_issuer) and not listed:
        return (f"its {what} ({url}) is not on the issuer's host "
                f"{_host(origin(upstream_issuer))}, nor on a host listed for this upstream")
    return None


def _host(where: tuple[str, int]) -> str:
    """``host`` on the default https port, else ``host:port`` (how admins list them)."""
    return where[0] if where[1] == 443 else f"{where[0]}:{where[1]}"



def issuer_problem(upstream_issuer: str) -> str | None:
    """Why an issuer URL cannot be an upstream's, or None."""
    where = origin(upstream_issuer)
    parts = urlsplit(upstream_issuer)
    if where is None or parts.query or parts.fragment:
        return "the issuer must be an https URL"
    if parts.scheme == "http" and where[0] not in LOOPBACK:
        return "the issuer must be an https URL (http only for loopback)"
    return None


def listed_host(value: str, upstream_issuer: str) -> str:
    """A host an admin lists for an upstream's back channel, as ``endpoint_problem`` compares
    it (``host``, or ``host:port`` off 443); ValueError with a sentence when it cannot be one."""
    host = value.strip().lower()
    if not HOST.fullmatch(host):
        raise ValueError(f"{value!r} is not a host name (host or host:port, no scheme or path)")
    name, _, port = host.partition(":")
    if port and not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} has no valid port")
    issuer_host = (origin(upstream_issuer) or ("",))[0]
    if _on_this_machine(name) and not _on_this_machine(issuer_host):
        raise ValueError(f"{value!r} is this machine, which only an issuer on this machine may "
                         f"use")
    return name if port in ("", "443") else host


def _on_this_machine(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.") or host == "0.0.0.0"
