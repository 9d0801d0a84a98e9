"""Scale-out: web hosts keep no state that matters, so any host serves any request.

Two application processes are stood in for by two ``create_app()`` instances, each
served over HTTP by its own werkzeug server thread, against the one test database
(SQLite, or PostgreSQL with ``TEST_DATABASE_URL``). They share the server clock, as hosts
share the real one.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from exam_templates.services import load_templates
from item_bank.services import import_bundles
from testing_center import create_app
from testing_center.extensions import db

from .conftest import PASSWORD, settings_for
from .operations_setup import EXAM, TEMPLATE, bundle


class Host:
    """One web host: an app behind a real HTTP server on a free port."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def call(self, method: str, path: str, body: Any = None, token: str | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.server.server_port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body) if body is not None else None
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        data = json.loads(response.read() or b"null")
        connection.close()
        return response.status, data

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def hosts(app: Flask, database_url: str, clock) -> Iterator[tuple[Host, Host]]:
    """Host A serves the test's ``app``; host B a second app built the same way."""
    with app.app_context():
        import_bundles(db.session, [bundle()], status="approved", now=clock())
        load_templates(db.session, [TEMPLATE], now=clock())
        db.session.commit()
    other = create_app(settings_for(database_url, CLOCK=clock))
    a, b = Host(app), Host(other)
    yield a, b
    a.stop()
    b.stop()
    with other.app_context():
        db.engine.dispose()


def test_two_hosts_serve_one_candidate_interchangeably(hosts, make_candidate, clock):
    """A candidate started on one host saves, reads and finishes on either: the token,
    the answers and the clock live in the database, not in a process."""
    a, b = hosts
    candidate = make_candidate()
    status, issued = a.call(
        "POST", "/api/v1/auth/token", {"email": candidate.email, "password": PASSWORD}
    )
    assert status == 200, issued
    token = issued["token"]

    status, started = a.call("POST", "/api/v1/attempts", {"exam_code": EXAM}, token)
    assert status == 201, started
    attempt = f"/api/v1/attempts/{started['id']}"
    assert started["remaining_seconds"] == 1800

    status, ack = b.call(
        "PUT", f"{attempt}/responses/q1", {"response": "A", "client_seq": 1}, token
    )
    assert status == 200 and ack["accepted"], ack
    clock.advance(minutes=5)

    status, on_a = a.call("GET", attempt, token=token)
    assert status == 200
    status, on_b = b.call("GET", attempt, token=token)
    assert status == 200
    assert on_a == on_b
    assert on_a["remaining_seconds"] == 1500
    saved = {item["ref"]: item for item in on_a["sections"][0]["items"]}
    assert (saved["q1"]["response"], saved["q1"]["client_seq"]) == ("A", 1)

    status, ack = a.call(
        "PUT", f"{attempt}/responses/q2", {"response": "B", "client_seq": 2}, token
    )
    assert status == 200 and ack["accepted"], ack
    status, result = b.call("POST", f"{attempt}/finish", token=token)
    assert status == 200, result

    status, final = a.call("GET", attempt, token=token)
    assert final["status"] == "finished"
    answers = {item["ref"]: item["response"] for item in final["sections"][0]["items"]}
    assert answers == {"q1": "A", "q2": "B", "q3": None, "q4": None}
    status, refused = a.call(
        "PUT", f"{attempt}/responses/q3", {"response": "C", "client_seq": 3}, token
    )
    assert status == 409 and refused["error"]["code"] == "attempt_closed"
