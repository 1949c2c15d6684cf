"""A load generator for full sign-in flows: authorize → password → TOTP → code → token.

    .venv/bin/python benchmarks/signin_load.py --issuer http://127.0.0.1:8000/t/bench \\
        --client-id ID --client-secret SECRET --redirect-uri https://rp.example/cb \\
        --accounts accounts.json --duration 10 --concurrency 4 [--rate 20]

prints a ``Result`` as JSON. To make the accounts (and the client) in a database first:

    IDP_SECRET_KEY=... .venv/bin/python benchmarks/signin_load.py seed \\
        --database-url postgresql://... --tenant bench -n 1000 \\
        --redirect-uri https://rp.example/cb --out accounts.json

(the same ``IDP_SECRET_KEY`` and ``IDP_ARGON2_*`` as the server: the TOTP seeds are encrypted
with it, and a hash made with other argon2 parameters is rehashed at every sign-in). With
``--out`` the file also holds the client's id and secret, so ``--client-id`` and
``--client-secret`` may be left out of the run.

How a flow goes (idp/login/views.py, idp/oidc/authorize.py), one fresh cookie jar per flow:

1. GET  {issuer}/authorize?response_type=code&scope=openid&state&nonce&PKCE(S256) → 302 login
2. GET  {issuer}/login?tx=… → 200, the form (csrf_token, tx)
3. POST {issuer}/login (email, password) → 302 {issuer}/login/verify?tx=…
4. GET  {issuer}/login/verify?tx=… → 200, the TOTP form (this GET starts the challenge)
5. POST {issuer}/login/verify (factor=totp, code) → 302 {redirect_uri}?code&state&iss (not
   followed; before b90a66b it went through GET {issuer}/authorize/resume?tx=… first)
6. POST {issuer}/token (client_secret_basic, code_verifier) → 200 JSON

Redirects inside the IdP are followed generically, so a changed path does not break the
count; a flow where no second factor was asked is an error (the benchmark is the full flow).

Design:

* Threads, one ``http.client`` keep-alive connection per worker (re-opened when the server
  closes it: gunicorn's sync worker closes after every response, gthread keeps it alive).
  OAuth is built by hand (PKCE S256, the query, Basic auth, the form), not with Authlib's
  ``OAuth2Session``: its token request goes through ``requests``, ~1.4 ms of CPU a request
  against ~0.1 ms for ``http.client``. Against a dummy IdP the generator does ~570 flows/s
  on one core (closed loop), ~1.6-2.5 ms of CPU a flow; against the real server 4-5 ms (the
  kernel's socket work, more so when every request opens a connection). The result says
  (``client_cpu_ms_per_flow``; ``client_cpu_share`` near 1.0 would mean the generator, not
  the server, was the limit). Threads rather than processes: the generator is pinned to one
  core anyway, where processes would add nothing.
* TOTP codes are accepted once per user per 30-s step: each account is handed out at most
  once per step (round-robin, ``last step < current step``); when none is free the worker
  waits for the next step (``account_wait_s``). So ``len(accounts) / 30`` flows/s is the most
  a run can sustain: 1,000 accounts allow 33 flows/s, 40 flows/s needs 1,200 or more.
* ``rate``: open loop. Flow k is due at ``start + k / rate``; whichever worker is free takes
  the next one. Latency is measured from when the flow was due (so a backlog, when the
  workers cannot keep up, shows in the latency, and in ``late_starts``). Without ``rate``
  each worker starts its next flow as soon as the previous one ends (closed loop).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import http.client
import json
import re
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urljoin, urlsplit

import pyotp

STEP_SECONDS = 30  # the IdP's TOTP time step (idp.mfa.totp.Totp.STEP)
MAX_ERROR_SAMPLES = 10
REQUEST_TIMEOUT = 30.0
MAX_HOPS = 12  # requests in one flow before it is called a loop

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
TX = re.compile(r'name="tx"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="tx"')
FACTOR = re.compile(r'name="factor"[^>]*value="([^"]*)"|value="([^"]*)"[^>]*name="factor"')
FORM_ACTION = re.compile(r'<form[^>]*\baction="([^"]+)"')
H1 = re.compile(r"<h1[^>]*>(.*?)</h1>", re.S)
ERROR_P = re.compile(r'<p class="error"[^>]*>(.*?)</p>', re.S)


@dataclass
class Account:
    email: str
    password: str
    totp_secret: str  # base32, for pyotp


@dataclass
class Result:
    flows: int  # completed sign-ins (token response with access_token and id_token)
    errors: int
    seconds: float
    rate: float  # flows / seconds
    p50_ms: float  # whole-flow latency
    p99_ms: float
    error_samples: list[str]  # first few error descriptions
    # Beyond the interface: is the generator itself the limit, and did the setup hold?
    client_cpu_ms_per_flow: float = 0.0  # this process's CPU per attempted flow
    client_cpu_share: float = 0.0  # this process's CPU / wall time (1.0 = one core busy)
    account_wait_s: float = 0.0  # seconds (summed over workers) waited for a free account
    late_starts: int = 0  # paced flows that started > 50 ms after they were due
    retry_later: int = 0  # flows the server shed with a 503 + Retry-After (then waited, as users)


class RetryLater(Exception):
    """The server shed this sign-in (503 with Retry-After: its queue of password checks was
    full) before counting anything; a browser's user tries again after that many seconds."""

    def __init__(self, seconds: float):
        super().__init__(f"asked to retry in {seconds:g} s")
        self.seconds = seconds


class FlowError(Exception):
    """One flow went wrong; the message is the short description counted in the result."""


# --- HTTP: one keep-alive connection per worker, cookies per flow ------------------------------
class Connection:
    """``http.client`` to one origin, re-opened when the server closed it."""

    def __init__(self, origin: str, timeout: float = REQUEST_TIMEOUT):
        parts = urlsplit(origin)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.conn = cls(parts.hostname, parts.port, timeout=timeout)

    def request(self, method: str, path: str, body: str | None = None,
                headers: dict | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (0, 1):
            reused = self.conn.sock is not None
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    ConnectionAbortedError):
                self.conn.close()
                # A kept-alive connection the server had closed meanwhile: the request never
                # reached it, try once more on a new one.
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                self.conn.close()
                raise
            # http.client closes the socket itself after a "Connection: close" response and
            # opens a new one on the next request.
            return response.status, response.msg, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


class Jar:
    """A browser's cookies for one origin (every path: the flow stays under the tenant)."""

    def __init__(self):
        self.cookies: dict[str, str] = {}

    def update(self, headers: http.client.HTTPMessage) -> None:
        for line in headers.get_all("Set-Cookie") or ():
            pair, _, attrs = line.partition(";")
            name, _, value = pair.strip().partition("=")
            lowered = attrs.lower()
            if "max-age=0" in lowered.replace(" ", "") or "expires=thu, 01 jan 1970" in lowered:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value

    def header(self) -> dict:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}


# --- One flow -----------------------------------------------------------------------------------
def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return verifier, challenge.decode()


def _field(pattern: re.Pattern, page: str, what: str) -> str:
    m = pattern.search(page)
    if not m:
        raise FlowError(f"{what}: no such field in the page")
    return html.unescape(m.group(1) or m.group(2) or "")


def _describe(status: int, page: str) -> str:
    """A page's status and what it says, in a few words."""
    parts = [str(status)]
    for pattern in (H1, ERROR_P):
        m = pattern.search(page)
        if m:
            parts.append(" ".join(html.unescape(re.sub(r"<[^>]+>", "", m.group(1))).split())[:80])
    return " ".join(parts)


def _jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Client:
    """The relying party plus the browser, for one worker; ``sign_in`` runs one full flow."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str):
        self.issuer = issuer.rstrip("/")
        parts = urlsplit(self.issuer)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.token_path = parts.path + "/token"
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        basic = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"  # RFC 6749 2.3.1
        self.basic = "Basic " + base64.b64encode(basic.encode()).decode()
        self.http = Connection(self.origin)

    def close(self) -> None:
        self.http.close()

    def _send(self, jar: Jar, method: str, url: str, form: dict | None = None):
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            raise FlowError(f"redirected off the IdP to {url[:100]}")
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = jar.header()
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, msg, data = self.http.request(method, path, body, headers)
        jar.update(msg)
        if status == 503 and msg.get("Retry-After", "").isdigit():
            raise RetryLater(float(msg["Retry-After"]))
        location = msg.get("Location")
        return status, (urljoin(url, location) if location else None), data.decode("utf-8", "replace")

    def sign_in(self, account: Account, code: str) -> None:
        """Raises FlowError (or a connection error) unless a token response came back."""
        jar = Jar()
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        query = urlencode({"response_type": "code", "client_id": self.client_id,
                           "redirect_uri": self.redirect_uri, "scope": "openid", "state": state,
                           "nonce": nonce, "code_challenge": challenge,
                           "code_challenge_method": "S256"})
        url = f"{self.issuer}/authorize?{query}"
        method, form = "GET", None
        asked_password = asked_totp = False
        callback = None
        for _ in range(MAX_HOPS):
            status, location, page = self._send(jar, method, url, form)
            step = "authorize" if not asked_password else "password" if not asked_totp else "totp"
            if status in (301, 302, 303, 307):
                if not location:
                    raise FlowError(f"{step}: {status} without a Location")
                if location.startswith(self.redirect_uri):
                    callback = location
                    break
                url, method, form = location, "GET", None
                continue
            if status != 200:
                raise FlowError(f"{step}: {method} {urlsplit(url).path} gave {_describe(status, page)}")
            if 'autocomplete="current-password"' in page:
                if asked_password:
                    raise FlowError(f"password: asked again: {_describe(status, page)}")
                asked_password = True
                form = {"csrf_token": _field(CSRF, page, "login csrf_token"),
                        "tx": _field(TX, page, "login tx"),
                        "email": account.email, "password": account.password}
                url, method = self._action(page, url, "/login"), "POST"
            elif 'name="factor"' in page:
                factor = _field(FACTOR, page, "factor")
                if factor != "totp":
                    raise FlowError(f"second factor: {factor!r} asked, not totp")
                if asked_totp:
                    raise FlowError(f"totp: code refused: {_describe(status, page)}")
                asked_totp = True
                form = {"csrf_token": _field(CSRF, page, "factor csrf_token"),
                        "tx": _field(TX, page, "factor tx"), "factor": "totp", "code": code}
                url, method = self._action(page, url, "/login/verify"), "POST"
            else:
                raise FlowError(f"{step}: unexpected page {_describe(status, page)}")
        else:
            raise FlowError(f"more than {MAX_HOPS} requests: a redirect loop?")
        if not asked_totp:
            raise FlowError("no second factor was asked (is TOTP enrolled and the policy on?)")
        back = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
        if "error" in back:
            raise FlowError(f"callback: {back['error']}: {back.get('error_description', '')[:80]}")
        if back.get("state") != state:
            raise FlowError("callback: state did not come back")
        if back.get("iss") not in (None, self.issuer):
            raise FlowError(f"callback: iss {back.get('iss')!r} is not the issuer")
        if not back.get("code"):
            raise FlowError("callback: no code")
        self._token(back["code"], verifier, nonce)

    def _action(self, page: str, url: str, fallback: str) -> str:
        m = FORM_ACTION.search(page)
        return urljoin(url, html.unescape(m.group(1))) if m else f"{self.issuer}{fallback}"

    def _token(self, code: str, verifier: str, nonce: str) -> None:
        body = urlencode({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        status, _, data = self.http.request("POST", self.token_path, body, {
            "Authorization": self.basic, "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json"})
        try:
            token = json.loads(data)
        except ValueError:
            raise FlowError(f"token: {status}, not JSON: {data[:80]!r}") from None
        if status != 200:
            raise FlowError(f"token: {status} {token.get('error')}: "
                            f"{str(token.get('error_description', ''))[:80]}")
        if not token.get("access_token") or not token.get("id_token"):
            raise FlowError(f"token: missing {'access_token' if not token.get('access_token') else 'id_token'}")
        try:
            claims = _jwt_claims(token["id_token"])
        except (ValueError, IndexError):
            raise FlowError("token: the id_token is not a JWT") from None
        if claims.get("nonce") != nonce:
            raise FlowError("token: the id_token's nonce is not ours")


# --- Accounts, one per TOTP step ----------------------------------------------------------------
# The last TOTP step each seed was used in (by base32 seed), shared by every run of this
# process: a second run right after a first must not replay the first one's codes. The CLI
# keeps it in a file between processes (``--steps-file``).
LAST_STEP: dict[str, int] = {}


class Accounts:
    """Hands out each account at most once per TOTP step, round-robin."""

    def __init__(self, accounts: list[Account]):
        if not accounts:
            raise ValueError("no accounts")
        self.accounts = accounts
        self.totps = [pyotp.TOTP(a.totp_secret) for a in accounts]
        self.last = [LAST_STEP.get(a.totp_secret, -1) for a in accounts]
        self.next = 0
        self.lock = threading.Lock()
        self.waited = 0.0

    def take(self, deadline: float) -> tuple[Account, str] | None:
        """(account, its code for the current step), waiting for the next step when every
        account was used in this one; None once ``deadline`` has passed."""
        n = len(self.accounts)
        while True:
            with self.lock:
                now = time.time()
                step = int(now // STEP_SECONDS)
                for k in range(n):
                    i = (self.next + k) % n
                    if self.last[i] < step:
                        self.last[i], self.next = step, i + 1
                        LAST_STEP[self.accounts[i].totp_secret] = step
                        # The code of exactly the step recorded (pyotp's now() could be a
                        # step later at the boundary).
                        return self.accounts[i], self.totps[i].generate_otp(step)
            # Every account was used in this step: wait for the next (counted, so a run with
            # too few accounts for its rate says so), or until the deadline if that is sooner.
            pause = min((step + 1) * STEP_SECONDS + 0.01 - now, deadline - time.monotonic())
            if pause > 0:
                time.sleep(pause)
                with self.lock:
                    self.waited += pause
            if time.monotonic() >= deadline:
                return None


# --- The run -----------------------------------------------------------------------------------
def _percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]


def run(issuer: str, client_id: str, client_secret: str, redirect_uri: str, accounts: list[Account],
        *, duration: float, concurrency: int, rate: float | None = None) -> Result:
    """``concurrency`` threads signing in for ``duration`` seconds (flows in flight then finish)."""
    if concurrency < 1 or duration <= 0 or (rate is not None and rate <= 0):
        raise ValueError("concurrency >= 1, duration > 0 and rate > 0 (or None)")
    pool = Accounts(accounts)
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    error_count = 0
    shed = 0
    late = 0
    slot = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    deadline = t0 + duration

    def worker():
        nonlocal error_count, shed, late, slot
        client = Client(issuer, client_id, client_secret, redirect_uri)
        try:
            while True:
                if rate is not None:
                    with lock:
                        k, slot = slot, slot + 1
                    due = t0 + k / rate
                    if due >= deadline:
                        return
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                elif time.monotonic() >= deadline:
                    return
                asked = time.monotonic()
                taken = pool.take(deadline)
                if taken is None:
                    return
                account, code = taken
                started = time.monotonic()
                if rate is not None:
                    if asked - due > 0.05:
                        with lock:
                            late += 1
                    # Latency counts from when the flow was due (a backlog is latency), unless
                    # it waited for a free account: that is the setup's limit, not the server's.
                    if started - asked < 0.05:
                        started = due
                try:
                    client.sign_in(account, code)
                except RetryLater as e:  # shed by design, not an error: back off as a user would
                    with lock:
                        shed += 1
                    time.sleep(max(0.0, min(e.seconds, deadline - time.monotonic())))
                except Exception as e:  # one bad flow never ends the run
                    text = str(e) if isinstance(e, FlowError) else f"{type(e).__name__}: {e}"
                    with lock:
                        error_count += 1
                        if len(errors) < MAX_ERROR_SAMPLES:
                            errors.append(f"{account.email}: {text}"[:240])
                    if not isinstance(e, FlowError):
                        client.close()  # a broken connection: start the next flow on a new one
                else:
                    with lock:
                        latencies.append((time.monotonic() - started) * 1000)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, name=f"signin-{i}", daemon=True)
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    ordered = sorted(latencies)
    attempted = len(latencies) + error_count
    return Result(
        flows=len(latencies), errors=error_count, seconds=round(seconds, 3),
        rate=round(len(latencies) / seconds, 2) if seconds else 0.0,
        p50_ms=round(_percentile(ordered, 0.50), 1), p99_ms=round(_percentile(ordered, 0.99), 1),
        error_samples=errors,
        client_cpu_ms_per_flow=round(cpu / attempted * 1000, 2) if attempted else 0.0,
        client_cpu_share=round(cpu / seconds, 3) if seconds else 0.0,
        account_wait_s=round(pool.waited, 2), late_starts=late, retry_later=shed,
    )


# --- Seeding: a tenant, a confidential client, n accounts with TOTP ---------------------------
class _OneHash:
    """``Passwords`` for ``directory.create_user`` with one argon2 hash made up front: every
    account shares the password, so n accounts cost one hash, not n."""

    def __init__(self, passwords, password: str):
        self.hashed = passwords.hash(password)  # checks the strength rules too

    def hash(self, password: str) -> str:
        return self.hashed


def seed_accounts(database_url: str, tenant_slug: str, n: int, redirect_uri: str, *,
                  secret_key: str | None = None, mfa_mode: str = "required",
                  migrate: bool = True) -> tuple[str, str, list[Account]]:
    """(client_id, client_secret, accounts): ``n`` users of ``tenant_slug`` (made if missing)
    sharing one random password, each with its own TOTP authenticator, a confidential client
    for ``redirect_uri``, and the tenant's MFA policy set to ``mfa_mode`` with TOTP allowed.

    Through the app's own code (``idp.directory``, ``idp.admin``, the ORM, ``SecretBox``), so
    PostgreSQL and SQLite alike. The seeds are encrypted with ``secret_key``, by default the
    server's (``IDP_SECRET_KEY`` from the environment, as ``Settings.from_env`` reads it); the
    hash uses the ``IDP_ARGON2_*`` parameters of the environment, so the server does not rehash
    it at each sign-in. Emails carry a random batch id, so seeding again adds new accounts.
    """
    from sqlalchemy.orm import Session

    from idp import admin, db as idp_db, directory, mfa
    from idp.config import Settings
    from idp.password import Passwords
    from idp.mfa.secrets import SecretBox
    from idp.mfa.totp import Totp
    from idp.models import Authenticator

    overrides = {"database_url": database_url}
    if secret_key is not None:
        overrides["secret_key"] = secret_key
    settings = Settings.from_env(**overrides)
    if migrate:
        idp_db.upgrade(database_url)
    engine = idp_db.make_engine(database_url)
    box = SecretBox(settings.secret_key)
    password = "load-" + secrets.token_urlsafe(12)
    passwords = _OneHash(Passwords(settings.argon2_memory_kib, settings.argon2_time_cost,
                                   settings.argon2_parallelism), password)
    batch = secrets.token_hex(3)
    accounts: list[Account] = []
    try:
        with Session(engine, expire_on_commit=False) as session:
            try:
                tenant = directory.get_tenant(session, tenant_slug)
            except directory.NotFound:
                tenant = directory.create_tenant(session, tenant_slug, f"Load test {tenant_slug}")
            row = admin.policy_row(session, tenant)
            factors = sorted(set(row.allowed_factors) | {"totp"})
            admin.set_policy(session, tenant, "signin_load", mode=mfa_mode,
                             factors=[f for f in factors if mfa.named(f)])
            new = directory.create_client(session, tenant, f"Sign-in load {batch}", [redirect_uri],
                                          actor="signin_load")
            for i in range(n):
                email = f"load-{batch}-{i:06d}@example.com"
                user = directory.create_user(session, passwords, tenant, email, password,
                                             name=f"Load {i}")
                # What Totp.enroll_begin/enroll_finish store, without spending a code: the
                # seed encrypted with the app's SecretBox and a random handle for its
                # "last step" key in Redis.
                seed = pyotp.random_base32(32)
                session.add(Authenticator(
                    tenant_id=tenant.id, user_id=user.id, type=Totp.type, name=Totp.label,
                    data={"secret": box.encrypt(seed), "handle": secrets.token_urlsafe(12)}))
                accounts.append(Account(email, password, seed))
                if i % 500 == 499:
                    session.flush()
            session.commit()
            return new.client.client_id, new.secret, accounts
    finally:
        engine.dispose()


# --- CLI ----------------------------------------------------------------------------------------
def load_accounts(path: str) -> tuple[list[Account], dict]:
    """Accounts from a JSON list, or from ``{"accounts": [...], "client_id": ...}`` (what
    ``seed --out`` writes); also returns that object's other keys."""
    data = json.loads(Path(path).read_text())
    extra = {}
    if isinstance(data, dict):
        extra = {k: v for k, v in data.items() if k != "accounts"}
        data = data["accounts"]
    return [Account(a["email"], a["password"], a["totp_secret"]) for a in data], extra


def _seed_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="signin_load.py seed",
                                     description="Create a client and accounts with TOTP.")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("-n", type=int, required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--mfa-mode", default="required", choices=["required", "optional"])
    parser.add_argument("--out", help="write the accounts and the client here (JSON)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    client_id, client_secret, accounts = seed_accounts(args.database_url, args.tenant, args.n,
                                                       args.redirect_uri, mfa_mode=args.mfa_mode)
    out = {"tenant": args.tenant, "client_id": client_id, "client_secret": client_secret,
           "redirect_uri": args.redirect_uri, "accounts": [asdict(a) for a in accounts]}
    if args.out:
        Path(args.out).write_text(json.dumps(out))
    print(json.dumps({"tenant": args.tenant, "client_id": client_id, "client_secret": client_secret,
                      "accounts": len(accounts), "out": args.out,
                      "seconds": round(time.monotonic() - started, 2)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["seed"]:
        return _seed_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issuer", required=True, help="e.g. http://127.0.0.1:8000/t/bench")
    parser.add_argument("--client-id", help="default: the accounts file's client_id")
    parser.add_argument("--client-secret", help="default: the accounts file's client_secret")
    parser.add_argument("--redirect-uri", help="default: the accounts file's redirect_uri")
    parser.add_argument("--accounts", required=True,
                        help='JSON: [{"email", "password", "totp_secret"}, ...] or seed --out')
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=None, help="target flows/s (open loop)")
    parser.add_argument("--steps-file", help="where the TOTP step each account last used is kept "
                        "between runs (default: ACCOUNTS.steps.json; 'none' to keep nothing)")
    args = parser.parse_args(argv)
    accounts, extra = load_accounts(args.accounts)
    steps_file = None if args.steps_file == "none" else Path(args.steps_file or f"{args.accounts}.steps.json")
    if steps_file and steps_file.exists():
        LAST_STEP.update(json.loads(steps_file.read_text()))
    client_id = args.client_id or extra.get("client_id")
    client_secret = args.client_secret or extra.get("client_secret")
    redirect_uri = args.redirect_uri or extra.get("redirect_uri")
    if not (client_id and client_secret and redirect_uri):
        parser.error("--client-id, --client-secret and --redirect-uri (or an accounts file with them)")
    result = run(args.issuer, client_id, client_secret, redirect_uri, accounts,
                 duration=args.duration, concurrency=args.concurrency, rate=args.rate)
    if result.account_wait_s:
        print(f"warning: workers waited {result.account_wait_s} s for an account whose TOTP step "
              f"was free: {len(accounts)} accounts allow {len(accounts) / STEP_SECONDS:.1f} "
              f"flows/s at most (a code is accepted once per {STEP_SECONDS} s)", file=sys.stderr)
    if steps_file:
        recent = int(time.time() // STEP_SECONDS) - 2  # older steps are outside the window
        steps_file.write_text(json.dumps({k: v for k, v in LAST_STEP.items() if v >= recent}))
    print(json.dumps(asdict(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
