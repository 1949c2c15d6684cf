"""A local server in the shape of Twilio's Messages API, for the SMS sender and the
text-message factor behind it."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from tests.support.local_http import LocalService

SID, TOKEN, FROM = "AC0123456789abcdef", "s3cret/token+1", "+15550001111"


class FakeTwilio(LocalService):
    """A local server in the shape of Twilio's Messages API, recording what it is sent."""

    def __init__(self):
        super().__init__()
        self.status = 201
        self.requests: list[dict] = []
        # The token holds a '/' and a '+': percent-encoded in the URL, as an operator would.
        self.url = (f"http://{SID}:s3cret%2Ftoken%2B1@127.0.0.1:{self.port}"
                    f"/2010-04-01/Accounts/{SID}/Messages.json?from={FROM}")

    def answer(self, method, path, headers, body):
        self.requests.append({"path": path, "headers": headers,
                              "form": parse_qs(body.decode(), keep_blank_values=True)})
        answer = (json.dumps({"sid": "SM1", "status": "queued"}) if self.status < 300 else
                  json.dumps({"code": 21211, "message": "Invalid 'To' Phone Number",
                              "status": self.status})).encode()
        return self.status, "application/json", answer
