"""What every hosted page and endpoint shares: the tenant from the URL, the issuer, error
pages, security headers."""

from __future__ import annotations

import logging
import re

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, abort, current_app, g, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from idp import branding, cache, db, i18n, problems
from idp import protocol as protocol_settings
from idp.branding import Brand
from idp.cache import Snapshots
from idp.config import Settings
from idp.protocol import Protocol
from idp.directory import SLUG, NotFound, get_tenant


@dataclass(frozen=True)
class TenantRef:
    """What requests read of a tenant, cached per worker (``idp.cache``)."""

    id: int
    slug: str
    name: str
    brand: Brand = branding.PLAIN
    protocol: Protocol = protocol_settings.DEFAULTS

    @property
    def display_name(self) -> str:
        """The name people see on its pages and in its mail: the branding's, else the tenant's."""
        return self.brand.display_name or self.name


TENANTS: Snapshots[str, TenantRef] = Snapshots("tenants")


def settings() -> Settings:
    return current_app.config["IDP"]


def tenant() -> TenantRef:
    return g.tenant


def issuer(slug: str | None = None) -> str:
    return f"{settings().base_url}/t/{slug or g.tenant.slug}"


def tenant_path(slug: str | None = None) -> str:
    """The cookie path that scopes a cookie to one tenant's pages."""
    return f"/t/{slug or g.tenant.slug}/"


def load_tenant(endpoint, values) -> None:
    """url_value_preprocessor for blueprints under /t/<tenant>."""
    if values is None or "tenant" not in values:
        return
    slug = values.pop("tenant")
    g.tenant = TENANTS.get(slug, lambda: _load_tenant(slug))
    if g.tenant is None:
        abort(404, description=_("There is no such organisation here. Check the address."))


# What a sign-in page is sure to read from Redis (its SSO session, its login transaction):
# functions the journey registers, each naming the keys this request will read.
SURE_READS: list[Callable[[], list[str]]] = []


def load_tenant_following(endpoint, values) -> None:
    """``load_tenant`` for the sign-in's pages (authorize, login, upstream sign-in). A page
    that reads Redis anyway (a session, a stored sign-in) reads the cache generation in the
    same round trip (``cache.read_with``), so it sees a change committed anywhere before it.
    One that reads nothing there (a first visit, a sign-in still sealed in its URL) takes the
    worker's followed copy (``cache.follow``), which a change reaches by Redis pub/sub within
    a millisecond, instead of a round trip of its own. The console and the account page read
    the counter at every request: an admin sees their change on the next page."""
    keys = [key for reads in SURE_READS for key in reads()]
    if keys:
        cache.read_with(keys)
    else:
        cache.follow()
    load_tenant(endpoint, values)


def _load_tenant(slug: str) -> TenantRef | None:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        return None  # never a lookup for what no tenant can be called (NUL, newline, length)
    try:
        row = get_tenant(db.session(), slug)
    except NotFound:
        return None
    return TenantRef(row.id, row.slug, row.name, branding.load(db.session(), row.id),
                     protocol_settings.load(db.session(), row.id))


def error_page(status: int, title: str, message: str, *, hint: str | None = None,
               again: str | None = None, again_label: str | None = None,
               detail: str | None = None):
    """A page for a person when something stopped: what happened (``message``), what to do
    (``hint``), a way to start again where there is one (``again``, a link), and the technical
    detail last and small, only where it helps someone who supports the person.
    Lazy text becomes plain text here: Jinja takes a lazy string for markup (it has
    ``__html__``) and would leave what was put into it, an address for one, unescaped; a
    policy sentence is said in the page's language (``i18n.say``)."""
    def text(value):
        return None if value is None else i18n.plain(value)

    return render_template("error.html", title=text(title), message=text(message),
                           hint=text(hint), again=again, again_label=text(again_label),
                           detail=text(detail)), status


def expired_page():
    """A sign-in we no longer hold (too old, finished, or from another browser): say so, and
    offer a fresh sign-in here; signed in, the application's next try goes straight through."""
    return error_page(400, _("This sign-in has expired"),
                      _("Sign-ins wait only a limited time, and each can be finished once."),
                      hint=_("Go back to the application and start signing in again."),
                      again=url_for("login.login", tenant=g.tenant.slug),
                      again_label=_("Sign in here instead"))


def security_headers(app: Flask) -> list[tuple[str, str]]:
    """The headers every response carries unless it set its own (computed once per app)."""
    # No form-action: it would block the redirect back to the relying party (DESIGN.md).
    hosted = " ".join(app.extensions["idp.captcha"].csp_sources)
    extra = f"; script-src 'self' {hosted}; frame-src {hosted}; connect-src 'self' {hosted}" \
        if hosted else ""
    headers = [
        ("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
         "frame-ancestors 'none'; base-uri 'none'; object-src 'none'" + extra),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ]
    if app.config["IDP"].secure_cookies:
        headers.append(("Strict-Transport-Security", "max-age=31536000"))
    return headers


def _security_headers(response):
    for name, value in current_app.extensions["idp.security_headers"]:
        response.headers.setdefault(name, value)
    if request.path.startswith("/t/") and response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


TITLES = {
    400: _l("That request could not be understood"),
    403: _l("Not allowed"),
    404: _l("Not found"),
    405: _l("Not allowed"),
    413: _l("Too much data"),
    429: _l("Too many attempts"),
    503: _l("Temporarily unavailable"),
}
# What a person can do about an error page of each kind (shown under its message).
HINTS = {
    404: _l("Check the address, or go back to the application and start again from there."),
    429: _l("Wait a few minutes, then try again."),
    503: _l("Nothing was lost. Try again in a minute."),
}


# The endpoints only programs call, answered in JSON whatever they accept (a console page whose
# address ends the same way, ".../registration-tokens/<id>/revoke", is a page).
PROTOCOL_ENDPOINT = re.compile(r"/t/[^/]+/(token|introspect|revoke|userinfo|jwks|par)")


def _http_error(error: HTTPException):
    status = error.code or 500
    if problems.API_PATH.match(request.path):
        return _api_problem(error, status)
    machine = (request.accept_mimetypes.best == "application/json"
               or PROTOCOL_ENDPOINT.fullmatch(request.path) is not None)
    if machine:
        message = error.description if status != 405 else "That page cannot be used that way."
        return {"error": "invalid_request" if status < 500 else "server_error",
                "error_description": str(message)}, status
    message = _("That page cannot be used that way.") if status == 405 else \
        _page_description(error)
    return error_page(status, TITLES.get(status, _l("Something went wrong")), message,
                      hint=HINTS.get(status))


# Werkzeug's own English descriptions (a route that is not there, a method, a size): a person
# reads ours instead, in their language. A description of ours is already translated.
DEFAULT_DESCRIPTIONS = {
    400: _l("Something in this request was not valid. Go back and try again."),
    403: _l("You may not open this page."),
    404: _l("There is no such page here."),
    413: _l("What was sent is larger than this page accepts."),
    429: _l("There were too many attempts."),
    503: _l("This service is briefly unavailable."),
}


def _page_description(error: HTTPException) -> str:
    if error.description == type(error).description and error.code in DEFAULT_DESCRIPTIONS:
        return DEFAULT_DESCRIPTIONS[error.code]
    return error.description


API_DETAILS = {
    404: "There is nothing at this address. The API's paths are listed in its openapi.json.",
    405: "This address does not take that method.",
    413: "The request body is too large.",
}


def _api_problem(error: HTTPException, status: int):
    """An HTTP error under an API path, as problem details (with the ``Allow`` of a 405)."""
    headers = {k: v for k, v in error.get_headers() if k == "Allow"}
    detail = error.description if status == 400 else API_DETAILS.get(status, error.description)
    return problems.problem(status, detail or "", headers=headers)


def _refuse_nul_bytes():
    """No text we store or look up may hold NUL (PostgreSQL refuses it): stop it at the door."""
    if "\x00" in request.path:
        abort(404, description=_("There is no such page here. Check the address."))
    for values in (request.args, request.form):
        for key, value in values.items(multi=True):
            if "\x00" in key or "\x00" in value:
                abort(400, description=_("The request contains a NUL character, which is never valid here."))


STORE_UNAVAILABLE = {"error": "temporarily_unavailable",
                     "error_description": "The service is briefly unavailable. Try again shortly."}
# What clients call (OAuth errors in JSON); everything else is a page for a person.
MACHINE_PATHS = ("/token", "/introspect", "/revoke", "/userinfo", "/jwks",
                 "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server")


def _unavailable():
    """Fail closed with when to retry: an OAuth ``temporarily_unavailable`` for clients, a
    page for people. Nothing was half-done: the request's transaction is rolled back."""
    if problems.API_PATH.match(request.path):
        return problems.problem(503, STORE_UNAVAILABLE["error_description"],
                                headers={"Retry-After": "30"})
    if request.path.endswith(MACHINE_PATHS):
        return STORE_UNAVAILABLE, 503, {"Retry-After": "30"}
    response = error_page(503, _("Sign-in is temporarily unavailable"),
                          _("We cannot check sign-ins safely right now. Nothing was lost; "
                            "try again in a minute."))
    return response[0], 503, {"Retry-After": "30"}


def _store_unavailable(error):
    """Redis is down: no sign-in goes uncounted."""
    current_app.logger.error("shared store unavailable: %s", error)
    return _unavailable()


def database_unavailable(error: DBAPIError) -> bool:
    """The database is down, restarting, or dropped this connection (not a fault of the
    statement): the pool replaces dead connections, so a later request works as soon as the
    server answers again."""
    return error.connection_invalidated or isinstance(error, (OperationalError, InterfaceError))


INVALID_VALUE = {"error": "invalid_request",
                 "error_description": "The request holds a value that is never valid here."}


def database_answer(error: BaseException, log: logging.Logger) -> tuple[int, dict, dict] | None:
    """What a client is told of a database error, logged here; None for a real fault (a 500
    with its traceback). A value the database refused (NUL, an overlong string) that no check
    caught sooner is the request's fault: 400. A database that is away: 503, try again."""
    if isinstance(error, DataError):
        log.warning("value refused by the database: %s", type(error.orig).__name__)
        return 400, INVALID_VALUE, {}
    if isinstance(error, DBAPIError) and database_unavailable(error):
        log.error("database unavailable: %s", error.orig or error)
        return 503, STORE_UNAVAILABLE, {"Retry-After": "30"}
    return None


def _database_error(error: DBAPIError):
    answer = database_answer(error, current_app.logger)
    if answer is None:
        raise error  # a real fault: Flask's 500, logged with its traceback
    db.discard()  # the request's transaction is undone; the connection may be dead
    status, body, _headers = answer
    if status == 503:
        return _unavailable()
    if problems.API_PATH.match(request.path):
        return problems.problem(status, body["error_description"])
    if request.path.endswith(MACHINE_PATHS):
        return body, status
    return error_page(status, TITLES[status], _("The request holds a value that is never valid here."),
                      hint=_("Go back and try again."))


def _out_of_range(error: OverflowError):
    """A number in the address no row can have (an id past 64 bits): SQLite's driver refuses
    to bind it. Nothing has that id, so: not found."""
    db.discard()
    if problems.API_PATH.match(request.path):
        return problems.problem(404, "There is nothing at this address.")
    return error_page(404, _("Not found"), _("There is nothing at this address."),
                      hint=HINTS[404])


def _busy(error):
    """This worker already checks and queues as many passwords as it lets (idp.password)."""
    response = error_page(503, _("Many people are signing in right now"),
                          _("Nothing was counted against your account. Try again in a few seconds."))
    return response[0], 503, {"Retry-After": "5"}


def init_app(app: Flask) -> None:
    from idp import captcha, devices, password

    app.jinja_env.globals.update(altcha_strings=captcha.widget_strings, local_time=i18n.when,
                                 browser_words=devices.in_words)

    app.register_error_handler(password.Busy, _busy)
    app.teardown_request(password.release)
    app.register_error_handler(RedisConnectionError, _store_unavailable)
    app.register_error_handler(RedisTimeoutError, _store_unavailable)
    app.register_error_handler(DBAPIError, _database_error)
    app.register_error_handler(OverflowError, _out_of_range)
    app.before_request(_refuse_nul_bytes)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
