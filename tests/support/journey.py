"""Drive the hosted sign-in like a browser: with Flask's test client or a requests.Session.

Only what a browser does: follow redirects inside the IdP, read the form, post it back.
The redirect to the relying party is returned, never followed.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
TX = re.compile(r'name="tx"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="tx"')


@dataclass
class Page:
    status: int
    location: str | None
    text: str
    headers: dict


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def field(pattern: re.Pattern, html: str) -> str:
    m = pattern.search(html)
    assert m, f"no such field in page:\n{html[:2000]}"
    return m.group(1) or m.group(2) or ""


def query(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """One browser: Flask test client (``origin`` ignored) or requests.Session (live)."""

    def __init__(self, http, origin: str = ""):
        self.http = http
        self.origin = origin
        self.live = origin != ""

    def _path(self, url: str) -> str:
        if self.live:
            return url if url.startswith("http") else self.origin + url
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def get(self, url: str, params: dict | None = None) -> Page:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        if self.live:
            r = self.http.get(self._path(url), allow_redirects=False)
            return Page(r.status_code, r.headers.get("Location"), r.text, dict(r.headers))
        r = self.http.get(self._path(url))
        return Page(r.status_code, r.headers.get("Location"), r.get_data(as_text=True), dict(r.headers))

    def post(self, url: str, data: dict) -> Page:
        if self.live:
            r = self.http.post(self._path(url), data=data, allow_redirects=False)
            return Page(r.status_code, r.headers.get("Location"), r.text, dict(r.headers))
        r = self.http.post(self._path(url), data=data)
        return Page(r.status_code, r.headers.get("Location"), r.get_data(as_text=True), dict(r.headers))

    def follow(self, page: Page, stop_at: str) -> Page:
        """Follow redirects until one leaves for ``stop_at`` (the RP) or a page is shown."""
        for _ in range(10):
            if page.status not in (301, 302, 303, 307) or page.location.startswith(stop_at):
                return page
            page = self.get(page.location)
        raise AssertionError("redirect loop")

    def authorize(self, issuer_path: str, params: dict) -> Page:
        return self.follow(self.get(f"{issuer_path}/authorize", params), params.get("redirect_uri", "\0"))

    def sign_in(self, login_page: Page, email: str, password: str, slug: str, stop_at: str) -> Page:
        assert login_page.status == 200 and 'autocomplete="current-password"' in login_page.text, login_page.text[:500]
        form = {"csrf_token": field(CSRF, login_page.text), "tx": field(TX, login_page.text),
                "email": email, "password": password}
        return self.follow(self.post(f"/t/{slug}/login", form), stop_at)

    def consent(self, page: Page, slug: str, allow: bool, stop_at: str) -> Page:
        form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text)}
        form["allow" if allow else "deny"] = "1"
        return self.follow(self.post(f"/t/{slug}/consent", form), stop_at)
