"""A receiver of back-channel logout notices or webhooks can hold no sender and fill no
memory (``idp.outbound``): the whole exchange is cut at its deadline however slowly the other
end sends its bytes, and the body of an answer is never read. Receivers here are raw sockets
on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import resource
import socket
import threading
import time

import pytest
import requests

from idp import outbound


class Misbehaving:
    """A loopback HTTP server that reads the request, then runs ``answer(conn)``."""

    def __init__(self, answer):
        self.answer = answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(30)
                try:
                    conn.recv(65536)
                    self.answer(conn, self.stop)
                except OSError:
                    pass

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.port}/hook"

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        self.server.close()


def dribble(conn, stop):
    """200, then a chunked body one byte every half second, for ever."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"1\r\nx\r\n")
        time.sleep(0.5)


def flood(conn, stop):
    """200 with a 200 MB body, as fast as the socket takes it."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 209715200\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(3200):
        if stop.is_set():
            return
        conn.sendall(chunk)


def slow_headers(conn, stop):
    """A status line, then one header every half second, never the end of the headers."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    n = 0
    while not stop.is_set():
        conn.sendall(f"X-Wait-{n}: 1\r\n".encode())
        n += 1
        time.sleep(0.5)


@pytest.mark.parametrize("answer", [slow_headers])
def test_a_receiver_that_sends_its_headers_byte_by_byte_is_cut_at_the_deadline(monkeypatch, answer):
    monkeypatch.setattr(outbound, "DEADLINE", 1.5)
    with Misbehaving(answer) as url:
        with pytest.raises(requests.RequestException):
            outbound.post(url, private_allowed=True, data=b"{}")


def test_a_receiver_that_dribbles_its_body_holds_no_sender(monkeypatch):
    monkeypatch.setattr(outbound, "DEADLINE", 1.5)
    with Misbehaving(dribble) as url:
        # The status is all a sender wants: it has it, and the body is never waited for.
        assert outbound.post(url, private_allowed=True, data=b"{}") == 200


def test_a_huge_answer_is_never_read_into_memory():
    with Misbehaving(flood) as url:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        assert outbound.post(url, private_allowed=True, data=b"{}") == 200
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024  # a 200 MB body would have grown it by 200 MB


def test_a_private_address_is_refused_before_any_connection():
    """No connection is tried (so an open port cannot be told from a closed one): a listening
    socket that is never accepted from sees no connection in its backlog."""
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        with pytest.raises(requests.ConnectionError, match="private address"):
            outbound.post(f"http://127.0.0.1:{port}/x", private_allowed=False, data=b"{}")
        listening.settimeout(0.3)
        with pytest.raises(socket.timeout):
            listening.accept()
