"""Logs: one JSON object per line on stderr (``IDP_LOG_FORMAT=json``, the default; ``text`` for
people), and one access line per request (``IDP_ACCESS_LOG``, on by default).

Every line written during a request carries its ``request_id`` (the proxy's ``X-Request-ID``
when it is a plain token, else a new one; sent back in the response), the ``tenant`` and the
``client_id``. The access line adds the method, the route, the status, the time taken and the
``outcome``: what the request's audit events say happened (``user.signed_in``,
``user.sign_in_failed``…), else the OAuth error, else ``ok`` / ``error``.

Never a secret: no query string, no body, no header but the request id, and the *route* rather
than the path (``/t/<tenant>/login/token/<token>``: a login token is in its path). Database
errors are logged without their parameters (``idp.db``: ``hide_parameters``).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import datetime, timezone

from flask import Flask, g, has_app_context, has_request_context, request
from werkzeug.exceptions import HTTPException

from idp import metrics

log = logging.getLogger("idp")
access_log = logging.getLogger("idp.access")

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def request_id(offered: str | None) -> str:
    """The proxy's id when it is a plain token (it ties our line to the proxy's), else ours."""
    return offered if offered and REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context():
            doc.update(_request_fields())
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


def _request_id() -> str:
    """This request's id, made on first use."""
    if "request_id" not in g:
        g.request_id = request_id(request.headers.get("X-Request-ID"))
    return g.request_id


def _request_fields() -> dict:
    tenant = g.get("tenant")
    return {"request_id": _request_id(),
            "tenant": getattr(tenant, "slug", None),
            "client_id": g.get("log_client_id") or _client_id()}


def _form_value(name: str) -> str | None:
    """A field of a form body, if the request has one that can be read (one too large or
    malformed was answered already: the log must not fail on it)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        return None
    try:
        return request.form.get(name)
    except HTTPException:
        return None


def _client_id() -> str | None:
    """The client the request names (public identifiers only: never its secret)."""
    value = request.args.get("client_id")
    if value is None:
        value = _form_value("client_id")
    if value is None and request.authorization and request.authorization.type == "basic":
        value = request.authorization.username
    return value[:100] if value else None


def note(action: str, client_id: str | None = None) -> None:
    """What happened in this request, for its access line (``idp.audit`` calls it; the token
    endpoint's direct path runs in an app context only, hence not ``has_request_context``)."""
    if has_app_context():
        g.setdefault("log_outcomes", []).append(action)
        if client_id and not g.get("log_client_id"):
            g.log_client_id = client_id


def outcome(status: int, oauth_error: str | None) -> str:
    if g.get("log_outcomes"):
        return ",".join(dict.fromkeys(g.log_outcomes))
    if oauth_error:
        return oauth_error
    return "error" if status >= 400 else "ok"


def finished(method: str, route: str, status: int, started: float, result: str, *,
             log: bool = True, **fields) -> None:
    """A request is answered: its latency and what it issued to the metrics, its access line
    to the log (unless ``log`` is off)."""
    seconds = time.perf_counter() - started
    metrics.request_done(method, route, status, seconds, fields.get("grant_type"))
    if log:
        access_log.info("request", extra={"fields": {
            "method": method, "route": route, "status": status,
            "duration_ms": round(seconds * 1000, 2), "outcome": result, **fields}})


def configure(log_format: str) -> None:
    """The ``idp`` loggers' handler on stderr, once per process (apps made again in the same
    process, as tests do, replace it rather than add another)."""
    for handler in list(log.handlers):
        if getattr(handler, "idp", False):
            log.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.idp = True
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def init_app(app: Flask) -> None:
    settings = app.config["IDP"]
    configure(settings.log_format)

    @app.url_value_preprocessor  # the app's run before any blueprint's (load_tenant's)
    def _start(_endpoint, _values):
        _request_id()
        g.log_started = time.perf_counter()

    @app.after_request
    def _access(response):
        response.headers["X-Request-ID"] = _request_id()
        error = None
        if response.status_code >= 400 and response.is_json:
            body = response.get_json(silent=True)
            error = body.get("error") if isinstance(body, dict) else None
        rule = request.url_rule.rule if request.url_rule else "<no route>"
        grant = _form_value("grant_type") if rule.endswith("/token") else None
        finished(request.method, rule, response.status_code,
                 g.get("log_started", time.perf_counter()),
                 outcome(response.status_code, error), log=settings.access_log,
                 ip=request.remote_addr, grant_type=grant[:40] if grant else None)
        return response
