"""Test-centre operations through the JSON API: centres, sessions, booking windows, no
overselling, check-in, proctored starts, pause and resume, extra time, void, audit."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select

from certificates.codes import check_symbol, is_valid, new_code, normalise
from testing_center.accounts.models import Role
from testing_center.attempts.models import Attempt
from testing_center.extensions import db
from testing_center.operations.calendar import booking_closes_at
from testing_center.operations.models import AuditEntry, Booking, ExamSession, Notification

from .operations_setup import EXAM, NEXT_WEEK, TASHKENT, schedule


def test_codes_carry_a_check_symbol():
    code = new_code("TAS")
    assert is_valid(code) and code.startswith("TAS-")
    body = code.replace("TAS-", "").replace("-", "")
    typo = body[:3] + ("1" if body[3] != "1" else "2") + body[4:]
    assert not is_valid("TAS-" + typo)
    typed = " " + code.lower().replace("0", "o").replace("1", "l").replace("-", " -", 1)
    assert normalise(typed) == code
    assert check_symbol("0") == "0" and check_symbol("Z") == "Z"


@pytest.mark.parametrize(
    ("session_day", "closes_on"),
    [
        (dt.date(2026, 12, 3), dt.date(2026, 11, 30)),  # Thursday: Wed, Tue, Mon -> end of Mon
        (dt.date(2026, 12, 7), dt.date(2026, 12, 2)),  # Monday: Fri, Thu, Wed
        (dt.date(2026, 12, 5), dt.date(2026, 12, 1)),  # Saturday: 4 days: Fri, Thu, Wed, Tue
    ],
)
def test_booking_closes_three_business_days_before(session_day, closes_on):
    starts = dt.datetime.combine(session_day, dt.time(9), tzinfo=dt.UTC)
    closes = booking_closes_at(starts, TASHKENT, holidays=set())
    local = closes.astimezone(dt.timezone(dt.timedelta(hours=5)))
    assert local.date() == closes_on + dt.timedelta(days=1) and local.time() == dt.time(0)


def test_a_holiday_is_not_a_business_day():
    starts = dt.datetime(2026, 12, 3, 9, tzinfo=dt.UTC)
    closes = booking_closes_at(starts, TASHKENT, holidays={dt.date(2026, 12, 1)})
    assert closes.astimezone(dt.timezone(dt.timedelta(hours=5))).date() == dt.date(2026, 11, 28)


def test_sessions_are_listed_with_seats_and_booked(client, world, make_candidate, auth_headers):
    created = schedule(client, world, NEXT_WEEK, capacity=2)
    listed = client.get("/api/v1/sessions", query_string={"exam_code": EXAM, "city": "tashkent"})
    assert [s["id"] for s in listed.json] == [created["id"]]
    assert listed.json[0]["seats_left"] == 2 and listed.json[0]["booking_open"]
    assert listed.json[0]["local_start"].startswith("2026-12-03 14:00")
    headers = auth_headers(make_candidate())
    booked = client.post(f"/api/v1/sessions/{created['id']}/bookings", headers=headers)
    assert booked.status_code == 201, booked.json
    assert is_valid(booked.json["admission_number"])
    again = client.post(f"/api/v1/sessions/{created['id']}/bookings", headers=headers)
    assert again.status_code == 409 and again.json["error"]["code"] == "booking_conflict"
    mine = client.get("/api/v1/bookings", headers=headers).json
    assert [b["booking_id"] for b in mine] == [booked.json["booking_id"]]
    other = client.get("/api/v1/bookings", headers=auth_headers(make_candidate())).json
    assert other == []
    assert client.get("/api/v1/sessions").json[0]["seats_left"] == 1


def test_full_session_and_closed_window_are_refused(
    client, world, clock, make_candidate, auth_headers
):
    created = schedule(client, world, NEXT_WEEK, capacity=1)
    first = client.post(
        f"/api/v1/sessions/{created['id']}/bookings", headers=auth_headers(make_candidate())
    )
    assert first.status_code == 201
    full = client.post(
        f"/api/v1/sessions/{created['id']}/bookings", headers=auth_headers(make_candidate())
    )
    assert full.status_code == 409 and full.json["error"]["code"] == "session_full"
    later = schedule(client, world, NEXT_WEEK + dt.timedelta(days=1))
    clock.current = dt.datetime.fromisoformat(later["booking_closes_at"])
    closed = client.post(
        f"/api/v1/sessions/{later['id']}/bookings", headers=auth_headers(make_candidate())
    )
    assert closed.status_code == 409 and closed.json["error"]["code"] == "booking_closed"


def test_two_hundred_candidates_for_twenty_seats(app, client, world, make_candidate, auth_headers):
    """Booking at the same instant never oversells: exactly 20 seats, the rest told full."""
    created = schedule(client, world, NEXT_WEEK, capacity=20)
    headers = [auth_headers(make_candidate()) for _ in range(200)]
    start, results = threading.Barrier(len(headers)), []
    lock = threading.Lock()

    def book(h):
        local = app.test_client()
        start.wait()
        response = local.post(f"/api/v1/sessions/{created['id']}/bookings", headers=h)
        with lock:
            results.append((response.status_code, (response.json or {}).get("error", {})))

    threads = [threading.Thread(target=book, args=(h,)) for h in headers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = [status for status, _ in results]
    assert codes.count(201) == 20
    refusals = [error.get("code") for status, error in results if status != 201]
    # SQLite serialises writers; a writer that waited too long reports "busy" (503)
    assert set(refusals) <= {"session_full", "database_busy"}
    with app.app_context():
        session = db.session.get(ExamSession, created["id"])
        live = db.session.scalar(
            select(func.count()).select_from(Booking).where(Booking.session_id == session.id)
        )
        assert session.seats_taken == live == 20


def test_reschedule_moves_the_seat(client, world, make_candidate, auth_headers):
    first = schedule(client, world, NEXT_WEEK, capacity=1)
    second = schedule(client, world, NEXT_WEEK + dt.timedelta(days=1), capacity=1)
    headers = auth_headers(make_candidate())
    booking = client.post(f"/api/v1/sessions/{first['id']}/bookings", headers=headers).json
    moved = client.post(
        f"/api/v1/bookings/{booking['booking_id']}/reschedule",
        json={"session_id": second["id"]},
        headers=headers,
    )
    assert moved.status_code == 200, moved.json
    assert moved.json["session"]["id"] == second["id"]
    seats = {s["id"]: s["seats_left"] for s in client.get("/api/v1/sessions").json}
    assert seats == {first["id"]: 1, second["id"]: 0}
    someone = auth_headers(make_candidate())
    full = client.post(
        f"/api/v1/bookings/{booking['booking_id']}/reschedule",
        json={"session_id": first["id"]},
        headers=someone,
    )
    assert full.status_code == 404  # not their booking


def checked_in_candidate(client, world, clock, make_candidate, auth_headers, session_id):
    candidate = make_candidate(id_document_number="AB 1234567")
    headers = auth_headers(candidate)
    booking = client.post(f"/api/v1/sessions/{session_id}/bookings", headers=headers).json
    return candidate, headers, booking


def test_the_roster_shows_saves_the_candidates_page_had_to_retry(
    client, world, clock, make_candidate, auth_headers
):
    """The page reports failed tries with its next save; the proctor sees them per seat,
    and a save reporting none changes nothing."""
    created = schedule(client, world, NEXT_WEEK)
    proctor = world["headers"]["proctor"]
    _candidate, headers, booking = checked_in_candidate(
        client, world, clock, make_candidate, auth_headers, created["id"]
    )
    clock.current = NEXT_WEEK - dt.timedelta(minutes=30)
    checked_in = client.post(
        "/api/v1/check-in",
        json={"admission_number": booking["admission_number"], "id_document_number": "AB1234567"},
        headers=proctor,
    )
    assert checked_in.status_code == 200
    clock.current = NEXT_WEEK
    assert client.post(f"/api/v1/sessions/{created['id']}/open", headers=proctor).status_code == 200
    started = client.post(
        "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
    )
    url = f"/api/v1/attempts/{started.json['id']}/responses/"
    url += started.json["sections"][0]["items"][0]["ref"]

    def roster_row():
        rows = client.get(f"/api/v1/sessions/{created['id']}/roster", headers=proctor).json
        return rows[0]["save_retries"], rows[0]["save_trouble_at"]

    assert client.put(url, json={"response": "A", "client_seq": 1}, headers=headers).json[
        "accepted"
    ]
    assert roster_row() == (0, None)
    clock.advance(minutes=3)
    saved = client.put(url, json={"response": "B", "client_seq": 2, "retries": 4}, headers=headers)
    assert saved.status_code == 200 and saved.json["accepted"]
    clock.advance(minutes=1)
    client.put(url, json={"response": "C", "client_seq": 3, "retries": 2}, headers=headers)
    retries, last = roster_row()
    assert retries == 6
    assert dt.datetime.fromisoformat(last) == NEXT_WEEK + dt.timedelta(minutes=4)

    for bad in (-1, "3", 10**6):
        refused = client.put(
            url, json={"response": "D", "client_seq": 4, "retries": bad}, headers=headers
        )
        assert refused.status_code == 422
    assert roster_row()[0] == 6


def test_check_in_open_start_pause_resume_extend_void(
    app, client, world, clock, make_candidate, auth_headers
):
    created = schedule(client, world, NEXT_WEEK)
    proctor = world["headers"]["proctor"]
    _candidate, headers, booking = checked_in_candidate(
        client, world, clock, make_candidate, auth_headers, created["id"]
    )
    clock.current = NEXT_WEEK - dt.timedelta(minutes=40)
    early_start = client.post(
        "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
    )
    assert early_start.status_code == 409 and early_start.json["error"]["code"] == "not_checked_in"
    wrong_id = client.post(
        f"/api/v1/bookings/{booking['booking_id']}/check-in",
        json={"id_document_number": "ZZ9999999"},
        headers=proctor,
    )
    assert wrong_id.status_code == 422 and wrong_id.json["error"]["code"] == "id_mismatch"
    admitted = client.post(
        "/api/v1/check-in",
        json={
            "admission_number": booking["admission_number"].lower(),
            "id_document_number": "ab1234567",
        },
        headers=proctor,
    )
    assert admitted.status_code == 200, admitted.json
    assert admitted.json["status"] == "checked_in"
    not_open = client.post(
        "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
    )
    assert not_open.json["error"]["code"] == "session_not_open"
    clock.current = NEXT_WEEK
    assert client.post(f"/api/v1/sessions/{created['id']}/open", headers=proctor).status_code == 200
    started = client.post(
        "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
    )
    assert started.status_code == 201, started.json
    attempt_id = started.json["id"]
    remaining = started.json["remaining_seconds"]

    clock.advance(minutes=5)
    paused = client.post(
        f"/api/v1/attempts/{attempt_id}/pause", json={"reason": "fire alarm"}, headers=proctor
    )
    assert paused.status_code == 200 and paused.json["paused"]
    ref = started.json["sections"][0]["items"][0]["ref"]
    refused = client.put(
        f"/api/v1/attempts/{attempt_id}/responses/{ref}",
        json={"response": "A", "client_seq": 1},
        headers=headers,
    )
    assert refused.status_code == 409 and refused.json["error"]["code"] == "attempt_paused"
    clock.advance(minutes=40)  # longer than the time that was left
    state = client.get(f"/api/v1/attempts/{attempt_id}", headers=headers).json
    assert state["status"] == "in_progress" and state["remaining_seconds"] == remaining - 300
    resumed = client.post(
        f"/api/v1/attempts/{attempt_id}/resume",
        json={"reason": "computer failed", "seat": "B7"},
        headers=proctor,
    )
    assert resumed.status_code == 200 and not resumed.json["paused"]
    state = client.get(f"/api/v1/attempts/{attempt_id}", headers=headers).json
    assert state["remaining_seconds"] == remaining - 300  # exactly what was left

    extension = client.post(
        f"/api/v1/attempts/{attempt_id}/extend",
        json={"seconds": 600, "reason": "accommodation"},
        headers=proctor,
    )
    assert extension.status_code == 200 and not extension.json["approved"]
    self_approval = client.post(
        f"/api/v1/attempts/{attempt_id}/extensions/{extension.json['id']}/approve", headers=proctor
    )
    assert self_approval.status_code == 403
    approved = client.post(
        f"/api/v1/attempts/{attempt_id}/extensions/{extension.json['id']}/approve",
        headers=world["headers"]["operator"],
    )
    assert approved.status_code == 200 and approved.json["approved"]
    state = client.get(f"/api/v1/attempts/{attempt_id}", headers=headers).json
    assert state["remaining_seconds"] == remaining - 300 + 600

    roster = client.get(f"/api/v1/sessions/{created['id']}/roster", headers=proctor).json
    assert [(r["status"], r["items"], r["seat"]) for r in roster] == [("in_progress", 4, "B7")]

    voided = client.post(
        f"/api/v1/attempts/{attempt_id}/void", json={"reason": "phone"}, headers=proctor
    )
    assert voided.status_code == 200 and voided.json["status"] == "voided"
    result = client.get(f"/api/v1/attempts/{attempt_id}/result", headers=headers).json
    assert result["status"] == "voided" and result["total"] is None and not result["released"]
    with app.app_context():
        actions = db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    for action in (
        "session.create",
        "booking.check_in",
        "session.open",
        "attempt.pause",
        "attempt.resume",
        "attempt.extend_request",
        "attempt.extend",
        "attempt.void",
    ):
        assert action in actions


def test_late_arrival_is_refused_and_recorded(
    app, client, world, clock, make_candidate, auth_headers
):
    created = schedule(client, world, NEXT_WEEK, late_minutes=10)
    _candidate, _headers, booking = checked_in_candidate(
        client, world, clock, make_candidate, auth_headers, created["id"]
    )
    clock.current = NEXT_WEEK + dt.timedelta(minutes=11)
    late = client.post(
        f"/api/v1/bookings/{booking['booking_id']}/check-in",
        json={"id_document_number": "AB1234567"},
        headers=world["headers"]["proctor"],
    )
    assert late.status_code == 409 and late.json["error"]["code"] == "late_arrival"
    with app.app_context():
        assert db.session.get(Booking, booking["booking_id"]).status == "refused"


def test_proctored_results_wait_for_release(
    app, client, world, clock, make_candidate, auth_headers
):
    created = schedule(client, world, NEXT_WEEK)
    _candidate, headers, booking = checked_in_candidate(
        client, world, clock, make_candidate, auth_headers, created["id"]
    )
    clock.current = NEXT_WEEK - dt.timedelta(minutes=20)
    client.post(
        f"/api/v1/bookings/{booking['booking_id']}/check-in",
        json={"id_document_number": "AB1234567"},
        headers=world["headers"]["proctor"],
    )
    clock.current = NEXT_WEEK
    client.post(f"/api/v1/sessions/{created['id']}/open", headers=world["headers"]["proctor"])
    attempt = client.post(
        "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
    ).json
    finished = client.post(f"/api/v1/attempts/{attempt['id']}/finish", headers=headers).json
    assert finished["status"] == "finished" and not finished["released"]
    assert finished["total"] is None and finished["sections"] == []
    with app.app_context():
        db.session.get(ExamSession, created["id"]).results_released_at = clock()
        db.session.commit()
    result = client.get(f"/api/v1/attempts/{attempt['id']}/result", headers=headers).json
    assert result["released"] and result["total"] is not None


def test_staff_of_other_sessions_and_candidates_are_kept_out(
    client, world, make_staff, make_candidate, auth_headers
):
    created = schedule(client, world, NEXT_WEEK)
    stranger = auth_headers(make_staff(Role.PROCTOR))
    assert (
        client.get(f"/api/v1/sessions/{created['id']}/roster", headers=stranger).status_code == 404
    )
    candidate = auth_headers(make_candidate())
    assert (
        client.get(f"/api/v1/sessions/{created['id']}/roster", headers=candidate).status_code == 403
    )
    assert client.post("/api/v1/centers", json={}, headers=candidate).status_code == 403
    assert (
        client.post(
            f"/api/v1/sessions/{created['id']}/cancel",
            json={"reason": "x"},
            headers=world["headers"]["proctor"],
        ).status_code
        == 403  # proctors supervise; scheduling is the operators'
    )


def test_cancel_releases_seats_and_notifies(app, client, world, make_candidate, auth_headers):
    created = schedule(client, world, NEXT_WEEK)
    for _ in range(3):
        client.post(
            f"/api/v1/sessions/{created['id']}/bookings", headers=auth_headers(make_candidate())
        )
    cancelled = client.post(
        f"/api/v1/sessions/{created['id']}/cancel",
        json={"reason": "power works"},
        headers=world["headers"]["operator"],
    )
    assert cancelled.status_code == 200 and cancelled.json["count"] == 3
    with app.app_context():
        kinds = db.session.scalars(select(Notification.kind)).all()
        assert kinds.count("session_cancelled") == 3 and kinds.count("booking_confirmed") == 3
        assert db.session.get(ExamSession, created["id"]).seats_taken == 0


def test_bad_input_is_refused_and_changes_nothing(app, client, world):
    operator = world["headers"]["operator"]
    bad_zone = client.post(
        "/api/v1/centers",
        json={
            "code": "SAM",
            "name": "S",
            "city": "Samarkand",
            "address": "x",
            "timezone": "Mars/Base",
        },
        headers=operator,
    )
    assert bad_zone.status_code == 422 and bad_zone.json["error"]["code"] == "invalid_timezone"
    past = client.post(
        "/api/v1/sessions",
        json={
            "exam_code": EXAM,
            "center_code": "TAS",
            "starts_at": "2020-01-01T09:00:00+00:00",
            "capacity": 5,
        },
        headers=operator,
    )
    assert past.status_code == 422
    too_big = client.post(
        "/api/v1/sessions",
        json={
            "exam_code": EXAM,
            "center_code": "TAS",
            "room": "A",
            "starts_at": NEXT_WEEK.isoformat(),
            "capacity": 31,
        },
        headers=operator,
    )
    assert too_big.status_code == 422 and too_big.json["error"]["code"] == "room_too_small"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ExamSession)) == 0
        assert db.session.scalar(select(func.count()).select_from(Attempt)) == 0


def test_demo_operations_are_seeded_once(app, clock, seeded):
    """The demo has three centres, sessions to book, and today's sitting with the demo
    candidate's seat; seeding again adds nothing."""
    from testing_center.seed import DEMO_CANDIDATE, ensure_demo_accounts, ensure_demo_operations

    with app.app_context():
        ensure_demo_accounts(db.session, clock())
        assert ensure_demo_operations(db.session, clock()) == 7
        assert ensure_demo_operations(db.session, clock()) == 0
        db.session.commit()
        [booking] = db.session.scalars(select(Booking)).all()
        assert booking.user.email == DEMO_CANDIDATE.email and booking.status == "confirmed"
        assert booking.session.starts_at - clock() <= dt.timedelta(hours=1)
        assert [p.email for p in booking.session.proctors] == ["proctor@demo.test"]
