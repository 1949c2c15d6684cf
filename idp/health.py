"""Health checks for load balancers and orchestrators, outside any tenant.

``GET /health/live``: the process answers (restart it when it does not); nothing else is
checked, so a database outage does not get every worker killed. ``GET /health/ready``: the
database and Redis both answer a trivial command, so this worker can serve sign-ins now
(take it out of rotation when it cannot). Both are JSON, never cached, and say which
dependency failed but not why: the reason goes to the log, not to whoever asks.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app
from sqlalchemy import text

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__, url_prefix="/health")


def _no_store(body: dict, status: int = 200):
    return body, status, {"Cache-Control": "no-store"}


@bp.get("/live")
def live():
    return _no_store({"status": "ok"})


def _database() -> bool:
    try:
        with current_app.extensions["idp.engine"].connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception as error:  # any failure means not ready; the log says which
        log.warning("readiness: the database does not answer: %s: %s",
                    type(error).__name__, error)
        return False


def _redis() -> bool:
    try:
        return bool(current_app.extensions["idp.store"].ping())
    except Exception as error:
        log.warning("readiness: Redis does not answer: %s: %s", type(error).__name__, error)
        return False


@bp.get("/ready")
def ready():
    checks = {"database": _database(), "redis": _redis()}
    ok = all(checks.values())
    return _no_store({"status": "ok" if ok else "unavailable",
                      "checks": {k: "ok" if v else "unavailable" for k, v in checks.items()}},
                     200 if ok else 503)
