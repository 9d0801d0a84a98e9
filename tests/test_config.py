"""Configuration: defaults, then environment, then test mapping; refusal of unsafe production."""

from __future__ import annotations

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
