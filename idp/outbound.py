"""Requests to addresses a tenant's administrator typed: back-channel logout URIs and webhook
endpoints. Whoever can edit a portal could otherwise make this server POST to a host only it
can reach (a cloud's metadata service, a database's HTTP port, an admin page on the private
network): server-side request forgery, with the delivery log as the oracle.

So such a request goes only to a public address, unless the installation allows private ones
(``Settings.private_callbacks``: by default only an installation on a loopback address, a
developer's or a test's, whose portals run beside it). Every address the name resolves to is
checked before connecting (no connection is tried, so no open port is told from a closed
one), and the address the socket *connected to* is checked again, so a name that resolves to
a public address first and to a private one at the connect (DNS rebinding) is refused all the
same. No proxy from the environment is used (its address would be the one checked), and
redirects are never followed (a public host could otherwise send us on to a private one).

A receiver is also never given the sender's time: the whole exchange, however slowly the
other end answers byte by byte, is cut at ``DEADLINE`` seconds, and its body is never read
(only the status counts), so a hostile receiver can neither hold a sender nor fill its memory.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError

TIMEOUT = (3.05, 5)  # seconds to connect, and between two reads
DEADLINE = 10.0  # seconds for the whole exchange, however the receiver spaces its bytes

NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: a site's own translation


def is_public(address: str) -> bool:
    """Is ``address`` (an IP literal) one anyone on the internet could reach: not loopback,
    private, link-local, shared (CGNAT), multicast, reserved or unspecified? An IPv6 address
    that carries an IPv4 one (mapped, compatible, 6to4, NAT64) is judged as that IPv4 address:
    a network that translates it would deliver to it."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in LOCAL_NAT64:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in NAT64 or int(ip) >> 32 == 0:  # NAT64, or ::a.b.c.d (IPv4-compatible)
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # the read in progress returns: the request fails
    except OSError:
        pass


class _Bounded:
    """A connection cut at ``DEADLINE`` seconds after it opened; with ``public_only``, one
    that never connects to, or stays connected to, an address that is not public."""

    public_only = False
    _deadline: threading.Timer | None = None

    def _new_conn(self) -> socket.socket:
        if self.public_only:
            try:
                found = socket.getaddrinfo(self._dns_host, self.port, type=socket.SOCK_STREAM)
            except socket.gaierror:
                found = []  # the connect below says so, as for any unknown name
            for *_, address in found:
                if not is_public(address[0]):
                    raise NewConnectionError(self, f"{self.host} is a private address "
                                                   f"({address[0]}): this installation calls "
                                                   "only public addresses")
        sock = super()._new_conn()
        if self.public_only and not is_public(sock.getpeername()[0]):
            peer = sock.getpeername()[0]
            sock.close()
            raise NewConnectionError(self, f"{self.host} is a private address ({peer}): this "
                                           "installation calls only public addresses")
        self._deadline = threading.Timer(DEADLINE, _shut, (sock,))
        self._deadline.daemon = True
        self._deadline.start()
        return sock

    def close(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().close()


def _pools(public_only: bool) -> dict:
    def pool(base_pool, base_connection):
        connection = type(base_connection.__name__, (_Bounded, base_connection),
                          {"public_only": public_only})
        return type(base_pool.__name__, (base_pool,), {"ConnectionCls": connection})

    return {"http": pool(HTTPConnectionPool, HTTPConnection),
            "https": pool(HTTPSConnectionPool, HTTPSConnection)}


POOLS = {True: _pools(True), False: _pools(False)}


class _Adapter(HTTPAdapter):
    def __init__(self, public_only: bool):
        self.public_only = public_only
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS[self.public_only]


def post(url: str, *, private_allowed: bool, data=None, headers=None) -> int:
    """POST ``data`` to ``url`` and return the answer's status, its body unread: no redirect
    followed, no proxy, the whole exchange within ``DEADLINE`` seconds, to a public address
    unless ``private_allowed``. Raises ``requests.RequestException`` when there is no answer
    (a refused address: ``requests.ConnectionError`` whose text says "private address")."""
    with requests.Session() as http:
        http.trust_env = False  # no proxy, no .netrc: the address we check is the one we call
        adapter = _Adapter(public_only=not private_allowed)
        http.mount("http://", adapter)
        http.mount("https://", adapter)
        started = time.monotonic()
        with http.post(url, data=data, headers=headers, timeout=TIMEOUT, stream=True,
                       allow_redirects=False) as answer:
            if time.monotonic() - started >= DEADLINE:
                # The deadline cut the socket: what was read until then (a status line, some
                # headers) is no answer.
                raise requests.Timeout(f"no answer within {DEADLINE:g} s")
            return answer.status_code


class BadDocument(ValueError):
    """An answer that is not the JSON document asked for: its status, type, size or syntax."""


MAX_DOCUMENT = 64 * 1024  # bytes: a client's JWKS or sector list is a few KB


def get_json(url: str, *, private_allowed: bool, max_bytes: int = MAX_DOCUMENT):
    """GET the JSON document at ``url`` (a client's ``jwks_uri``, a ``sector_identifier_uri``)
    under the same rules as ``post``: no redirect, no proxy, ``DEADLINE`` for the whole
    exchange, a public address unless ``private_allowed``. The body is read only up to
    ``max_bytes``. Raises ``requests.RequestException`` when there is no answer, and
    ``BadDocument`` when the answer is not a 200 JSON document within the size."""
    return get_json_cacheable(url, private_allowed=private_allowed, max_bytes=max_bytes)[0]


def get_json_cacheable(url: str, *, private_allowed: bool, max_bytes: int = MAX_DOCUMENT):
    """``get_json``, and for how long its sender says it may be kept: (document, seconds from
    ``Cache-Control: max-age``, 0 for no-store or no-cache, None when it says nothing)."""
    with requests.Session() as http:
        http.trust_env = False
        adapter = _Adapter(public_only=not private_allowed)
        http.mount("http://", adapter)
        http.mount("https://", adapter)
        started = time.monotonic()
        with http.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT, stream=True,
                      allow_redirects=False) as answer:
            if answer.status_code != 200:
                raise BadDocument(f"answered HTTP {answer.status_code}")
            max_age = _max_age(answer.headers.get("Cache-Control", ""))
            body = bytearray()
            for chunk in answer.iter_content(8192):
                body += chunk
                if len(body) > max_bytes:
                    raise BadDocument(f"is larger than {max_bytes // 1024} KB")
                if time.monotonic() - started >= DEADLINE:
                    raise requests.Timeout(f"no answer within {DEADLINE:g} s")
            if time.monotonic() - started >= DEADLINE:
                raise requests.Timeout(f"no answer within {DEADLINE:g} s")
    try:
        return json.loads(bytes(body)), max_age
    except (ValueError, UnicodeError, RecursionError):  # nested deeper than json reads
        raise BadDocument("is not JSON") from None


def _max_age(cache_control: str) -> int | None:
    directives = [d.strip().lower() for d in cache_control.split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0
    for d in directives:
        name, _, value = d.partition("=")
        if name.strip() == "max-age" and value.strip().strip('"').isdigit():
            return int(value.strip().strip('"'))
    return None


def unreachable(e: Exception) -> str:
    """Why a POST got no answer, as the delivery log says it: a private address, or only
    that the receiver could not be reached (no finer: the reason would map a network)."""
    return "leads to a private address" if "private address" in str(e) else "cannot be reached"
