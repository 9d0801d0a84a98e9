"""Shared fixtures: an application on a migrated database, a movable clock, factories.

The suite runs on SQLite by default and on PostgreSQL when ``TEST_DATABASE_URL`` names
a server (``.ci/run`` runs it both ways). Each run migrates one fresh database once;
each test then starts from empty tables.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade

from item_bank.db import Base
from testing_center import create_app
from testing_center.accounts.models import Role
from testing_center.accounts.services import CandidateDetails, create_user, register_candidate
from testing_center.config import database_uri
from testing_center.extensions import MIGRATIONS_DIR, db
from testing_center.seed import seed_content

START = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
PASSWORD = "correct-horse-battery"


class FakeClock:
    """A server clock that tests move by hand: no sleeping."""

    def __init__(self, start: dt.datetime = START) -> None:
        self.current = start

    def __call__(self) -> dt.datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += dt.timedelta(**delta)


def _create_postgres_database(server_url: str) -> tuple[str, sa.Engine]:
    """Create an empty database for this run on the server ``server_url`` points at."""
    name = f"tc_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(database_uri(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return sa.engine.make_url(database_uri(server_url)).set(database=name).render_as_string(
        hide_password=False
    ), admin


@pytest.fixture(scope="session", autouse=True)
def instance_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every app of the run out of the source tree's instance folder."""
    path = tmp_path_factory.mktemp("instance")
    os.environ["TESTING_CENTER_INSTANCE"] = str(path)
    yield path
    del os.environ["TESTING_CENTER_INSTANCE"]


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database for the whole run (SQLite file or PostgreSQL)."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    admin = None
    if server_url:
        url, admin = _create_postgres_database(server_url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    app = create_app(settings_for(url))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        db.engine.dispose()
    yield url
    if admin is not None:
        name = sa.engine.make_url(url).database
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def settings_for(url: str, **overrides: Any) -> dict[str, Any]:
    """The configuration every test app gets: cheap hashing, CSRF off unless a test wants it."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "SQLALCHEMY_DATABASE_URI": url,
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_COST_KIB": 64,
        "ARGON2_PARALLELISM": 1,
        "WTF_CSRF_ENABLED": False,
        **overrides,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app_config() -> dict[str, Any]:
    """Per-test overrides of the configuration; a test may change it before using ``app``."""
    return {}


@pytest.fixture
def app(database_url: str, clock: FakeClock, app_config: dict[str, Any]) -> Iterator[Flask]:
    """The application. No context stays pushed, so each request gets its own ``g``,
    as in production; tests that touch the database open ``app.app_context()``."""
    application = create_app(settings_for(database_url, CLOCK=clock, **app_config))
    yield application
    with application.app_context():
        with db.engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


SEEDED_SAMPLES = ("jft_basic_practice", "jft_basic_listening", "item_types_tour")


@pytest.fixture
def seeded(app: Flask, clock: FakeClock) -> None:
    """The shipped templates with the samples that the practice test and the tour use.

    The whole sample bank (hundreds of items, dozens of recordings) is loaded by the
    tests of ``seed`` itself; most tests need only these two files.
    """
    with app.app_context():
        seed_content(db.session, clock(), samples=SEEDED_SAMPLES)
        db.session.commit()


@dataclass(frozen=True)
class Account:
    """What tests need of a user, usable outside any application context."""

    id: int
    email: str
    role: str


_numbers = count(1)


@pytest.fixture
def make_candidate(app: Flask, clock: FakeClock):
    """Factory: a registered candidate; keyword arguments override the details."""

    def make(**overrides: Any) -> Account:
        number = next(_numbers)
        details = {
            "email": f"candidate{number}@example.test",
            "password": PASSWORD,
            "full_name": f"Candidate Number {number}",
            "date_of_birth": dt.date(1999, 1, 1),
            "nationality": "UZ",
            "id_document_number": f"AA{number:07d}",
            **overrides,
        }
        with app.app_context():
            user = register_candidate(db.session, CandidateDetails(**details), clock())
            db.session.commit()
            return Account(user.id, user.email, user.role)

    return make


@pytest.fixture
def make_staff(app: Flask, clock: FakeClock):
    """Factory: a staff account with the given role."""

    def make(role: Role, **overrides: Any) -> Account:
        email = overrides.pop("email", f"{role.value}{next(_numbers)}@example.test")
        with app.app_context():
            user = create_user(db.session, email=email, password=PASSWORD, role=role, now=clock())
            db.session.commit()
            return Account(user.id, user.email, user.role)

    return make


@pytest.fixture
def auth_headers(client: FlaskClient):
    """Factory: bearer headers for a user, from the token endpoint."""

    def headers(user: Account) -> dict[str, str]:
        response = client.post(
            "/api/v1/auth/token", json={"email": user.email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.json
        return {"Authorization": f"Bearer {response.json['token']}"}

    return headers


# the proctored-exam world shared by the operations and certificates tests
from .operations_setup import world  # noqa: E402, F401
