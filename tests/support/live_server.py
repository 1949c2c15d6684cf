"""``idp serve`` in its own process on the test backend, as an operator starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from idp.config import Settings
from tests.support.paths import ROOT
from tests.support.ports import free_port


@dataclass
class LiveServer:
    url: str
    settings: Settings
    process: subprocess.Popen
    log: object = None

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        if self.log is not None:
            self.log.close()


def wait_until_answering(process: subprocess.Popen, url: str, log_path: Path,
                         timeout: float = 60) -> None:
    """Return once ``url`` answers; RuntimeError with the server's log if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=1).ok:
                return
        except requests.ConnectionError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the server did not start:\n{Path(log_path).read_text()}")
        time.sleep(0.1)


def serve(settings: Settings, log_path: Path, *, port: int | None = None,
          base_url: str | None = None, redis_url: str | None = None,
          smtp_url: str | None = None) -> LiveServer:
    """``idp serve`` in its own process on the test backend (``redis_url`` instead of the
    backend's Redis, if given); returns once it answers. ``base_url`` is the issuer, by default
    its own address: servers behind one load balancer share one."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    redis_url = redis_url or settings.redis_url
    env = {
        **os.environ,
        "IDP_BASE_URL": base_url or url,
        "IDP_DATABASE_URL": settings.database_url,
        "IDP_KEYS_DIR": str(settings.keys_dir),
        "IDP_SECRET_KEY": settings.secret_key,
        # As in-process (see ``settings``): every test's failures come from 127.0.0.1.
        "IDP_IP_FAILURES_PER_10_MINUTES": str(settings.ip_failures_per_10_minutes),
        "IDP_UPSTREAM_STARTS_PER_10_MINUTES": str(settings.upstream_starts_per_10_minutes),
    }
    if smtp_url:  # its own background sender mails there
        env["IDP_SMTP_URL"] = smtp_url
    else:  # nothing to mail: no sender racing the tests for the outbox's other rows
        env["IDP_MAIL_SENDER"] = "off"
    if redis_url:
        env["IDP_REDIS_URL"] = redis_url
    else:
        env.pop("IDP_REDIS_URL", None)
    log = open(log_path, "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "idp", "serve", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )
    wait_until_answering(process, url + "/", log_path)
    return LiveServer(url, Settings.from_env({}, base_url=base_url or url,
                                             database_url=settings.database_url,
                                             redis_url=redis_url, keys_dir=settings.keys_dir),
                      process, log)
