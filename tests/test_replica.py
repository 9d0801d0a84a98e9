"""Verification reads on a replica (``DATABASE_REPLICA_URL``).

The replica is stood in for by a copy of the test database taken at one moment (SQLite's
backup, or ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), then left behind while the
primary moves on, as a lagging replica would be. Its copy of one certificate's holder
name is marked, so an answer shows which database each part of it came from.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from testing_center import create_app
from testing_center.certification import services as certs
from testing_center.certification.models import Certificate, Verification
from testing_center.config import database_uri
from testing_center.extensions import db

from .conftest import settings_for
from .test_certificates import BORN, release, sit  # noqa: F401 - sit is a fixture

OTHER_BORN = dt.date(2000, 1, 2)
MARK = "(as the replica has it)"


def copy_database(url: str) -> str:
    """A copy of the database at ``url`` as it is now; its URL."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = Path(parsed.database).with_name(f"replica-{uuid.uuid4().hex[:8]}.sqlite3")
        with sqlite3.connect(parsed.database) as source, sqlite3.connect(target) as copy:
            source.backup(copy)
        return f"sqlite:///{target}"
    name = f"{parsed.database}_replica_{uuid.uuid4().hex[:8]}"
    on_server(  # a template database must have no other sessions
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name",
        name=parsed.database,
    )
    on_server(url, f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    return parsed.set(database=name).render_as_string(hide_password=False)


def on_server(url: str, statement: str, **parameters: str) -> None:
    """Run ``statement`` outside any transaction on the PostgreSQL server of ``url``,
    connected to its ``postgres`` database, not to the one it is about."""
    parsed = sa.engine.make_url(url).set(database="postgres")
    server = sa.create_engine(
        database_uri(parsed.render_as_string(hide_password=False)), isolation_level="AUTOCOMMIT"
    )
    with server.connect() as connection:
        connection.execute(sa.text(statement), parameters)
    server.dispose()


def drop_database(url: str) -> None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).unlink(missing_ok=True)
        return
    on_server(url, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@pytest.fixture
def replica_of(app: Flask, database_url: str, clock) -> Iterator:
    """Factory: copy the database now and return an app that verifies on the copy."""
    made: list[tuple[Flask, str]] = []

    def make() -> tuple[Flask, sa.Engine]:
        with app.app_context():
            db.engine.dispose()
        replica_url = copy_database(database_url)
        verifier = create_app(
            settings_for(database_url, CLOCK=clock, DATABASE_REPLICA_URL=replica_url)
        )
        made.append((verifier, replica_url))
        with verifier.app_context():
            return verifier, db.engines["replica"]

    yield make
    for verifier, replica_url in made:
        with verifier.app_context():
            for engine in db.engines.values():
                engine.dispose()
        drop_database(replica_url)


def lookup(client, number: str, born: dt.date):
    return client.get(f"/api/v1/certificates/{number}", query_string={"date_of_birth": born})


def test_verification_reads_the_replica_and_the_status_from_the_primary(
    app,
    clock,
    sit,  # noqa: F811 - the fixture of tests/test_certificates.py
    replica_of,
    world,
    auth_headers,
):
    _headers, _attempt, session_id = sit()
    behind, _engine = replica_of()  # copied before the certificate was issued
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(sa.select(Certificate.number))
    issued_since = lookup(behind.test_client(), number, BORN)
    assert issued_since.status_code == 200, issued_since.json  # found on the primary
    assert issued_since.json["status"] == "valid"

    verifier, replica = replica_of()  # copied with the certificate, then marked
    certificates = Certificate.__table__
    count_log = sa.select(sa.func.count()).select_from(Verification)
    with replica.begin() as connection:
        logged_at_copy = connection.scalar(count_log)
        facts = connection.scalar(
            sa.select(certificates.c.facts).where(certificates.c.number == number)
        )
        connection.execute(
            certificates.update()
            .where(certificates.c.number == number)
            .values(facts={**facts, "full_name": f"{facts['full_name']} {MARK}"})
        )
    revoked = app.test_client().post(
        f"/api/v1/certificates/{number}/revoke",
        json={"category": "misconduct", "reason": "impersonation found on video"},
        headers=auth_headers(world["operator"]),
    )
    assert revoked.status_code == 200, revoked.json

    client = verifier.test_client()
    shown = lookup(client, number, BORN)
    assert shown.status_code == 200, shown.json
    assert shown.json["full_name"].endswith(MARK)  # the facts: the replica's
    assert shown.json["status"] == "revoked"  # the status: the primary's, not the stale copy
    assert shown.json["revocation_reason"] == "misconduct"
    with verifier.app_context():  # a QR code's short link takes the same path
        signature = certs.link_signature(certs.find_certificate(db.session, number), clock())
    scanned = client.get("/verify", query_string={"n": number, "s": signature})
    assert scanned.status_code == 200 and MARK in scanned.text and "REVOKED" in scanned.text
    assert lookup(client, number, OTHER_BORN).status_code == 404  # wrong date of birth
    assert lookup(client, "JP-00000-00000-00000", BORN).status_code == 404

    with verifier.app_context():  # the log is written on the primary only
        outcomes = db.session.scalars(sa.select(Verification.outcome)).all()
        assert sorted(outcomes) == ["not_found", "not_found", "revoked", "revoked", "valid"]
    with replica.connect() as connection:
        assert connection.scalar(count_log) == logged_at_copy == 1


def test_without_a_replica_verification_reads_the_primary(app, clock, sit):  # noqa: F811
    _headers, _attempt, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        assert certs.replica_engine() is None
        number = db.session.scalar(sa.select(Certificate.number))
        found = certs.certificate_by_number(db.session, number, from_replica=True)
        assert found.facts["date_of_birth"] == BORN.isoformat()


def test_an_unreachable_replica_leaves_verification_to_the_primary(
    app,
    clock,
    sit,  # noqa: F811
    database_url,
    tmp_path,
):
    """A replica that is down (here: a file in a folder that does not exist) must not
    stop employers from verifying: the lookup is answered from the primary."""
    _headers, _attempt, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(sa.select(Certificate.number))
    unreachable = f"sqlite:///{tmp_path / 'no-such-folder' / 'replica.sqlite3'}"
    verifier = create_app(settings_for(database_url, CLOCK=clock, DATABASE_REPLICA_URL=unreachable))
    answer = lookup(verifier.test_client(), number, BORN)
    assert answer.status_code == 200, answer.json
    assert answer.json["status"] == "valid"
    with verifier.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Verification)) == 1
    with verifier.app_context():  # after the session above gave its connection back
        for engine in db.engines.values():
            engine.dispose()
