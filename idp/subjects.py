"""Which ``sub`` a client sees of a user (OIDC Core 8): the user's public subject, or for a
client registered with ``subject_type=pairwise`` an identifier of its sector's own.

- ``sector_of(client)``: a pairwise client's sector (OIDC Core 8.1): the host of its
  ``sector_identifier_uri`` when it has one, else the one host all its redirect URIs share.
- ``check_sector(redirect_uris, sector_identifier_uri, private_allowed=...)``: the checks made
  when a pairwise client is registered or its redirect URIs or sector URI change (OIDC
  Registration 5): redirect URIs on several hosts need a sector URI, and the JSON array that
  URI serves must list every redirect URI. Fetched then, never at sign-in.
- ``new_subjects(before, after)``: would a change of a client's registration give it another
  ``sub`` for every user (a new subject type, or a pairwise client's new sector)? Whoever
  changes a client asks it: the console, the CLI and the admin API confirm such a change
  first (``admin.update_client``), dynamic registration refuses it.
- ``subject_for(public_subject, client, secret_key)``: the ``sub`` itself. A pairwise one is
  ``base64url(HMAC-SHA256(k, tenant id | sector | public subject))`` with ``k`` derived (HKDF)
  from ``IDP_SECRET_KEY`` for this purpose alone: stable for one user and sector, different
  between sectors, and not to be linked to the public subject (nor between sectors) by
  anyone without the secret. So changing ``IDP_SECRET_KEY`` gives every pairwise client new
  ``sub`` values for all its users (README, "Keep IDP_SECRET_KEY").

``idp.oidc.subjects`` applies this with the installation's secret wherever a user's ``sub``
reaches a client; back-channel logout tokens (``idp.notify.backchannel``) call it here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask_babel import gettext as _  # English outside a page (CLI, API)

from idp import outbound

PUBLIC, PAIRWISE = "public", "pairwise"


class SectorError(ValueError):
    """A pairwise client's redirect URIs and sector identifier URI that do not agree."""


@lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    """The pairwise key, derived once per worker (the token endpoint makes one HMAC a token)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"idp pairwise subjects",
                info=b"pairwise-sub").derive(secret_key.encode())


def pairwise(secret_key: str, tenant_id: int, sector: str, public_subject: str) -> str:
    """The pairwise ``sub`` of the user ``public_subject`` for ``sector`` in a tenant."""
    mac = hmac.new(_key(secret_key), f"{tenant_id}|{sector}|{public_subject}".encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def _host(uri: str) -> str:
    return (urlsplit(uri).hostname or "").lower()


def sector_of(client) -> str:
    """The sector of a client (a ``Client`` row or a ``ClientRef``): its sector URI's host,
    else its redirect URIs' (one host, checked at registration; the first one's if not)."""
    if client.sector_identifier_uri:
        return _host(client.sector_identifier_uri)
    return _host(client.redirect_uris[0]) if client.redirect_uris else ""


def new_subjects(before, after) -> bool:
    """Would a client registered as ``before`` see every user under another ``sub`` once
    registered as ``after`` (each with ``subject_type``, ``redirect_uris`` and
    ``sector_identifier_uri``)? A new subject type does, and so does a pairwise client's new
    sector; a public client's sector is nothing to its ``sub``."""
    kind = before.subject_type or PUBLIC
    if kind != (after.subject_type or PUBLIC):
        return True
    return kind == PAIRWISE and sector_of(before) != sector_of(after)


def subject_for(public_subject: str, client, secret_key: str) -> str:
    """The ``sub`` that ``client`` sees of the user whose public subject is ``public_subject``."""
    if client.subject_type != PAIRWISE:
        return public_subject
    return pairwise(secret_key, client.tenant_id, sector_of(client), public_subject)


def check_sector(redirect_uris: list[str], sector_identifier_uri: str | None, *,
                 private_allowed: bool) -> None:
    """Refuse (``SectorError``) a pairwise registration whose sector is not clear: redirect
    URIs on several hosts without a sector identifier URI, or a sector identifier URI whose
    document (https, fetched now) is not a JSON array holding every redirect URI."""
    if not sector_identifier_uri:
        hosts = {_host(u) for u in redirect_uris}
        if len(hosts) > 1:
            raise SectorError(_("redirect URIs on several hosts (%(hosts)s) need a sector "
                                "identifier URI for pairwise subjects",
                                hosts=", ".join(sorted(hosts))))
        if not hosts:
            raise SectorError(_("pairwise subjects need a redirect URI or a sector identifier URI"))
        return
    try:
        listed = outbound.get_json(sector_identifier_uri, private_allowed=private_allowed)
    except outbound.BadDocument as e:
        raise SectorError(_("the sector identifier URI %(uri)s %(problem)s",
                            uri=sector_identifier_uri, problem=str(e))) from None
    except requests.RequestException as e:
        raise SectorError(_("the sector identifier URI %(uri)s %(problem)s",
                            uri=sector_identifier_uri, problem=outbound.unreachable(e))) from None
    if not isinstance(listed, list) or not all(isinstance(u, str) for u in listed):
        raise SectorError(_("the sector identifier URI %(uri)s must serve a JSON array of URIs",
                            uri=sector_identifier_uri))
    missing = [u for u in redirect_uris if u not in listed]
    if missing:
        raise SectorError(_("the sector identifier URI %(uri)s does not list the redirect "
                            "URI(s) %(missing)s", uri=sector_identifier_uri,
                            missing=", ".join(missing)))
