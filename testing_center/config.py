"""Configuration: code defaults, then the environment, then a test mapping.

Validated once at start-up so that a production server with a missing secret or a
broken database URL refuses to start instead of failing on the first request.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "production")
MIN_SECRET_KEY_LENGTH = 32


class ConfigError(RuntimeError):
    """The configuration cannot run the application safely."""


DEFAULTS: dict[str, Any] = {
    "ENV_NAME": "development",
    # hide_parameters: a failing statement is logged without its values (answers, names).
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True, "hide_parameters": True},
    "API_TOKEN_TTL_SECONDS": 12 * 3600,
    "ARGON2_TIME_COST": 3,
    "ARGON2_MEMORY_COST_KIB": 64 * 1024,
    "ARGON2_PARALLELISM": 2,
    "BABEL_DEFAULT_LOCALE": "en",
    "LANGUAGES": ("en", "ja", "uz", "ru"),
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    # production answers tell browsers to use HTTPS only for this long (0: no header)
    "HSTS_SECONDS": 365 * 24 * 3600,
    # reverse proxies (load balancer, nginx) in front of the app that append the client's
    # address to X-Forwarded-For; 0: the header is ignored, since any client can write it
    "TRUSTED_PROXIES": 0,
    "WTF_CSRF_ENABLED": True,
    "WTF_CSRF_TIME_LIMIT": None,
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    # flask-smorest: the OpenAPI document lives beside the API it describes.
    "API_TITLE": "Testing Center API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    # e-mail: "file" writes .eml files into MAIL_FOLDER (default instance/mail/), the
    # debugging sink of development and tests; "smtp" sends through MAIL_SERVER.
    "MAIL_BACKEND": "file",
    "MAIL_FOLDER": None,
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_SENDER": "Testing Center <noreply@testing-center.invalid>",
    # proctored sittings: how early check-in opens; when reminders go out
    "CHECK_IN_OPENS_MINUTES": 120,
    # certificates: the address printed in QR codes and links; signing keys as PEM text
    # (else generated into instance/certificate-keys); verification lookups per client
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "CERTIFICATE_KEYS_PEM": None,
    "VERIFY_RATE_LIMIT": 30,
    "VERIFY_RATE_WINDOW_SECONDS": 60,
    # sign-in: failures counted per account and per client address within the window
    "LOGIN_FAILURES_PER_ACCOUNT": 5,
    "LOGIN_FAILURES_PER_CLIENT": 30,
    "LOGIN_WINDOW_SECONDS": 15 * 60,
    # test centres' public addresses (CIDRs, comma-separated in the environment): a hall
    # of candidates behind one NAT address gets this per-client allowance instead
    "TRUSTED_CENTRE_NETWORKS": (),
    "CENTRE_LOGIN_FAILURES_PER_CLIENT": 1000,
    # irreversible staff actions need the password given this recently
    "REAUTH_SECONDS": 15 * 60,
    "REMINDER_HOURS_BEFORE": 48,
    # personal data: days after which the scheduler erases practice answers, photos that
    # are on no certificate, and the certificate verification log (at least 1 each)
    "RETENTION_PRACTICE_DAYS": 365,
    "RETENTION_PHOTOS_DAYS": 180,
    "RETENTION_VERIFICATION_LOG_DAYS": 365,
    # fraud report: photo hashes this many bits apart count as one photo; answer
    # similarity and pass rates flagged below this p-value; sessions (and centres) of
    # fewer finished attempts are not tested for their pass rate
    "FRAUD_PHOTO_MAX_DISTANCE": 6,
    "FRAUD_ALPHA": 0.001,
    "FRAUD_MIN_ATTEMPTS": 10,
    # production workers: allocations between young-generation garbage collections
    # (Python's default is 700; benchmarks/README.md, "Garbage collection")
    "GC_YOUNG_THRESHOLD": 10_000,
    # a read replica of the database for certificate verification (None: the primary)
    "DATABASE_REPLICA_URL": None,
}
REPLICA_BIND = "replica"

ENVIRONMENT_VARIABLES = {
    # variable -> (config key, converter)
    "TESTING_CENTER_ENV": ("ENV_NAME", str),
    "SECRET_KEY": ("SECRET_KEY", str),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
    "DATABASE_REPLICA_URL": ("DATABASE_REPLICA_URL", str),
    "API_TOKEN_TTL_SECONDS": ("API_TOKEN_TTL_SECONDS", int),
    "MAIL_BACKEND": ("MAIL_BACKEND", str),
    "MAIL_FOLDER": ("MAIL_FOLDER", str),
    "MAIL_SERVER": ("MAIL_SERVER", str),
    "MAIL_PORT": ("MAIL_PORT", int),
    "MAIL_USE_TLS": ("MAIL_USE_TLS", lambda value: value.lower() in ("1", "true", "yes")),
    "MAIL_USERNAME": ("MAIL_USERNAME", str),
    "MAIL_PASSWORD": ("MAIL_PASSWORD", str),
    "MAIL_SENDER": ("MAIL_SENDER", str),
    "REMINDER_HOURS_BEFORE": ("REMINDER_HOURS_BEFORE", int),
    "CHECK_IN_OPENS_MINUTES": ("CHECK_IN_OPENS_MINUTES", int),
    "PUBLIC_BASE_URL": ("PUBLIC_BASE_URL", str),
    "CERTIFICATE_KEYS_PEM": ("CERTIFICATE_KEYS_PEM", str),
    "VERIFY_RATE_LIMIT": ("VERIFY_RATE_LIMIT", int),
    "VERIFY_RATE_WINDOW_SECONDS": ("VERIFY_RATE_WINDOW_SECONDS", int),
    "LOGIN_FAILURES_PER_ACCOUNT": ("LOGIN_FAILURES_PER_ACCOUNT", int),
    "LOGIN_FAILURES_PER_CLIENT": ("LOGIN_FAILURES_PER_CLIENT", int),
    "LOGIN_WINDOW_SECONDS": ("LOGIN_WINDOW_SECONDS", int),
    "TRUSTED_CENTRE_NETWORKS": ("TRUSTED_CENTRE_NETWORKS", str),
    "CENTRE_LOGIN_FAILURES_PER_CLIENT": ("CENTRE_LOGIN_FAILURES_PER_CLIENT", int),
    "REAUTH_SECONDS": ("REAUTH_SECONDS", int),
    "HSTS_SECONDS": ("HSTS_SECONDS", int),
    "TRUSTED_PROXIES": ("TRUSTED_PROXIES", int),
    "FRAUD_PHOTO_MAX_DISTANCE": ("FRAUD_PHOTO_MAX_DISTANCE", int),
    "FRAUD_ALPHA": ("FRAUD_ALPHA", float),
    "FRAUD_MIN_ATTEMPTS": ("FRAUD_MIN_ATTEMPTS", int),
    "RETENTION_PRACTICE_DAYS": ("RETENTION_PRACTICE_DAYS", int),
    "RETENTION_PHOTOS_DAYS": ("RETENTION_PHOTOS_DAYS", int),
    "RETENTION_VERIFICATION_LOG_DAYS": ("RETENTION_VERIFICATION_LOG_DAYS", int),
    "GC_YOUNG_THRESHOLD": ("GC_YOUNG_THRESHOLD", int),
}
# setting -> (least, greatest or None) for whole numbers, checked after merging, so a
# value the code would misuse (a zero window divides by zero) stops start-up by name
WHOLE_NUMBER_RANGES: dict[str, tuple[int, int | None]] = {
    "RETENTION_PRACTICE_DAYS": (1, None),
    "RETENTION_PHOTOS_DAYS": (1, None),
    "RETENTION_VERIFICATION_LOG_DAYS": (1, None),
    "VERIFY_RATE_LIMIT": (1, None),
    "VERIFY_RATE_WINDOW_SECONDS": (1, None),
    "LOGIN_FAILURES_PER_ACCOUNT": (1, None),
    "LOGIN_FAILURES_PER_CLIENT": (1, None),
    "CENTRE_LOGIN_FAILURES_PER_CLIENT": (1, None),
    # the lockout message counts whole minutes
    "LOGIN_WINDOW_SECONDS": (60, None),
    "REAUTH_SECONDS": (1, None),
    "HSTS_SECONDS": (0, None),
    "TRUSTED_PROXIES": (0, None),
    # photo hashes have 64 bits
    "FRAUD_PHOTO_MAX_DISTANCE": (0, 64),
    "FRAUD_MIN_ATTEMPTS": (1, None),
    "GC_YOUNG_THRESHOLD": (100, None),
}


def database_uri(url: str) -> str:
    """Return ``url`` with the psycopg 3 driver named for plain PostgreSQL URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the settings given by environment variables, converted."""
    settings = {}
    for variable, (key, convert) in ENVIRONMENT_VARIABLES.items():
        if environ.get(variable):
            try:
                settings[key] = convert(environ[variable])
            except ValueError as error:
                raise ConfigError(f"{variable} is not valid: {error}") from error
    return settings


def check_ranges(config: Mapping[str, Any]) -> None:
    """Refuse numbers outside the range the code can use, naming the setting."""
    for name, (least, greatest) in WHOLE_NUMBER_RANGES.items():
        value = config[name]
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < least
            or (greatest is not None and value > greatest)
        ):
            most = f" and at most {greatest}" if greatest is not None else ""
            raise ConfigError(f"{name} must be a whole number, at least {least}{most}")
    alpha = config["FRAUD_ALPHA"]
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0 < alpha < 1:
        raise ConfigError("FRAUD_ALPHA must be a number between 0 and 1 (exclusive)")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(value: str | Iterable[str | Network]) -> tuple[Network, ...]:
    """Parse ``TRUSTED_CENTRE_NETWORKS``: CIDRs (``203.0.113.0/24``, a single address)
    comma-separated, or a sequence; host bits set are refused as a likely typo."""
    items = value.split(",") if isinstance(value, str) else value
    parsed = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        try:
            parsed.append(ipaddress.ip_network(text))
        except ValueError as error:
            raise ConfigError(f"TRUSTED_CENTRE_NETWORKS is not valid: {error}") from error
    return tuple(parsed)


def development_secret_key(instance_path: Path) -> str:
    """Return a random key kept in the instance folder, so sessions survive a restart."""
    path = instance_path / "secret_key"
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


def build_config(
    instance_path: Path, environ: Mapping[str, str], test_config: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Merge defaults, environment and test settings, fill derived values and validate."""
    config = {**DEFAULTS, **from_environment(environ), **(test_config or {})}
    if config["ENV_NAME"] not in ENVIRONMENTS:
        raise ConfigError(f"TESTING_CENTER_ENV must be one of {ENVIRONMENTS}")
    check_ranges(config)
    config["TRUSTED_CENTRE_NETWORKS"] = networks(config["TRUSTED_CENTRE_NETWORKS"])
    production = config["ENV_NAME"] == "production"
    if production:
        key = config.get("SECRET_KEY") or ""
        if len(key) < MIN_SECRET_KEY_LENGTH:
            raise ConfigError(
                f"production needs SECRET_KEY of at least {MIN_SECRET_KEY_LENGTH} random characters"
            )
        if not config.get("SQLALCHEMY_DATABASE_URI"):
            raise ConfigError("production needs DATABASE_URL")
        config.setdefault("SESSION_COOKIE_SECURE", True)
    elif not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = development_secret_key(instance_path)
    default_uri = f"sqlite:///{instance_path / 'testing_center.sqlite3'}"
    uri = config.get("SQLALCHEMY_DATABASE_URI") or default_uri
    config["SQLALCHEMY_DATABASE_URI"] = database_uri(uri)
    if config["DATABASE_REPLICA_URL"]:
        binds = dict(config.get("SQLALCHEMY_BINDS") or {})
        binds[REPLICA_BIND] = database_uri(config["DATABASE_REPLICA_URL"])
        config["SQLALCHEMY_BINDS"] = binds
    return config


def instance_path_from(environ: Mapping[str, str]) -> str | None:
    """Return the instance folder named by TESTING_CENTER_INSTANCE, if any."""
    value = environ.get("TESTING_CENTER_INSTANCE")
    return os.path.abspath(value) if value else None
