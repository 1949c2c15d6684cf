"""The endpoints clients call most — the token endpoint, JWKS, discovery — served in front of
Flask's per-request machinery (request and session objects, URL routing, hooks), which cost
more than the work itself (benchmarks/README.md).

Authlib still runs the protocol: a token request becomes an ``OAuth2Request`` for the same
``AuthorizationServer``, inside an app context, so grants, the caches, the database session and
its commit are the ones the Flask view uses. Only the plain form of each request is taken: a
token POST of ASCII form data with a length and no query string, a GET with no query string.
Anything else (another content type, a NUL byte, an unknown tenant, HEAD, ...) goes to Flask,
whose answer is the one it always gave. Tests drive both paths (tests/integration/test_direct.py).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from urllib.parse import parse_qsl, unquote

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import OAuth2Payload
from flask import Flask, g
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES

from idp import cache, logs, web
from idp.oidc.server import PlainResponse
from idp.oidc.views import PUBLIC_CACHE, discovery_document, oauth_json

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
DISCOVERY = (".well-known/openid-configuration", ".well-known/oauth-authorization-server")
# Discovery as sent, per tenant slug; an entry lives as long as the cache generation it was
# built in (idp.cache), so a change of the tenant's settings reaches discovery at once.
DISCOVERY_DOCUMENTS: cache.Snapshots[str, bytes] = cache.Snapshots("discovery")
SERVER_ERROR = {"error": "server_error",
                "error_description": "The server failed to answer. Try again shortly."}


class Delegate(Exception):
    """Not a plain request: Flask answers it."""


class FormPayload(OAuth2Payload):
    """The form as Authlib reads it: ``data`` has each name's first value (as a MultiDict's
    ``get``), ``datalist`` all of them (Authlib refuses repeated parameters by it)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._data: dict[str, str] = {}
        self._datalist: dict[str, list[str]] = {}
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist.setdefault(key, []).append(value)

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class FormRequest(OAuth2Request):
    """A token request read straight from the WSGI environ."""

    def __init__(self, uri: str, headers, pairs: list[tuple[str, str]]):
        super().__init__("POST", uri, headers=headers)
        self.payload = FormPayload(pairs)

    @property
    def form(self):
        return self.payload.data

    @property
    def args(self):
        return {}


class Direct:
    """WSGI middleware in front of ``app.wsgi_app``."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self.max_length = app.config["MAX_CONTENT_LENGTH"]
        self.access_log = app.config["IDP"].access_log

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/t/") and not environ.get("QUERY_STRING"):
            slug, _, rest = path[3:].partition("/")
            method = environ.get("REQUEST_METHOD")
            started = time.perf_counter()
            try:
                if method == "POST" and rest == "token":
                    body = self.token(environ, start_response, slug)
                elif method == "GET" and rest == "jwks":
                    body = self.jwks(environ, start_response, slug)
                elif method == "GET" and rest in DISCOVERY:
                    body = self.discovery(environ, start_response, slug)
                else:
                    body = None
            except Delegate:
                body = None
            if body is not None:
                logs.finished(method, f"/t/<tenant>/{rest}", environ["idp.status"], started,
                              environ.get("idp.outcome") or "ok", log=self.access_log,
                              tenant=slug[:63], client_id=environ.get("idp.client_id"),
                              grant_type=environ.get("idp.grant_type"),
                              request_id=environ["idp.request_id"], ip=environ.get("REMOTE_ADDR"))
                return body
        return self.wsgi_app(environ, start_response)

    # -- endpoints ----------------------------------------------------------------------------

    def token(self, environ, start_response, slug):
        pairs = self._form(environ)
        with self.app.app_context():
            server = self.app.extensions["idp.oauth"]
            try:
                self._tenant(slug)
                request = FormRequest(self._uri(environ), EnvironHeaders(environ), pairs)
                g.plain_response = True  # Authlib's answer as a PlainResponse, not a Response
                response = oauth_json(lambda: server.create_token_response(request))
                db = g.get("db")
                if db is not None:
                    db.commit()  # before the response leaves, errors included (as in Flask)
            except Delegate:
                raise
            except (RedisConnectionError, RedisTimeoutError) as error:
                log.error("shared store unavailable: %s", error)
                response = self._json(503, web.STORE_UNAVAILABLE, {"Retry-After": "30"})
            except Exception as error:  # noqa: BLE001  as Flask would: logged, rolled back
                answer = web.database_answer(error, log)
                if answer is not None:
                    response = self._json(*answer)
                else:
                    log.exception("token endpoint failed")
                    response = self._json(500, SERVER_ERROR)
            if isinstance(response, PlainResponse):
                status, headers, body = response.status_code, response.headers, response.data
            else:
                status, headers = response.status_code, list(response.headers.items())
                body = response.get_data()
            environ["idp.client_id"] = _client_id(pairs, environ)
            environ["idp.grant_type"] = next((v[:40] for k, v in pairs if k == "grant_type"), None)
            environ["idp.outcome"] = logs.outcome(status, _oauth_error(status, body))
            return self._send(environ, start_response, status, headers, body)

    def jwks(self, environ, start_response, slug):
        with self.app.app_context():
            self._tenant(slug)
            body = self.app.extensions["idp.keyrings"].for_tenant(g.tenant.id).jwks_json()
        return self._send(environ, start_response, 200,
                          [("Content-Type", "application/json"),
                           ("Cache-Control", PUBLIC_CACHE)], body)

    def discovery(self, environ, start_response, slug):
        with self.app.app_context():
            tenant = self._tenant(slug)
            body = DISCOVERY_DOCUMENTS.get(tenant.slug, lambda: self._discovery_body(tenant))
        return self._send(environ, start_response, 200,
                          [("Content-Type", "application/json"),
                           ("Cache-Control", PUBLIC_CACHE)], body)

    def _discovery_body(self, tenant) -> bytes:
        issuer = f"{self.app.config['IDP'].base_url}/t/{tenant.slug}"
        return self.app.json.response(discovery_document(issuer, tenant)).get_data()

    # -- helpers ------------------------------------------------------------------------------

    def _form(self, environ) -> list[tuple[str, str]]:
        """The form of a plain token request; the body is put back for Flask otherwise."""
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != FORM:
            raise Delegate
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            raise Delegate from None
        if not 0 <= length <= self.max_length:
            raise Delegate
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        try:
            pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict")
        except (UnicodeError, ValueError):
            raise Delegate from None
        for key, value in pairs:
            if "\x00" in key or "\x00" in value:
                raise Delegate
        return pairs

    def _tenant(self, slug: str):
        try:
            cache.follow()
            tenant = web.TENANTS.get(slug, lambda: web._load_tenant(slug))
        except Exception:  # noqa: BLE001  (the database or Redis failing: Flask's error pages)
            raise Delegate from None
        if tenant is None:
            raise Delegate  # Flask's 404, in the shape the client asked for
        g.tenant = tenant
        return tenant

    def _json(self, status: int, doc: dict, headers: dict | None = None):
        response = self.app.json.response(doc)  # as Flask's views answer
        response.status_code = status
        response.headers.update(headers or {})
        return response

    @staticmethod
    def _uri(environ) -> str:
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}" \
               f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}"

    def _send(self, environ, start_response, status: int, headers: list, body: bytes):
        environ["idp.status"] = status
        environ["idp.request_id"] = rid = logs.request_id(environ.get("HTTP_X_REQUEST_ID"))
        headers.append(("X-Request-ID", rid))
        names = {name.lower() for name, _ in headers}
        headers += [(k, v) for k, v in self.app.extensions["idp.security_headers"]
                    if k.lower() not in names]
        if "content-length" not in names:
            headers.append(("Content-Length", str(len(body))))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, '')}", headers)
        return [body]


def _client_id(pairs: list[tuple[str, str]], environ) -> str | None:
    """The client the token request names, for the log: its form's ``client_id``, the ``sub``
    of its ``client_assertion`` (private_key_jwt; checked or not) or the user name of its
    Basic credentials (never the secret)."""
    for key, value in pairs:
        if key == "client_id":
            return value[:100]
    for key, value in pairs:
        if key == "client_assertion" and value.count(".") == 2:
            body = value.split(".")[1]
            try:
                sub = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("sub")
            except (ValueError, UnicodeError, AttributeError, RecursionError):
                return None
            return sub[:100] if isinstance(sub, str) and sub else None
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if auth[:6].lower() == "basic ":
        try:
            user = base64.b64decode(auth[6:], validate=True).decode().partition(":")[0]
        except (ValueError, UnicodeError):
            return None
        return unquote(user)[:100] or None
    return None


def _oauth_error(status: int, body: bytes) -> str | None:
    if status < 400:
        return None
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    return error if isinstance(error, str) else None


def init_app(app: Flask) -> None:
    app.wsgi_app = Direct(app, app.wsgi_app)
