"""The CAPTCHA gate's verifiers: self-hosted ALTCHA proof-of-work by default (no third party,
nothing fetched), or Cloudflare Turnstile / hCaptcha when ``IDP_CAPTCHA`` names one.

Every solution is accepted once (a Redis marker with the challenge's lifetime), and a hosted
verifier that cannot be reached means "not solved": the gate fails closed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import altcha
import requests
from flask_babel import gettext as _
from redis import Redis

from idp.untrusted import UntrustedInput, parse_json_object

CHALLENGE_TTL = 10 * 60
MAX_PAYLOAD = 4096
ALTCHA_STRINGS = ("algorithm", "challenge", "salt", "signature")


def widget_strings() -> dict[str, str]:
    """The ALTCHA widget's own words in the page's language (its ``strings`` attribute)."""
    return {
        "label": _("I'm not a robot"),
        "verified": _("Checked"),
        "verifying": _("Checking…"),
        "waitAlert": _("Checking… please wait."),
        "verificationRequired": _("Complete this check first."),
        "error": _("The check failed. Try again later."),
        "expired": _("The check expired. Try again."),
        "loading": _("Loading…"),
        "reload": _("Reload"),
        "verify": _("Check"),
    }


def _spend(store: Redis, payload: str) -> bool:
    """True the first time a solution is seen, on every worker."""
    marker = "captcha:used:" + hashlib.sha256(payload.encode()).hexdigest()
    return bool(store.set(marker, "1", nx=True, ex=CHALLENGE_TTL + 60))


@dataclass
class Altcha:
    """ALTCHA v1: the browser finds n with sha256(salt + n) == challenge; the HMAC signature
    proves we issued the challenge, the ``expires`` parameter in the salt bounds its life."""

    hmac_key: str
    max_number: int = 50_000  # ~0.1–0.5 s of hashing in a browser
    kind: str = "altcha"
    form_field: str = "altcha"  # the form field the widget fills
    csp_sources: list[str] = field(default_factory=list)

    def widget(self) -> dict:
        challenge = altcha.create_challenge_v1(altcha.ChallengeOptionsV1(
            hmac_key=self.hmac_key, max_number=self.max_number,
            expires=datetime.now(timezone.utc) + timedelta(seconds=CHALLENGE_TTL)))
        data = challenge.to_dict()
        return {"kind": self.kind, "challenge_json": json.dumps(data)}

    def verify(self, store: Redis, payload: str | None, remote_ip: str | None = None) -> bool:
        if not payload or len(payload) > MAX_PAYLOAD:
            return False
        solution = _altcha_solution(payload)
        if solution is None:
            return False
        try:
            ok, _ = altcha.verify_solution_v1(solution, self.hmac_key, check_expires=True)
        except (ValueError, TypeError, KeyError):
            return False
        return bool(ok) and _spend(store, payload)


def _altcha_solution(payload: str) -> dict | None:
    """The widget's base64 JSON, read here rather than by the altcha library, which takes
    whatever JSON it finds (a list for ``salt`` raised AttributeError: a 500)."""
    try:
        solution = parse_json_object(base64.b64decode(payload), what="CAPTCHA")
    except (UntrustedInput, ValueError):
        return None
    if not all(isinstance(solution.get(name), str) for name in ALTCHA_STRINGS) \
            or type(solution.get("number")) is not int:
        return None
    return solution


@dataclass
class Hosted:
    """Turnstile or hCaptcha: the token is checked with the provider's siteverify API."""

    kind: str
    site_key: str
    secret: str
    verify_url: str
    script_url: str
    csp_sources: list[str] = field(default_factory=list)

    @property
    def form_field(self) -> str:
        return "cf-turnstile-response" if self.kind == "turnstile" else "h-captcha-response"

    def widget(self) -> dict:
        return {"kind": self.kind, "site_key": self.site_key, "script_url": self.script_url,
                "css_class": "cf-turnstile" if self.kind == "turnstile" else "h-captcha"}

    def verify(self, store: Redis, payload: str | None, remote_ip: str | None = None) -> bool:
        if not payload or len(payload) > MAX_PAYLOAD:
            return False
        data = {"secret": self.secret, "response": payload}
        if remote_ip:
            data["remoteip"] = remote_ip
        try:
            answer = parse_json_object(
                requests.post(self.verify_url, data=data, timeout=5).content, what="answer")
        except (requests.RequestException, UntrustedInput):
            return False  # cannot ask the provider, or cannot read it: fail closed
        return answer.get("success") is True and _spend(store, payload)


PROVIDERS = {
    "turnstile": ("https://challenges.cloudflare.com/turnstile/v0/siteverify",
                  "https://challenges.cloudflare.com/turnstile/v0/api.js",
                  ["https://challenges.cloudflare.com"]),
    "hcaptcha": ("https://api.hcaptcha.com/siteverify", "https://js.hcaptcha.com/1/api.js",
                 ["https://js.hcaptcha.com", "https://*.hcaptcha.com"]),
}


def from_setting(setting: str, secret_key: str) -> Altcha | Hosted:
    """``altcha`` (default), or ``turnstile:SITE_KEY:SECRET`` / ``hcaptcha:SITE_KEY:SECRET``."""
    kind, _, rest = (setting or "altcha").partition(":")
    if kind == "altcha":
        key = hashlib.sha256(f"altcha\x00{secret_key}".encode()).hexdigest()
        return Altcha(hmac_key=key)
    if kind in PROVIDERS:
        site_key, _, secret = rest.partition(":")
        if not site_key or not secret:
            raise ValueError(f"IDP_CAPTCHA={kind} needs {kind}:SITE_KEY:SECRET")
        verify_url, script_url, sources = PROVIDERS[kind]
        return Hosted(kind, site_key, secret, verify_url, script_url, list(sources))
    raise ValueError(f"IDP_CAPTCHA must be altcha, turnstile:… or hcaptcha:…, not {kind!r}")
