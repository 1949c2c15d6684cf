"""RFC 9457 problem details: how our machine APIs (the admin API) say what went wrong — a JSON
object of type ``application/problem+json`` with ``type``, ``title``, ``status`` and
``detail``, plus ``errors`` (one entry per field) when the request's values were refused.

``type`` is ``about:blank`` unless the problem has a meaning of its own beyond the status
(RFC 9457 4.2.1): then the title is the status's phrase. Core code (the error handlers in
``idp.web``) answers with these for requests under an API path, so a 404 of an unknown
address or a 405 is as machine-readable as a refused value.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus

from flask import Response

MEDIA_TYPE = "application/problem+json"
# The addresses that answer in problem details, whatever goes wrong.
API_PATH = re.compile(r"^/t/[^/]+/api/")


class Problem(Exception):
    """Raise to answer with a problem; ``errors``: [{"field": ..., "message": ...}]."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 type_: str = "about:blank", errors: list[dict] | None = None,
                 headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.type = status, detail, type_
        self.title = title or _phrase(status)
        self.errors, self.headers = errors, headers or {}

    def response(self) -> Response:
        return problem(self.status, self.detail, title=self.title, type_=self.type,
                       errors=self.errors, headers=self.headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem(status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
            errors: list[dict] | None = None, headers: dict | None = None) -> Response:
    body = {"type": type_, "title": title or _phrase(status), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response
