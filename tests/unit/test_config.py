"""Settings: IDP_* variables, embedded defaults, and the warnings for unsafe production use."""

from pathlib import Path

import pytest

from idp.config import Settings


def test_environment_overrides_the_embedded_defaults():
    s = Settings.from_env({
        "IDP_BASE_URL": "https://login.example.com/", "IDP_DATABASE_URL": "postgresql://db/idp",
        "IDP_REDIS_URL": "redis://cache:6379/0", "IDP_SECRET_KEY": "k" * 40, "IDP_KEYS_DIR": "/etc/idp/keys",
        "IDP_ARGON2_TIME_COST": "3",
    })
    assert s.base_url == "https://login.example.com"  # no trailing slash in issuers
    assert s.database_url == "postgresql://db/idp" and s.redis_url == "redis://cache:6379/0"
    assert s.keys_dir == Path("/etc/idp/keys") and s.argon2_time_cost == 3
    assert s.secure_cookies and s.warnings() == []


def test_embedded_defaults_are_sqlite_and_the_in_process_store_and_say_so():
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///") and s.redis_url is None
    assert not s.secure_cookies
    joined = " ".join(s.warnings())
    assert "IDP_REDIS_URL" in joined and "SQLite" in joined and "IDP_SECRET_KEY" in joined


def test_unset_secret_is_random_and_stable_across_processes():
    first, second = Settings.from_env({}), Settings.from_env({})
    assert first.secret_key == second.secret_key and len(first.secret_key) >= 32


def test_the_redis_prefix_is_derived_from_the_database_so_its_workers_agree(tmp_path, monkeypatch):
    def prefix(url):
        return Settings(database_url=url).redis_namespace

    same = {prefix("postgresql://idp:secret@DB.internal/idp"),
            prefix("postgresql+psycopg://other@db.internal:5432/idp?sslmode=require")}
    assert len(same) == 1 and same.pop().startswith("idp-")  # no password, driver or options
    assert prefix("postgresql://db.internal/idp") != prefix("postgresql://db.internal/idp2")
    assert prefix("postgresql://db.internal/idp") != prefix("postgresql://db2.internal/idp")
    monkeypatch.chdir(tmp_path)
    assert prefix("sqlite:///idp.sqlite3") == prefix(f"sqlite:///{tmp_path / 'idp.sqlite3'}")


def test_an_explicit_redis_prefix_wins_and_an_empty_one_means_none():
    base = {"IDP_DATABASE_URL": "postgresql://db/idp", "IDP_REDIS_URL": "redis://cache:6379/0",
            "IDP_SECRET_KEY": "k" * 40, "IDP_BASE_URL": "https://login.example.com"}
    assert Settings.from_env({**base, "IDP_REDIS_PREFIX": "acme-idp"}).redis_namespace == "acme-idp"
    empty = Settings.from_env({**base, "IDP_REDIS_PREFIX": ""})
    assert empty.redis_namespace == ""
    assert any("IDP_REDIS_PREFIX" in w for w in empty.warnings())
    for wrong in ("acme idp", "x" * 65, "acme*"):
        with pytest.raises(ValueError, match="IDP_REDIS_PREFIX"):
            Settings.from_env({**base, "IDP_REDIS_PREFIX": wrong})


def test_pwned_passwords_is_off_unless_a_service_url_is_set():
    base = {"IDP_SECRET_KEY": "k" * 40}
    assert Settings.from_env(base).pwned_passwords_url is None
    assert Settings.from_env({**base, "IDP_PWNED_PASSWORDS_URL": ""}).pwned_passwords_url is None
    on = Settings.from_env({**base, "IDP_PWNED_PASSWORDS_URL": "https://api.pwnedpasswords.com"})
    assert on.pwned_passwords_url == "https://api.pwnedpasswords.com"
    assert Settings(pwned_passwords_url="http://127.0.0.1:8080").pwned_passwords_url


@pytest.mark.parametrize("url", [
    "http://api.pwnedpasswords.com",  # hash prefixes in clear over the network: no
    "api.pwnedpasswords.com", "ftp://range.test", "https://", "https://user:pw@range.test",
    "https://range.test/?key=1", "https://[::1"])
def test_a_pwned_passwords_url_that_is_not_https_is_refused_at_start(url):
    with pytest.raises(ValueError, match="IDP_PWNED_PASSWORDS_URL"):
        Settings.from_env({"IDP_SECRET_KEY": "k" * 40, "IDP_PWNED_PASSWORDS_URL": url})
