"""A requests transport into the app in this process: a real client library (Authlib's
``OAuth2Session``, a requests ``Session``) talks HTTP to the app as to a server, without one.
The request goes through the whole WSGI stack (``idp.oidc.direct`` first, then Flask)."""

from __future__ import annotations

from io import BytesIO
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict


class AppTransport(BaseAdapter):
    """Sends each request to ``app`` (its ``test_client``), whatever the URL's host."""

    def __init__(self, app):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, **kwargs):
        parts = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else request.body
        answer = self.client.open(parts.path, method=request.method, query_string=parts.query,
                                  headers=dict(request.headers), data=body or b"",
                                  base_url=f"{parts.scheme}://{parts.netloc}")
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(dict(answer.headers))
        response.raw = BytesIO(answer.get_data())
        response.url = request.url
        response.request = request
        response.encoding = "utf-8"
        return response

    def close(self):
        pass


def mount(session: requests.Session, app, base_url: str) -> requests.Session:
    """``session`` sending everything under ``base_url`` to ``app``."""
    session.mount(base_url, AppTransport(app))
    return session
