"""Settings from the environment (``IDP_*``), with the embedded defaults of DESIGN.md.

Unset means embedded: SQLite under ``instance/``, the in-process Redis-compatible store,
the outbox for mail and SMS. ``warnings()`` names the settings that are unsafe in production.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from idp.files import private_folder, readable_by_others

ROOT = Path(__file__).resolve().parent.parent
REDIS_PREFIX = re.compile(r"[A-Za-z0-9._:-]{0,64}")
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}
DEFAULT_SECRET = "idp-embedded-default-secret-change-me"


def _embedded_secret(create: bool = True) -> str | None:
    """A random secret kept in instance/secret_key (0600), made on first use."""
    path = ROOT / "instance" / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        if not create:
            return None
    private_folder(path.parent)
    # Written whole under another name, then linked into place: a worker starting at the same
    # moment finds either no file or the whole secret, never an empty one. The first link wins.
    scratch = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(scratch, path)
        except FileExistsError:  # another process made it first: theirs is the secret
            pass
    finally:
        scratch.unlink(missing_ok=True)
    return path.read_text().strip()


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or one in memory)."""
    if not url.startswith("sqlite"):
        return None
    path = url.split("///", 1)[-1].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def database_identity(url: str) -> str:
    """Which database ``url`` names, whatever the spelling: no password, user, driver or
    options, the default port filled in, a SQLite file by its absolute path."""
    from sqlalchemy.engine import make_url

    parts = make_url(url)
    backend = parts.get_backend_name()
    if backend == "sqlite":
        path = sqlite_path(url)
        return f"sqlite:{path.resolve() if path else ':memory:'}"
    host = (parts.host or str(parts.query.get("host", ""))).lower()
    port = parts.port or DEFAULT_PORTS.get(backend, "")
    return f"{backend}://{host}:{port}/{parts.database or ''}"


def _service_url(url: str) -> bool:
    """An https URL with a host and nothing after its path (plain http only on loopback, for a
    test's own server): passwords' hash prefixes are sent there."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        return False
    return parts.scheme == "https" or (parts.scheme == "http"
                                       and host in ("localhost", "127.0.0.1", "::1"))


@dataclass(frozen=True)
class Settings:
    base_url: str = "http://127.0.0.1:5000"
    database_url: str = f"sqlite:///{ROOT / 'instance' / 'idp.sqlite3'}"
    redis_url: str | None = None
    # What every Redis key of this installation starts with (idp.store), so installations that
    # share a Redis database never read each other's keys. None: derived from the database
    # (``redis_namespace``); "": no prefix, the key names of versions before it existed.
    redis_prefix: str | None = None
    secret_key: str = DEFAULT_SECRET
    keys_dir: Path = ROOT / "keys"
    smtp_url: str | None = None
    mail_from: str = "idp@localhost"
    # Whether each server process runs a background sender of the outbox (with SMTP); "off"
    # when only ``idp mail send`` from a timer should send.
    mail_sender: bool = True
    sms_url: str | None = None
    # Whether back-channel logout and webhook requests may go to private addresses (loopback,
    # RFC 1918, link-local: ``idp.outbound``). None: only when IDP_BASE_URL is on loopback
    # itself (a developer's or a test's installation, with its portals beside it).
    private_callbacks: bool | None = None
    captcha: str = "altcha"
    # How many reverse proxies in front of us set X-Forwarded-For (werkzeug ProxyFix); with 0,
    # a forged header changes no client address and no count.
    trusted_proxies: int = 0
    # Wrong passwords one client address may send in 10 minutes, across accounts and tenants.
    ip_failures_per_10_minutes: int = 30
    # Upstream sign-ins one client address may start in 10 minutes: each keeps its PKCE
    # verifier and nonce in Redis until the upstream answers, so anonymous presses are bounded.
    upstream_starts_per_10_minutes: int = 60
    # Lifetimes, in seconds.
    access_token_ttl: int = 3600
    id_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 24 * 3600
    code_ttl: int = 60
    sso_session_ttl: int = 12 * 3600
    login_transaction_ttl: int = 15 * 60
    # argon2id at OWASP's minimum (m=19 MiB, t=2, p=1): DESIGN.md's performance budget.
    argon2_memory_kib: int = 19 * 1024
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    # Logs (idp.logs): JSON lines, or text for people; an access line per request.
    log_format: str = "json"
    access_log: bool = True
    # The bearer token /metrics asks for (idp.metrics); unset: no /metrics at all.
    metrics_token: str | None = None
    # Pwned Passwords' range API, asked about each new password (idp.pwned_passwords); unset:
    # only the list that ships with idp is asked.
    pwned_passwords_url: str | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.redis_prefix is not None and not REDIS_PREFIX.fullmatch(self.redis_prefix):
            raise ValueError("IDP_REDIS_PREFIX is at most 64 letters, digits and . _ : -")
        if self.pwned_passwords_url is not None and not _service_url(self.pwned_passwords_url):
            raise ValueError("IDP_PWNED_PASSWORDS_URL is an https URL such as "
                             "https://api.pwnedpasswords.com (http only on loopback)")

    @property
    def redis_namespace(self) -> str:
        """The prefix in force: an explicit one, else one derived from the database, so two
        installations on different databases never share keys and every worker of one agrees."""
        if self.redis_prefix is not None:
            return self.redis_prefix
        digest = hashlib.sha256(database_identity(self.database_url).encode()).hexdigest()
        return f"idp-{digest[:12]}"

    @property
    def calls_private_addresses(self) -> bool:
        """May requests to addresses an administrator typed reach a private address?"""
        if self.private_callbacks is not None:
            return self.private_callbacks
        host = urlsplit(self.base_url).hostname or ""
        return host == "localhost" or (host.replace(".", "").isdigit()
                                       and host.startswith("127.")) or host == "::1"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        env = os.environ if environ is None else environ
        values: dict = {}
        mapping = {
            "IDP_BASE_URL": "base_url",
            "IDP_DATABASE_URL": "database_url",
            "IDP_REDIS_URL": "redis_url",
            "IDP_SECRET_KEY": "secret_key",
            "IDP_SMTP_URL": "smtp_url",
            "IDP_MAIL_FROM": "mail_from",
            "IDP_SMS_URL": "sms_url",
            "IDP_CAPTCHA": "captcha",
            "IDP_METRICS_TOKEN": "metrics_token",
            "IDP_PWNED_PASSWORDS_URL": "pwned_passwords_url",
        }
        for name, attr in mapping.items():
            if env.get(name):
                values[attr] = env[name]
        if "IDP_REDIS_PREFIX" in env:  # set but empty means something: no prefix at all
            values["redis_prefix"] = env["IDP_REDIS_PREFIX"]
        if env.get("IDP_KEYS_DIR"):
            values["keys_dir"] = Path(env["IDP_KEYS_DIR"])
        if "secret_key" not in values and "secret_key" not in overrides:
            values["secret_key"] = _embedded_secret()
        if env.get("IDP_IP_FAILURES_PER_10_MINUTES"):
            values["ip_failures_per_10_minutes"] = int(env["IDP_IP_FAILURES_PER_10_MINUTES"])
        if env.get("IDP_UPSTREAM_STARTS_PER_10_MINUTES"):
            values["upstream_starts_per_10_minutes"] = int(env["IDP_UPSTREAM_STARTS_PER_10_MINUTES"])
        if env.get("IDP_TRUSTED_PROXIES"):
            values["trusted_proxies"] = int(env["IDP_TRUSTED_PROXIES"])
        if env.get("IDP_LOG_FORMAT"):
            if env["IDP_LOG_FORMAT"] not in ("json", "text"):
                raise ValueError("IDP_LOG_FORMAT is json or text")
            values["log_format"] = env["IDP_LOG_FORMAT"]
        if env.get("IDP_MAIL_SENDER"):
            if env["IDP_MAIL_SENDER"] not in ("on", "off"):
                raise ValueError("IDP_MAIL_SENDER is on or off")
            values["mail_sender"] = env["IDP_MAIL_SENDER"] == "on"
        if env.get("IDP_PRIVATE_CALLBACKS"):
            if env["IDP_PRIVATE_CALLBACKS"] not in ("allow", "deny"):
                raise ValueError("IDP_PRIVATE_CALLBACKS is allow or deny")
            values["private_callbacks"] = env["IDP_PRIVATE_CALLBACKS"] == "allow"
        if env.get("IDP_ACCESS_LOG"):
            if env["IDP_ACCESS_LOG"] not in ("on", "off"):
                raise ValueError("IDP_ACCESS_LOG is on or off")
            values["access_log"] = env["IDP_ACCESS_LOG"] == "on"
        for name in ("ARGON2_MEMORY_KIB", "ARGON2_TIME_COST"):
            if env.get(f"IDP_{name}"):
                values[name.lower()] = int(env[f"IDP_{name}"])
        values.update(overrides)
        if "base_url" in values:
            values["base_url"] = values["base_url"].rstrip("/")
        return cls(**values)

    def warnings(self) -> list[str]:
        """What is unsafe about these settings in production (logged at start)."""
        found = []
        if self.secret_key == DEFAULT_SECRET:
            found.append("IDP_SECRET_KEY is the embedded default: set a long random secret.")
        elif self.secret_key == _embedded_secret(create=False):
            found.append(
                "IDP_SECRET_KEY is unset: using the key generated in instance/secret_key; "
                "set the same IDP_SECRET_KEY on every host."
            )
        if self.redis_url is None:
            found.append(
                "IDP_REDIS_URL is unset: the embedded store lives in one process, so "
                "several workers or hosts would not share sign-ins, sessions or lockouts."
            )
        if self.redis_url is not None and self.redis_prefix == "":
            found.append(
                "IDP_REDIS_PREFIX is empty: another installation on the same Redis database "
                "would share this one's sign-ins and lockouts; unset it or name this installation."
            )
        if self.database_url.startswith("sqlite"):
            found.append("IDP_DATABASE_URL is SQLite: use PostgreSQL behind several workers.")
        database_file = sqlite_path(self.database_url)
        if database_file is not None and readable_by_others(database_file):
            # Made before we created it private, or opened up by someone: say so, change nothing.
            found.append(f"The SQLite database {database_file} can be read by other users of "
                         "this machine: make it readable by its owner only.")
        if not self.secure_cookies:
            found.append("IDP_BASE_URL is not https: cookies are sent without Secure.")
        return found
