"""A loopback HTTP server in a thread, the body of every fake outside service (``twilio.py``,
``pwned.py``): a fake says what it answers (``answer``); this serves it, then stops."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalService:
    """Serves ``answer(method, path, headers, body) -> (status, content type, body)`` on
    127.0.0.1 (``self.port``) from ``with`` to its end."""

    def answer(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def __init__(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            def serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                status, content_type, body = service.answer(
                    self.command, self.path, dict(self.headers), self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = serve

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
