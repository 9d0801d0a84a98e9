"""Forms prepared at check-in: written then, hidden until the start, started with their
clocks running from the start, deleted when the sitting closes or is cancelled first."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import func, select

from testing_center.attempts.models import (
    Attempt,
    AttemptItem,
    AttemptSection,
    AttemptStatus,
    Response,
)
from testing_center.extensions import db

from .conftest import START
from .operations_setup import NEXT_WEEK, schedule
from .test_adaptive import TEMPLATE as ADAPTIVE_TEMPLATE
from .test_adaptive import load_exam, load_template  # noqa: F401 - fixtures
from .test_concurrency import starts_at_once

DURATION = 1800  # the operations template's shared clock
_documents = itertools.count(1)


def booked_and_checked_in(client, world, clock, make_candidate, auth_headers, session_id):
    """A candidate with a booking of the session (made a week before), checked in half
    an hour before."""
    number = f"PF{next(_documents):07d}"
    candidate = make_candidate(id_document_number=number)
    headers = auth_headers(candidate)
    clock.current = START
    booking = client.post(f"/api/v1/sessions/{session_id}/bookings", headers=headers).json
    clock.current = NEXT_WEEK - dt.timedelta(minutes=30)
    admitted = client.post(
        f"/api/v1/bookings/{booking['booking_id']}/check-in",
        json={"id_document_number": number},
        headers=world["headers"]["proctor"],
    )
    assert admitted.status_code == 200, admitted.json
    return headers, booking["booking_id"]


def open_session(client, world, clock, session_id: int) -> None:
    clock.current = NEXT_WEEK
    opened = client.post(f"/api/v1/sessions/{session_id}/open", headers=world["headers"]["proctor"])
    assert opened.status_code == 200, opened.json


def booking_attempt(client, headers) -> str | None:
    """The attempt id the candidate's (only) booking shows."""
    (booking,) = client.get("/api/v1/bookings", headers=headers).json
    return booking["attempt_id"]


def form_rows(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Attempt, AttemptSection, AttemptItem, Response)
        }


def test_check_in_writes_a_form_nobody_sees_until_the_start(
    app, client, world, clock, make_candidate, auth_headers
):
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    headers, booking_id = booked_and_checked_in(
        client, world, clock, make_candidate, auth_headers, session_id
    )
    with app.app_context():
        prepared = db.session.scalar(select(Attempt).where(Attempt.booking_id == booking_id))
        assert prepared.status == AttemptStatus.PREPARED
        assert all(section.started_at is None for section in prepared.sections)
        prepared_id = prepared.id
    assert form_rows(app) == {
        "attempts": 1,
        "attempt_sections": 1,
        "attempt_items": 4,
        "responses": 4,
    }

    proctor = world["headers"]["proctor"]
    assert booking_attempt(client, headers) is None
    roster = client.get(f"/api/v1/sessions/{session_id}/roster", headers=proctor).json
    assert [(row["status"], row["items"]) for row in roster] == [("checked_in", 0)]
    assert client.get(f"/api/v1/attempts/{prepared_id}", headers=headers).status_code == 404
    early_save = client.put(
        f"/api/v1/attempts/{prepared_id}/responses/q1",
        json={"response": "A", "client_seq": 1},
        headers=headers,
    )
    assert early_save.status_code == 404
    assert (
        client.post(
            f"/api/v1/attempts/{prepared_id}/pause", json={"reason": "test"}, headers=proctor
        ).status_code
        == 404
    )
    exported = client.get("/api/v1/me/data", headers=headers).json
    assert exported["attempts"] == []

    open_session(client, world, clock, session_id)
    clock.advance(minutes=2)  # the candidate starts a little after the opening
    started = client.post("/api/v1/attempts", json={"booking_id": booking_id}, headers=headers)
    assert started.status_code == 201, started.json
    assert started.json["id"] == prepared_id
    assert started.json["status"] == "in_progress"
    assert started.json["remaining_seconds"] == DURATION  # counted from the start
    assert len(started.json["sections"][0]["items"]) == 4
    with app.app_context():
        attempt = db.session.get(Attempt, prepared_id)
        assert attempt.started_at == clock()
        assert attempt.deadline_at == clock() + dt.timedelta(seconds=DURATION)
        assert attempt.sections[0].started_at == clock()
    again = client.post("/api/v1/attempts", json={"booking_id": booking_id}, headers=headers)
    assert again.status_code == 200 and again.json["id"] == prepared_id
    assert booking_attempt(client, headers) == prepared_id
    saved = client.put(
        f"/api/v1/attempts/{prepared_id}/responses/q1",
        json={"response": "A", "client_seq": 1},
        headers=headers,
    )
    assert saved.status_code == 200, saved.json
    assert form_rows(app)["attempt_items"] == 4  # begun, not assembled again


def test_closing_the_sitting_deletes_the_forms_never_started(
    app, client, world, clock, make_candidate, auth_headers
):
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    seats = [
        booked_and_checked_in(client, world, clock, make_candidate, auth_headers, session_id)
        for _ in range(2)
    ]
    open_session(client, world, clock, session_id)
    (headers, booking_id), _absent = seats
    started = client.post("/api/v1/attempts", json={"booking_id": booking_id}, headers=headers)
    assert started.status_code == 201, started.json
    assert form_rows(app)["attempts"] == 2
    closed = client.post(
        f"/api/v1/sessions/{session_id}/close", headers=world["headers"]["proctor"]
    )
    assert closed.status_code == 200, closed.json
    assert form_rows(app) == {
        "attempts": 1,
        "attempt_sections": 1,
        "attempt_items": 4,
        "responses": 4,
    }
    with app.app_context():
        (remaining,) = db.session.scalars(select(Attempt)).all()
        assert remaining.id == started.json["id"]
        assert remaining.status == AttemptStatus.IN_PROGRESS


def test_cancelling_after_check_in_deletes_the_form(
    app, client, world, clock, make_candidate, auth_headers
):
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    booked_and_checked_in(client, world, clock, make_candidate, auth_headers, session_id)
    assert form_rows(app)["attempts"] == 1
    cancelled = client.post(
        f"/api/v1/sessions/{session_id}/cancel",
        json={"reason": "the building has no power"},
        headers=auth_headers(world["operator"]),  # signed in again: cancelling asks for it
    )
    assert cancelled.status_code == 200, cancelled.json
    assert form_rows(app) == {
        "attempts": 0,
        "attempt_sections": 0,
        "attempt_items": 0,
        "responses": 0,
    }


def test_simultaneous_starts_begin_the_prepared_form_once(
    app, client, world, clock, make_candidate, auth_headers
):
    """Five starts of one booking at once (double clicks, two seats): one begins the
    form, the others get the same attempt as it stands."""
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    headers, booking_id = booked_and_checked_in(
        client, world, clock, make_candidate, auth_headers, session_id
    )
    open_session(client, world, clock, session_id)
    results = starts_at_once(app, {"booking_id": booking_id}, headers)
    assert len({attempt_id for _, attempt_id in results}) == 1
    assert sorted(status for status, _ in results) == [200, 200, 200, 200, 201]
    assert form_rows(app)["attempts"] == 1


def test_an_adaptive_sitting_prepared_at_check_in_gives_its_next_item_after_the_start(
    app,
    client,
    world,
    clock,
    make_candidate,
    auth_headers,
    load_exam,  # noqa: F811
):
    """The first adaptive item is chosen at check-in; the rest come one by one, after
    the start, as in practice."""
    document = {**ADAPTIVE_TEMPLATE, "modes": ["practice", "proctored"]}
    load_exam(document)
    session_id = schedule(client, world, NEXT_WEEK, exam_code=document["code"])["id"]
    headers, booking_id = booked_and_checked_in(
        client, world, clock, make_candidate, auth_headers, session_id
    )
    assert form_rows(app)["attempt_items"] == 1  # the first item, prepared
    open_session(client, world, clock, session_id)
    started = client.post("/api/v1/attempts", json={"booking_id": booking_id}, headers=headers)
    assert started.status_code == 201, started.json
    (section,) = started.json["sections"]
    assert section["adaptive"] and section["status"] == "open" and section["item_count"] == 1
    (first,) = section["items"]
    saved = client.put(
        f"/api/v1/attempts/{started.json['id']}/responses/{first['ref']}",
        json={"response": first["options"][0]["id"], "client_seq": 1},
        headers=headers,
    )
    assert saved.status_code == 200 and saved.json["accepted"], saved.json
    state = client.get(f"/api/v1/attempts/{started.json['id']}", headers=headers).json
    assert state["sections"][0]["item_count"] == 2
