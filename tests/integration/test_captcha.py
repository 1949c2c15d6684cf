"""The CAPTCHA gate: after the tenant's threshold of failures, an attempt needs a solved
challenge — self-hosted ALTCHA by default, each solution accepted once, failing closed."""

from __future__ import annotations

import pytest

from idp.captcha import Hosted, from_setting
from idp.guard import account_key
from tests.support.captcha import challenge_on, solve
from tests.support.journey import CSRF, TX, field
from tests.support.signin import set_policy


def attempt(client, world, email, password, captcha=None):
    page = client.get(f"/t/{world.slug}/login").get_data(as_text=True)
    data = {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email, "password": password}
    if captcha is not None:
        data["altcha"] = captcha
    r = client.post(f"/t/{world.slug}/login", data=data)
    return r.status_code, r.get_data(as_text=True)


def failures(app, world, email):
    from idp import db, directory

    with app.app_context():
        session = db.session()
        tenant = directory.get_tenant(session, world.slug)
        user = directory.find_user(session, tenant, email)
        key = account_key(tenant.id, user.id if user else None, email)
    return app.extensions["idp.guard"].failures(key)


@pytest.mark.parametrize("who", ["known", "unknown"])
def test_three_failures_bring_the_captcha_and_no_solution_means_no_check(app, client, world, who):
    email = world.alice if who == "known" else "ghost@example.com"
    for _ in range(2):
        status, page = attempt(client, world, email, "wrong password")
        assert challenge_on(page) is None
    status, page = attempt(client, world, email, "wrong password")
    assert challenge_on(page) is not None and "altcha-widget" in page  # the third failure shows it
    # Without a solution even the right password is not checked, and nothing is counted.
    status, page = attempt(client, world, email, world.password)
    assert status == 400 and "Complete the check" in page
    assert failures(app, world, email) == 3
    status, page = attempt(client, world, email, "still wrong", captcha="garbage")
    assert status == 400 and failures(app, world, email) == 3


def test_a_solved_captcha_lets_the_right_password_in(client, world):
    for _ in range(3):
        _, page = attempt(client, world, world.alice, "wrong password")
    status, _ = attempt(client, world, world.alice, world.password, captcha=solve(page))
    assert status == 302


def test_a_solution_is_accepted_once(app, client, world):
    for _ in range(3):
        _, page = attempt(client, world, world.alice, "wrong password")
    solution = solve(page)
    status, _ = attempt(client, world, world.alice, "wrong again", captcha=solution)
    assert status == 200 and failures(app, world, world.alice) == 4  # checked and counted
    status, page = attempt(client, world, world.alice, world.password, captcha=solution)
    assert status == 400 and "Complete the check" in page


def test_the_threshold_is_the_tenants(app, client, world):
    set_policy(app, world, captcha_after=1, lock_after=10)
    _, page = attempt(client, world, world.alice, "wrong password")
    assert challenge_on(page) is not None


def test_widget_is_vendored_and_served_by_us(client, world):
    for _ in range(3):
        _, page = attempt(client, world, world.alice, "wrong password")
    assert 'src="/static/vendor/altcha/altcha.js"' in page and "https://" not in page.split("<main")[0]
    assert client.get("/static/vendor/altcha/altcha.js").status_code == 200
    assert client.get("/static/vendor/altcha/worker.js").status_code == 200


def test_hosted_verifier_that_cannot_be_reached_fails_closed(app):
    hosted = from_setting("turnstile:site-key:secret", "k")
    assert isinstance(hosted, Hosted)
    hosted.verify_url = "http://127.0.0.1:9/siteverify"  # nothing listens there
    assert hosted.verify(app.extensions["idp.store"], "a-token") is False


def test_hosted_verifier_checks_with_the_provider(app):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from urllib.parse import parse_qs

    seen = []

    class Provider(BaseHTTPRequestHandler):
        def do_POST(self):
            body = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            seen.append(body)
            ok = body["response"] == ["good-token"] and body["secret"] == ["the-secret"]
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"success": %s}' % (b"true" if ok else b"false"))

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hosted = from_setting("hcaptcha:site:the-secret", "k")
    hosted.verify_url = f"http://127.0.0.1:{server.server_port}/siteverify"
    store = app.extensions["idp.store"]
    assert hosted.verify(store, "bad-token") is False
    assert hosted.verify(store, "good-token", "203.0.113.9") is True
    assert hosted.verify(store, "good-token") is False  # once only
    assert seen[1]["remoteip"] == ["203.0.113.9"]
    server.shutdown()


def test_unknown_captcha_setting_is_refused_at_start():
    with pytest.raises(ValueError):
        from_setting("recaptcha-v9", "k")
    with pytest.raises(ValueError):
        from_setting("turnstile:only-site-key", "k")
