"""Prometheus metrics: only for whoever holds IDP_METRICS_TOKEN, and they move when people sign
in, fail, get locked, see a CAPTCHA or a second factor, and when tokens are issued."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pyotp
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from idp import create_app
from tests.support.account import answer_challenge
from tests.support.captcha import solve
from tests.support.journey import CSRF, TX, Browser, field
from tests.support.live_server import wait_until_answering
from tests.support.paths import ROOT
from tests.support.ports import free_port
from tests.support.rp import basic, params_for
from tests.support.signin import set_policy
from tests.support.totp import with_totp

TOKEN = "metrics-reader-token"


@pytest.fixture
def metered(settings):
    app = create_app(replace(settings, metrics_token=TOKEN), TESTING=True)
    yield app
    app.extensions["idp.engine"].dispose()


def scrape(http) -> dict[tuple, float]:
    r = http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    out = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def moved(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_do_not_exist_unless_a_token_is_set(client):
    assert client.get("/metrics").status_code == 404


def test_metrics_need_the_token(metered):
    http = metered.test_client()
    assert http.get("/metrics").status_code == 401
    wrong = http.get("/metrics", headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 401 and "Bearer" in wrong.headers["WWW-Authenticate"]
    assert "idp_sign_ins_total" in http.get(
        "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).get_data(as_text=True)


def test_sign_ins_factors_lockouts_captchas_and_tokens_are_counted(metered, world):
    set_policy(metered, world, captcha_after=1, lock_after=3)
    seed = with_totp(metered, world)
    http = metered.test_client()
    before = scrape(http)

    # A wrong password, then (with the CAPTCHA it now needs shown) the right one and TOTP.
    browser = Browser(metered.test_client())
    login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
    wrong = browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, login.text), "tx": field(TX, login.text),
        "email": world.alice, "password": "not the password"})
    assert wrong.status == 200 and "altcha" in wrong.text
    page = browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, wrong.text), "tx": field(TX, wrong.text),
        "email": world.alice, "password": world.password, "altcha": solve(wrong.text)})
    challenge = browser.follow(page, world.portal.redirect_uri)
    extra = {"altcha": solve(challenge.text)} if "altcha" in challenge.text else {}
    done = answer_challenge(browser, world, challenge, "totp", code=pyotp.TOTP(seed).now(),
                            **extra)
    assert done.status == 302 and "code=" in done.location
    # Bob guesses until his account locks.
    other = Browser(metered.test_client())
    page = other.authorize(f"/t/{world.slug}", params_for(world.portal))
    for _ in range(3):
        form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
                "email": world.bob, "password": "guess"}
        if "altcha" in page.text:  # shown from the first failure on
            form["altcha"] = solve(page.text)
        page = other.post(f"/t/{world.slug}/login", form)
    assert page.status == 429
    # Two client-credentials tokens.
    for _ in range(2):
        assert http.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                         headers=basic(world.service.client_id,
                                       world.service.client_secret)).status_code == 200

    after = scrape(http)
    assert moved(before, after, "idp_sign_ins_total", outcome="success", method="otp+pwd") == 1
    assert moved(before, after, "idp_sign_ins_total", outcome="wrong_password",
                 method="pwd") >= 2
    assert moved(before, after, "idp_mfa_challenges_total", factor="totp") == 1
    assert moved(before, after, "idp_mfa_answers_total", factor="totp", result="right") == 1
    assert moved(before, after, "idp_lockouts_total", cause="password") == 1
    assert moved(before, after, "idp_captcha_shown_total") >= 1
    assert moved(before, after, "idp_tokens_issued_total", grant_type="client_credentials") == 2
    assert moved(before, after, "idp_request_duration_seconds_count",
                 route="/t/<tenant>/token", method="POST") == 2


def test_several_worker_processes_report_one_sum(settings, world, tmp_path):
    """granian with two worker processes: with PROMETHEUS_MULTIPROC_DIR, /metrics (answered by
    whichever worker) counts what every worker did."""
    port = free_port()
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "IDP_BASE_URL": f"http://127.0.0.1:{port}",
           "IDP_DATABASE_URL": settings.database_url, "IDP_KEYS_DIR": str(settings.keys_dir),
           "IDP_SECRET_KEY": settings.secret_key, "IDP_METRICS_TOKEN": TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    if settings.redis_url:
        env["IDP_REDIS_URL"] = settings.redis_url
    log = open(tmp_path / "granian.log", "w")
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "wsgi:app"],
        env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(server, f"{base}/health/live", tmp_path / "granian.log")
        grants = 20
        for _ in range(grants):  # new connections: the kernel spreads them over the workers
            r = requests.post(f"{base}/t/{world.slug}/token",
                              data={"grant_type": "client_credentials"},
                              auth=(world.service.client_id, world.service.client_secret),
                              headers={"Connection": "close"}, timeout=10)
            assert r.status_code == 200
        text = requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                            timeout=10).text
        counts = {tuple(sorted(s.labels.items())): s.value
                  for f in text_string_to_metric_families(text) for s in f.samples
                  if s.name == "idp_tokens_issued_total"}
        assert counts[(("grant_type", "client_credentials"),)] == grants
        assert len(list(folder.glob("*.db"))) >= 2  # each worker kept its own counts
    finally:
        server.terminate()  # granian's master stops its workers
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(10)
        log.close()


def test_invented_methods_do_not_grow_the_metrics(metered):
    http = metered.test_client()
    for method in ("FOO", "BAR", "BAZ"):
        assert http.open("/health/live", method=method).status_code == 405
    families = scrape(http)
    methods = {dict(labels).get("method") for (name, labels) in families
               if name == "idp_request_duration_seconds_count"}
    assert "OTHER" in methods and not methods & {"FOO", "BAR", "BAZ"}
