"""Prometheus metrics (prometheus-client), at ``GET /metrics`` for whoever holds
``IDP_METRICS_TOKEN`` (``Authorization: Bearer …``); without that setting the endpoint does
not exist (404): never public by default.

What is counted comes from two places only, so a new page or grant is counted without being
told: the audit trail (``idp.audit`` hands every event here: sign-ins by outcome and method,
answers to second factors, lockouts) and the end of every request (``idp.logs``: latency by
route, tokens issued by grant). Challenges and CAPTCHAs are counted where they are shown.

Several worker processes (granian ``--workers``, gunicorn): set ``PROMETHEUS_MULTIPROC_DIR``
to an empty folder shared by a host's workers, and ``/metrics`` adds up all of them
(prometheus-client's multiprocess mode); without it each worker reports its own.
"""

from __future__ import annotations

import hmac
import os

from flask import Blueprint, Response, abort, current_app, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)

SIGN_INS = Counter("idp_sign_ins_total", "Sign-ins, by outcome and by the methods used",
                   ["outcome", "method"])
MFA_CHALLENGES = Counter("idp_mfa_challenges_total", "Second-factor challenges shown, by factor",
                         ["factor"])
MFA_ANSWERS = Counter("idp_mfa_answers_total", "Answers to second factors, by factor and result",
                      ["factor", "result"])
LOCKOUTS = Counter("idp_lockouts_total", "Accounts locked, by what was guessed", ["cause"])
CAPTCHAS = Counter("idp_captcha_shown_total", "CAPTCHAs shown before a sign-in attempt")
TOKENS = Counter("idp_tokens_issued_total", "Token responses issued, by grant type",
                 ["grant_type"])
LATENCY = Histogram("idp_request_duration_seconds", "Time to answer, by route and method",
                    ["route", "method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

GRANTS = {"authorization_code", "refresh_token", "client_credentials"}
# Label values come from a fixed set: a client inventing methods must not grow the registry.
METHODS = {"GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"}


def audited(action: str, data: dict) -> None:
    """Count what an audit event says happened."""
    if action == "user.signed_in":
        methods = sorted(m for m in data.get("amr") or ["pwd"] if m != "mfa")
        SIGN_INS.labels("success", "+".join(methods)).inc()
    elif action == "user.signed_in_upstream":
        SIGN_INS.labels("success", "upstream").inc()
    elif action == "user.sign_in_failed":
        SIGN_INS.labels("wrong_password", "pwd").inc()
    elif action == "upstream.sign_in_failed":
        SIGN_INS.labels("failure", "upstream").inc()
    elif action == "user.sign_in_refused":
        SIGN_INS.labels("refused", "pwd").inc()
    elif action in ("mfa.challenge_passed", "mfa.challenge_failed"):
        MFA_ANSWERS.labels(str(data.get("factor")),
                           "right" if action == "mfa.challenge_passed" else "wrong").inc()
    elif action == "account.locked":
        LOCKOUTS.labels(str(data.get("cause") or "unknown")).inc()


def request_done(method: str, route: str, status: int, seconds: float,
                 grant_type: str | None = None) -> None:
    LATENCY.labels(route, method if method in METHODS else "OTHER").observe(seconds)
    if grant_type and status == 200 and route.endswith("/token"):
        TOKENS.labels(grant_type if grant_type in GRANTS else "other").inc()


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    token = current_app.config["IDP"].metrics_token
    if not token:
        abort(404)
    offered = request.headers.get("Authorization", "")
    if not hmac.compare_digest(offered.encode(), f"Bearer {token}".encode()):
        return Response("Metrics need the bearer token of IDP_METRICS_TOKEN.\n", 401,
                        {"WWW-Authenticate": 'Bearer realm="metrics"'})
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, 200, {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})
