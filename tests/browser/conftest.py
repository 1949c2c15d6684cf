"""Browser fixtures: Debian's Chromium driven by Playwright, and ``idp demo`` in a subprocess.

Chromium is never downloaded: the tests use ``/usr/bin/chromium`` and fail (not skip) when
it is missing, saying how to install it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.support import screens
from tests.support.paths import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = (
    f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. "
    "Run `apt-get install chromium` (never `playwright install`)."
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 60  # seconds for `idp demo` to answer on both ports
# "    alice@demo.test    password 90hhPPuvDjeQ   (member)"
CREDENTIAL = re.compile(r"^\s+(\S+@\S+)\s+password\s+(\S+)\s+\((\w+)\)\s*$", re.MULTILINE)
ISSUER = re.compile(r"Identity provider:\s+(\S+)")
PORTAL = re.compile(r"Open the demo portal:\s+(\S+)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """No Chromium: every browser test FAILS (in its call phase) with the fix to apply.

    After the test, the screenshots of every page of ours it visited (tests.support.screens);
    a test that passed fails when one of those pages lays out wrong at 1280 or 360 px."""
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING, pytrace=False)
    recorder = item.stash.get(RECORDER, None)
    try:
        result = yield
    except BaseException:
        if recorder is not None:
            with contextlib.suppress(Exception):  # the test's own failure is the one to tell
                recorder.finish()  # the failed test's pages, to look at
        raise
    if recorder is not None:
        wrong = recorder.finish()
        if wrong:
            pytest.fail("The pages this test visited lay out wrong (screenshots in "
                        f"{recorder.folder}):\n" + "\n".join(wrong), pytrace=False)
    return result


RECORDER = pytest.StashKey[screens.Recorder]()


# --- the browser ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser_process():
    """One headless Chromium for the session (None when missing: the test then fails)."""
    if not CHROMIUM.exists():
        yield None
        return
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


class WatchedBrowser:
    """The session's Chromium as a test sees it: every context it opens is watched, so the
    pages of ours it visits are screenshot after the test (tests.support.screens)."""

    def __init__(self, browser, recorder: screens.Recorder):
        self._browser, self._recorder = browser, recorder

    def new_context(self, **options):
        context = self._browser.new_context(**options)
        self._recorder.watch(context)
        return context

    def new_page(self, **options):
        page = self._browser.new_page(**options)
        self._recorder.watch(page.context)
        return page

    def __getattr__(self, name):
        return getattr(self._browser, name)


@pytest.fixture
def screens_recorder(request, browser_process):
    """This test's screenshots and layout checks (None without Chromium)."""
    if browser_process is None:
        return None
    found = screens.Recorder(screens.folder_for(request.node.nodeid), browser_process)
    request.node.stash[RECORDER] = found
    return found


@pytest.fixture
def chromium(browser_process, screens_recorder):
    """Chromium for the test's own contexts (None when missing: the test then fails)."""
    return None if browser_process is None else WatchedBrowser(browser_process, screens_recorder)


@pytest.fixture
def page(chromium):
    """A page in a fresh context (no cookies shared with other tests)."""
    if chromium is None:
        yield None
        return
    context = chromium.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


# --- idp demo ------------------------------------------------------------------------------


@dataclass
class Demo:
    portal_url: str  # "http://localhost:Q" (no trailing slash)
    issuer: str  # "http://localhost:P/t/demo"
    passwords: dict[str, str] = field(default_factory=dict)  # email -> password
    roles: dict[str, str] = field(default_factory=dict)  # email -> role
    log: Path | None = None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""


def _free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all sockets held open while choosing)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code < 500
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """``idp demo`` on two free loopback ports, with its own SQLite database and keys."""
    tmp = tmp_path_factory.mktemp("demo")
    keys_dir = tmp / "keys"
    keys_dir.mkdir()
    idp_port, portal_port = _free_ports(2)
    env = {
        **os.environ,
        "IDP_DATABASE_URL": f"sqlite:///{tmp / 'idp.sqlite3'}",
        "IDP_KEYS_DIR": str(keys_dir),
        "IDP_SECRET_KEY": secrets.token_hex(32),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("IDP_BASE_URL", "IDP_REDIS_URL"):  # the demo sets its own; embedded store
        env.pop(name, None)
    log_path = tmp / "demo.log"
    log = open(log_path, "w+b")  # stdout and stderr: a file never fills up like a pipe
    process = subprocess.Popen(
        [sys.executable, "-m", "idp", "demo", "--host", "127.0.0.1",
         "--port", str(idp_port), "--portal-port", str(portal_port)],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
    )

    def stop():
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        log.close()

    # The demo publishes loopback as "localhost" (WebAuthn needs a domain, not an IP).
    idp_base = f"http://localhost:{idp_port}"
    portal_base = f"http://localhost:{portal_port}"
    probes = [f"{idp_base}/t/demo/.well-known/openid-configuration", f"{portal_base}/"]
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            text = log_path.read_text(errors="replace")
            if (all(_answers(url) for url in probes) and len(CREDENTIAL.findall(text)) >= 2
                    and ISSUER.search(text)):
                break
            if process.poll() is not None:
                raise RuntimeError(f"idp demo exited with status {process.returncode} before it "
                                   f"was ready. Its output:\n{log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"idp demo did not answer on ports {idp_port} and "
                                   f"{portal_port} within {START_TIMEOUT} s. Its output:\n"
                                   f"{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
    except BaseException:
        stop()
        raise

    creds = CREDENTIAL.findall(text)
    issuer = ISSUER.search(text).group(1).rstrip("/")
    portal = PORTAL.search(text)
    result = Demo(
        portal_url=(portal.group(1) if portal else portal_base).rstrip("/"),
        issuer=issuer,
        passwords={email: pw for email, pw, _ in creds},
        roles={email: role for email, _, role in creds},
        log=log_path,
    )
    assert result.issuer == f"{idp_base}/t/demo", text
    assert {"admin@demo.test", "alice@demo.test"} <= set(result.passwords), text
    yield result
    stop()
