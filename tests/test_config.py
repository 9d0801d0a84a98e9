"""Configuration: defaults, then environment, then test mapping; refusal of unsafe production."""

from __future__ import annotations

import gc

import pytest

from testing_center import create_app
from testing_center.config import ConfigError, build_config, database_uri

STRONG_KEY = "k" * 40


def test_environment_overrides_defaults_and_test_mapping_overrides_environment(tmp_path):
    """A test mapping wins over the environment, which wins over code defaults."""
    environ = {"API_TOKEN_TTL_SECONDS": "60", "DATABASE_URL": "sqlite:///env.db"}
    config = build_config(tmp_path, environ, {"API_TOKEN_TTL_SECONDS": 5})
    assert config["API_TOKEN_TTL_SECONDS"] == 5
    assert config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///env.db"
    assert build_config(tmp_path, environ, None)["API_TOKEN_TTL_SECONDS"] == 60


def test_default_database_is_sqlite_in_instance_folder(tmp_path):
    """Without DATABASE_URL the embedded SQLite file under the instance folder is used."""
    config = build_config(tmp_path, {}, None)
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'testing_center.sqlite3'}"


def test_development_secret_key_is_generated_and_kept(tmp_path):
    """Development without SECRET_KEY gets a random key that survives a restart."""
    first = build_config(tmp_path, {}, None)["SECRET_KEY"]
    assert len(first) >= 32
    assert build_config(tmp_path, {}, None)["SECRET_KEY"] == first


@pytest.mark.parametrize("key", [None, "short"])
def test_production_refuses_missing_or_weak_secret(tmp_path, key):
    """Production mode refuses to start without a real secret key."""
    environ = {"TESTING_CENTER_ENV": "production", "DATABASE_URL": "postgresql://db/x"}
    if key:
        environ["SECRET_KEY"] = key
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config(tmp_path, environ, None)


def test_production_requires_database_url(tmp_path):
    """Production mode refuses the embedded SQLite default."""
    environ = {"TESTING_CENTER_ENV": "production", "SECRET_KEY": STRONG_KEY}
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        build_config(tmp_path, environ, None)


def test_production_config_is_hardened(tmp_path):
    """Production sets secure cookies."""
    environ = {
        "TESTING_CENTER_ENV": "production",
        "SECRET_KEY": STRONG_KEY,
        "DATABASE_URL": "postgres://u@h/db",
    }
    config = build_config(tmp_path, environ, None)
    assert config["SESSION_COOKIE_SECURE"] is True
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_bad_values_are_refused(tmp_path):
    """A malformed number or an unknown environment name stops start-up with a clear error."""
    with pytest.raises(ConfigError, match="API_TOKEN_TTL_SECONDS"):
        build_config(tmp_path, {"API_TOKEN_TTL_SECONDS": "soon"}, None)
    with pytest.raises(ConfigError, match="TESTING_CENTER_ENV"):
        build_config(tmp_path, {"TESTING_CENTER_ENV": "staging"}, None)


def test_create_app_refuses_unsafe_production(monkeypatch):
    """create_app itself fails fast in production without a secret."""
    monkeypatch.setenv("TESTING_CENTER_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError):
        create_app()


@pytest.fixture
def garbage_collector():
    """Python's collector settings, put back after the test."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.parametrize("environment", ["production", "development"])
def test_only_a_production_worker_tunes_the_garbage_collector(
    monkeypatch, tmp_path, garbage_collector, environment
):
    """A production app (as gunicorn builds it) freezes what it built and collects the
    young generation every GC_YOUNG_THRESHOLD allocations; development keeps Python's
    defaults."""
    monkeypatch.setenv("TESTING_CENTER_INSTANCE", str(tmp_path))
    monkeypatch.setenv("TESTING_CENTER_ENV", environment)
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite3'}")
    monkeypatch.setenv("GC_YOUNG_THRESHOLD", "12345")
    before = gc.get_threshold()
    gc.unfreeze()
    create_app()
    if environment == "production":
        assert gc.get_threshold() == (12345, *before[1:])
        assert gc.get_freeze_count() > 1000
    else:
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/d", "postgresql+psycopg://u@h:5432/d"),
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_uri_names_psycopg(given, expected):
    """Plain PostgreSQL URLs are given the psycopg 3 driver."""
    assert database_uri(given) == expected


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [
        ("FRAUD_PHOTO_MAX_DISTANCE", "8", "FRAUD_PHOTO_MAX_DISTANCE", 8),
        ("FRAUD_ALPHA", "0.0005", "FRAUD_ALPHA", 0.0005),
        ("FRAUD_MIN_ATTEMPTS", "25", "FRAUD_MIN_ATTEMPTS", 25),
        ("LOGIN_FAILURES_PER_ACCOUNT", "3", "LOGIN_FAILURES_PER_ACCOUNT", 3),
        ("LOGIN_FAILURES_PER_CLIENT", "60", "LOGIN_FAILURES_PER_CLIENT", 60),
        ("LOGIN_WINDOW_SECONDS", "600", "LOGIN_WINDOW_SECONDS", 600),
        ("REAUTH_SECONDS", "300", "REAUTH_SECONDS", 300),
        ("VERIFY_RATE_WINDOW_SECONDS", "120", "VERIFY_RATE_WINDOW_SECONDS", 120),
        ("CENTRE_LOGIN_FAILURES_PER_CLIENT", "500", "CENTRE_LOGIN_FAILURES_PER_CLIENT", 500),
        ("HSTS_SECONDS", "0", "HSTS_SECONDS", 0),
        ("TRUSTED_PROXIES", "1", "TRUSTED_PROXIES", 1),
    ],
)
def test_security_and_fraud_settings_come_from_the_environment(
    tmp_path, variable, value, key, expected
):
    """Fraud thresholds, sign-in limits, re-authentication, HSTS and proxies are set by
    environment variables of the same name."""
    assert build_config(tmp_path, {variable: value}, None)[key] == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FRAUD_PHOTO_MAX_DISTANCE", "65"),
        ("FRAUD_PHOTO_MAX_DISTANCE", "-1"),
        ("FRAUD_ALPHA", "0"),
        ("FRAUD_ALPHA", "1.5"),
        ("FRAUD_ALPHA", "often"),
        ("FRAUD_MIN_ATTEMPTS", "0"),
        ("LOGIN_FAILURES_PER_ACCOUNT", "0"),
        ("LOGIN_FAILURES_PER_CLIENT", "many"),
        ("LOGIN_WINDOW_SECONDS", "30"),
        ("REAUTH_SECONDS", "0"),
        ("VERIFY_RATE_WINDOW_SECONDS", "0"),
        ("CENTRE_LOGIN_FAILURES_PER_CLIENT", "0"),
        ("HSTS_SECONDS", "-1"),
        ("TRUSTED_PROXIES", "1.5"),
        ("TRUSTED_CENTRE_NETWORKS", "203.0.113.0/24, 10.0.0.300/8"),
        ("TRUSTED_CENTRE_NETWORKS", "203.0.113.7/24"),
        ("GC_YOUNG_THRESHOLD", "10"),
    ],
)
def test_bad_security_and_fraud_settings_stop_start_up(tmp_path, variable, value):
    """A value the code would misuse (a zero window, an alpha of 1, a malformed network)
    refuses to start with an error that names the variable."""
    with pytest.raises(ConfigError, match=variable):
        build_config(tmp_path, {variable: value}, None)


def test_a_bad_value_in_the_test_mapping_is_refused_too(tmp_path):
    """The ranges are checked after merging, whatever gave the value."""
    with pytest.raises(ConfigError, match="FRAUD_ALPHA"):
        build_config(tmp_path, {}, {"FRAUD_ALPHA": 2})
    with pytest.raises(ConfigError, match="LOGIN_FAILURES_PER_CLIENT"):
        build_config(tmp_path, {}, {"LOGIN_FAILURES_PER_CLIENT": True})


def test_trusted_centre_networks_are_parsed(tmp_path):
    """Comma-separated CIDRs and single addresses, IPv4 and IPv6, become networks."""
    config = build_config(
        tmp_path, {"TRUSTED_CENTRE_NETWORKS": "203.0.113.0/24, 198.51.100.7,2001:db8::/32,"}, None
    )
    assert [str(network) for network in config["TRUSTED_CENTRE_NETWORKS"]] == [
        "203.0.113.0/24",
        "198.51.100.7/32",
        "2001:db8::/32",
    ]
    assert build_config(tmp_path, {}, None)["TRUSTED_CENTRE_NETWORKS"] == ()


def test_a_replica_url_becomes_the_replica_bind(tmp_path):
    """Verification reads go to ``DATABASE_REPLICA_URL``; without it there is no bind."""
    assert "SQLALCHEMY_BINDS" not in build_config(tmp_path, {}, None)
    config = build_config(
        tmp_path, {"DATABASE_REPLICA_URL": "postgresql://reader@replica.internal/tc"}, None
    )
    assert config["SQLALCHEMY_BINDS"] == {
        "replica": "postgresql+psycopg://reader@replica.internal/tc"
    }
