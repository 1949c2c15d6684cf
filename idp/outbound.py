"""Requests to addresses a tenant's administrator typed: back-channel logout URIs and webhook
endpoints. Whoever can edit a portal could otherwise make this server POST to a host only it
can reach (a cloud's metadata service, a database's HTTP port, an admin page on the private
network): server-side request forgery, with the delivery log as the oracle.

So such a request goes only to a public address, unless the installation allows private ones
(``Settings.private_callbacks``: by default only an installation on a loopback address, a
developer's or a test's, whose portals run beside it). The address checked is the one the
socket *connected to*, after DNS, so a name that resolves to a public address when the URI is
registered and to a private one at delivery (DNS rebinding) is refused all the same. No proxy
from the environment is used (its address would be the one checked), and redirects are never
followed (a public host could otherwise send us on to a private one).
"""

from __future__ import annotations

import ipaddress
import socket

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError


def is_public(address: str) -> bool:
    """Is ``address`` (an IP literal) one anyone on the internet could reach: not loopback,
    private, link-local, shared (CGNAT), multicast, reserved or unspecified? An IPv4 address
    mapped into IPv6 is judged as the IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PublicOnly:
    """A connection that closes itself, before a byte is sent, when its peer is not public."""

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        peer = sock.getpeername()[0]
        if not is_public(peer):
            sock.close()
            raise NewConnectionError(self, f"{self.host} is a private address ({peer}): "
                                           "this installation calls only public addresses")
        return sock


class _HTTP(_PublicOnly, HTTPConnection):
    pass


class _HTTPS(_PublicOnly, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPS


class _PublicAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def post(url: str, *, private_allowed: bool, **options) -> requests.Response:
    """``requests.post(url, **options)`` without redirects or proxies, to a public address
    unless ``private_allowed``; a refused address raises ``requests.ConnectionError``."""
    with requests.Session() as http:
        http.trust_env = False  # no proxy, no .netrc: the address we check is the one we call
        if not private_allowed:
            adapter = _PublicAdapter()
            http.mount("http://", adapter)
            http.mount("https://", adapter)
        return http.post(url, allow_redirects=False, **options)
