"""Two independent server processes behind one issuer, sharing the database and Redis, as two
workers or hosts behind a load balancer: a sign-in whose requests alternate between them
completes, and lockouts and TOTP replays are refused across both.

On the embedded run (SQLite) the two processes share the SQLite file and a Redis server the
test starts: the embedded store lives inside one process, which is what DESIGN.md's warning
about several workers is for.
"""

from __future__ import annotations

import secrets
from itertools import cycle
from urllib.parse import urlsplit

import pyotp
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support.journey import CSRF, TX, field
from tests.support.live_server import serve
from tests.support.ports import free_port
from tests.support.redis_server import shared_redis as shared_redis_server
from tests.support.signin import set_policy
from tests.support.totp import with_totp

LOCK_AFTER = 3


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture(scope="module")
def shared_redis(settings):
    with shared_redis_server(settings.redis_url) as url:
        yield url


@pytest.fixture(scope="module")
def servers(settings, shared_redis, tmp_path_factory):
    """Two ``idp serve`` processes; the issuer is the first one's address (the load balancer's,
    in production): every absolute URL they give out points there."""
    logs = tmp_path_factory.mktemp("scale-out")
    first_port = free_port()
    issuer_origin = f"http://127.0.0.1:{first_port}"
    pair = [serve(settings, logs / "a.log", port=first_port, redis_url=shared_redis),
            serve(settings, logs / "b.log", base_url=issuer_origin, redis_url=shared_redis)]
    yield pair
    for server in pair:
        server.stop()


class Balancer:
    """A browser whose every request goes to the next server in turn (the user's cookies go
    to both: they share a host), whatever address a redirect names."""

    def __init__(self, servers, order):
        self.http = requests.Session()
        self.servers = servers
        self.order = iter(order)
        self.seen = []

    def send(self, method: str, url: str, **kw) -> requests.Response:
        server = self.servers[next(self.order)]
        parts = urlsplit(url)
        target = server.url + parts.path + (f"?{parts.query}" if parts.query else "")
        self.seen.append(server.url)
        return self.http.request(method, target, allow_redirects=False, timeout=30, **kw)


def start(oauth: OAuth2Session, issuer: str) -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(f"{issuer}/authorize", code_verifier=verifier,
                                                nonce=secrets.token_urlsafe(12))
    return url, verifier


def password_step(browser: Balancer, world, url: str, password: str) -> requests.Response:
    """authorize → the login form → the password; the answer to the password."""
    r = browser.send("GET", url)
    assert r.status_code == 302, r.text[:300]
    form = browser.send("GET", r.headers["Location"])
    assert form.status_code == 200, form.text[:300]
    return browser.send("POST", f"/t/{world.slug}/login", data={
        "csrf_token": field(CSRF, form.text), "tx": field(TX, form.text),
        "email": world.alice, "password": password})


def totp_step(browser: Balancer, world, after_password: requests.Response,
              code: str) -> requests.Response:
    assert after_password.status_code == 302, after_password.text[:300]
    challenge = browser.send("GET", after_password.headers["Location"])
    assert challenge.status_code == 200 and 'name="code"' in challenge.text, challenge.text[:300]
    return browser.send("POST", f"/t/{world.slug}/login/verify", data={
        "csrf_token": field(CSRF, challenge.text), "tx": field(TX, challenge.text),
        "factor": "totp", "code": code})


def test_a_sign_in_alternating_between_two_servers_completes(app, settings, servers, world):
    world.issuer = f"{servers[0].url}/t/{world.slug}"
    seed = with_totp(app, world)
    oauth = OAuth2Session(world.portal.client_id, world.portal.client_secret, scope="openid",
                          redirect_uri=world.portal.redirect_uri, code_challenge_method="S256")
    url, verifier = start(oauth, world.issuer)
    # authorize on the first; the form, the password and the TOTP on the second.
    browser = Balancer(servers, [0, 1, 1, 1, 1])
    done = totp_step(browser, world, password_step(browser, world, url, world.password),
                     pyotp.TOTP(seed).now())
    assert done.status_code == 302 and done.headers["Location"].startswith(
        world.portal.redirect_uri), done.text[:300]
    assert browser.seen == [servers[i].url for i in (0, 1, 1, 1, 1)]
    # The token on the first, by Authlib's client, and the ID token checks out against the
    # JWKS the second one publishes.
    token = oauth.fetch_token(f"{servers[0].url}/t/{world.slug}/token",
                              authorization_response=done.headers["Location"],
                              code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(f"{servers[1].url}/t/{world.slug}/jwks",
                                              timeout=10).json())
    claims = jwt.decode(token["id_token"], keys).claims
    assert claims["iss"] == world.issuer and claims["acr"] == "mfa"
    assert sorted(claims["amr"]) == ["mfa", "otp", "pwd"]


def test_lockout_counts_across_both_servers(app, servers, world):
    # No CAPTCHA on the way (its own tests solve it): the lock is what is counted here.
    set_policy(app, world, captcha_after=100, lock_after=LOCK_AFTER)
    world.issuer = f"{servers[0].url}/t/{world.slug}"
    oauth = OAuth2Session(world.portal.client_id, world.portal.client_secret, scope="openid",
                          redirect_uri=world.portal.redirect_uri, code_challenge_method="S256")
    turns = cycle([0, 1])
    answers = []
    for _ in range(LOCK_AFTER):  # each password lands on the other server than the last
        browser = Balancer(servers, turns)
        answers.append(password_step(browser, world, start(oauth, world.issuer)[0],
                                     "not the password").status_code)
    # Counted together: the wrong ones are refused, the last of them locks the account.
    assert answers == [200] * (LOCK_AFTER - 1) + [429]
    # The right password now gets the locked page wherever it lands.
    for server in (0, 1):
        browser = Balancer(servers, [server] * 3)
        locked = password_step(browser, world, start(oauth, world.issuer)[0], world.password)
        assert locked.status_code == 429 and "locked" in locked.text, locked.text[:300]


def test_a_totp_code_is_spent_on_both_servers(app, servers, world):
    world.issuer = f"{servers[0].url}/t/{world.slug}"
    seed = with_totp(app, world)
    oauth = OAuth2Session(world.portal.client_id, world.portal.client_secret, scope="openid",
                          redirect_uri=world.portal.redirect_uri, code_challenge_method="S256")
    code = pyotp.TOTP(seed).now()
    first = Balancer(servers, [0] * 5)
    done = totp_step(first, world, password_step(first, world, start(oauth, world.issuer)[0],
                                                 world.password), code)
    assert done.status_code == 302 and "code=" in done.headers["Location"]
    # The same code again, through the other server: refused, it was spent on the first.
    second = Balancer(servers, [1] * 5)
    replay = totp_step(second, world, password_step(second, world, start(oauth, world.issuer)[0],
                                                    world.password), code)
    assert replay.status_code == 400 and "code=" not in replay.headers.get("Location", "")
