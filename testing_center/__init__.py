"""The Flask application of the testing engine.

``create_app`` is made of small named steps. Migrations and the scheduler are CLI
commands and never run here. Production servers use ``gunicorn 'testing_center:create_app()'``.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from flask import Flask, Response, current_app
from flask_babel import get_locale
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from testing_center import clock, errors
from testing_center.config import build_config, instance_path_from
from testing_center.extensions import babel, csrf, db, login_manager, migrate
from testing_center.privacy import logs


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application: configuration, extensions, errors, API, pages, CLI."""
    app = Flask(__name__, instance_path=instance_path_from(os.environ))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(build_config(Path(app.instance_path), os.environ, test_config))
    init_proxies(app)
    init_database(app)
    init_accounts(app)
    init_interface(app)
    clock.init_app(app, app.config.get("CLOCK", clock.system_clock))
    errors.init_app(app)
    logs.init_app(app)
    init_routes(app)
    init_cli(app)
    tune_garbage_collector(app)
    return app


def tune_garbage_collector(app: Flask) -> None:
    """In a production worker, stop the garbage collector walking what lives for good.

    Everything built so far (modules, the app, its routes) stays for the worker's life;
    ``gc.freeze`` moves it out of the collector's reach, and a larger young generation
    makes collections rarer. A start paid about 5 ms of its 36 in collections, each full
    one walking some 230,000 objects (benchmarks/README.md, "Garbage collection").
    Tests and development keep Python's defaults.
    """
    if app.config["ENV_NAME"] != "production" or app.testing:
        return
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(app.config["GC_YOUNG_THRESHOLD"], middle, old)
    gc.collect()
    gc.freeze()


def init_proxies(app: Flask) -> None:
    """Behind ``TRUSTED_PROXIES`` reverse proxies, take the client's address and scheme
    from the X-Forwarded-For/-Proto hops they appended (the rightmost ones). Without
    proxies the headers are ignored: any client can write them, and the sign-in and
    lookup limits per client must not be escaped by writing a new address each time."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def init_database(app: Flask) -> None:
    """Bind SQLAlchemy and Alembic; on SQLite, enforce foreign keys and allow concurrent readers."""
    from testing_center import models  # noqa: F401 - registers every table on the metadata

    db.init_app(app)
    migrate.init_app(app, db)
    with app.app_context():
        for engine in db.engines.values():  # the primary and a verification replica
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", configure_sqlite_connection)


def configure_sqlite_connection(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def init_accounts(app: Flask) -> None:
    """Sessions for pages (Flask-Login), CSRF for forms, the password hasher."""
    from testing_center.accounts.services import load_session_user

    login_manager.init_app(app)
    login_manager.login_view = "account.login"
    login_manager.user_loader(lambda session_id: load_session_user(db.session, session_id))
    csrf.init_app(app)
    hasher = PasswordHasher(
        time_cost=app.config["ARGON2_TIME_COST"],
        memory_cost=app.config["ARGON2_MEMORY_COST_KIB"],
        parallelism=app.config["ARGON2_PARALLELISM"],
    )
    app.extensions["password_hasher"] = hasher
    # Verified against when an e-mail address is unknown, so timing reveals nothing.
    app.extensions["dummy_password_hash"] = hasher.hash(os.urandom(16).hex())


def init_interface(app: Flask) -> None:
    """Languages and template helpers."""
    from testing_center.i18n import select_locale

    babel.init_app(
        app,
        locale_selector=select_locale,
        default_translation_directories=str(Path(__file__).parent / "translations"),
    )
    app.jinja_env.policies["json.dumps_kwargs"] = {"ensure_ascii": False, "sort_keys": True}
    app.json.ensure_ascii = False  # Japanese stays readable and shorter on the wire
    app.jinja_env.globals["current_locale"] = lambda: str(get_locale())
    app.after_request(set_security_headers)


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def set_security_headers(response: Response) -> Response:
    """Pages run only our own scripts and cannot be framed (item HTML is data, not code).

    In production browsers are also told to come back over HTTPS only (HSTS), so a
    candidate on a hostile network cannot be downgraded to plain HTTP and have their
    session cookie read; development serves plain HTTP and must not pin it.
    """
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    config = current_app.config
    if config["ENV_NAME"] == "production" and config["HSTS_SECONDS"]:
        response.headers.setdefault(
            "Strict-Transport-Security", f"max-age={config['HSTS_SECONDS']}; includeSubDomains"
        )
    return response


class RowIdConverter(IntegerConverter):
    """``<int:...>`` in paths holds a row id: at most the largest database INTEGER, so a
    longer number is a plain 404 rather than an overflow inside the database (a 500)."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


MAX_ROW_ID = 2**31 - 1


def init_routes(app: Flask) -> None:
    from testing_center import api, web

    app.url_map.converters["int"] = RowIdConverter
    api.init_app(app)
    web.init_app(app)


def init_cli(app: Flask) -> None:
    from testing_center.cli import register_commands

    register_commands(app)
