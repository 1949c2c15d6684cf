"""A local server in the shape of Twilio's Messages API (threading + http.server), for the
SMS sender and the text-message factor behind it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

SID, TOKEN, FROM = "AC0123456789abcdef", "s3cret/token+1", "+15550001111"


class FakeTwilio:
    """A local server in the shape of Twilio's Messages API, recording what it is sent."""

    def __init__(self):
        self.status = 201
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "form": parse_qs(body, keep_blank_values=True)})
                answer = (json.dumps({"sid": "SM1", "status": "queued"}) if fake.status < 300 else
                          json.dumps({"code": 21211, "message": "Invalid 'To' Phone Number",
                                      "status": fake.status})).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.server.server_address[1]
        # The token holds a '/' and a '+': percent-encoded in the URL, as an operator would.
        self.url = (f"http://{SID}:s3cret%2Ftoken%2B1@127.0.0.1:{port}"
                    f"/2010-04-01/Accounts/{SID}/Messages.json?from={FROM}")
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
