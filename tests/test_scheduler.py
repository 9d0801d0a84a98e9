"""The scheduler's sweeps with an injected clock: each does its job once and a second run
does nothing; attempts are finished with their saved answers, once, even by two sweeps
at once; results, reminders and e-mail go out; one scheduler acts at a time."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import smtplib
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.services import import_bundles
from testing_center.accounts.models import Role, User
from testing_center.attempts import services as attempt_services
from testing_center.attempts.models import Attempt
from testing_center.extensions import db
from testing_center.operations import notify, scheduler
from testing_center.operations.models import (
    AuditEntry,
    Booking,
    ExamSession,
    Notification,
    SchedulerHeartbeat,
)
from testing_center.operations.notify import folder_sender, queue_notification, send_pending

from .conftest import START

EXAM = "sched-exam"
NEXT_WEEK = START + dt.timedelta(days=7)  # Thursday 3 December, 09:00 UTC
EXAM_SECONDS = 1800
_documents = itertools.count(1)

TEMPLATE = {
    "code": EXAM,
    "version": 1,
    "title": {"en": "Scheduler check"},
    "modes": ["practice", "proctored"],
    "clock": {"kind": "shared", "duration_seconds": EXAM_SECONDS},
    "shuffle": {"items": False, "options": False},
    "sections": [
        {
            "code": "all",
            "title": {"en": "All"},
            "select": {"exam_family": "sched", "section": "all", "count": 4},
        }
    ],
    "scoring": {"rule": "percent", "pass_percent": 60},
}


def bundle() -> Bundle:
    return Bundle(
        items=[
            {
                "ref": f"sched-{n}",
                "type": "single_choice",
                "exam_family": "sched",
                "level": "A2",
                "section": "all",
                "topic": "work",
                "stem": f"<p>問題 {n}</p>",
                "options": [{"id": k, "html": k} for k in "ABC"],
                "key": "A",
            }
            for n in range(4)
        ],
        origin="scheduler-test",
    )


@pytest.fixture
def app_config(tmp_path):
    """Tokens that outlive the week these tests jump; mail into a folder of the test."""
    return {"API_TOKEN_TTL_SECONDS": 30 * 24 * 3600, "MAIL_FOLDER": str(tmp_path / "mail")}


@pytest.fixture
def world(app, client, clock, make_staff, auth_headers):
    """A proctored exam, a Tashkent centre, an operator and a proctor."""
    with app.app_context():
        import_bundles(db.session, [bundle()], status="approved", now=clock())
        load_templates(db.session, [TEMPLATE], now=clock())
        db.session.commit()
    operator, proctor = make_staff(Role.OPERATOR), make_staff(Role.PROCTOR)
    headers = {"operator": auth_headers(operator), "proctor": auth_headers(proctor)}
    created = client.post(
        "/api/v1/centers",
        json={
            "code": "TAS",
            "name": "Tashkent Testing Centre",
            "city": "Tashkent",
            "address": "1 Amir Temur Street",
            "timezone": "Asia/Tashkent",
        },
        headers=headers["operator"],
    )
    assert created.status_code == 201, created.json
    return {"proctor": proctor, "headers": headers}


@pytest.fixture
def make_session(client, world):
    """Factory: a published session of the exam (keyword arguments go to the API)."""

    def make(starts_at: dt.datetime = NEXT_WEEK, **extra) -> int:
        response = client.post(
            "/api/v1/sessions",
            json={
                "exam_code": EXAM,
                "center_code": "TAS",
                "starts_at": starts_at.isoformat(),
                "capacity": 20,
                **{k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in extra.items()},
            },
            headers=world["headers"]["operator"],
        )
        assert response.status_code == 201, response.json
        client.post(
            f"/api/v1/sessions/{response.json['id']}/proctors",
            json={"email": world["proctor"].email},
            headers=world["headers"]["operator"],
        )
        return response.json["id"]

    return make


@pytest.fixture
def book(client, make_candidate, auth_headers):
    """Factory: a candidate with a seat in the session -> (headers, booking, document)."""

    def make(session_id: int) -> tuple[dict, dict, str]:
        document = f"ZX{next(_documents):07d}"
        headers = auth_headers(make_candidate(id_document_number=document))
        booked = client.post(f"/api/v1/sessions/{session_id}/bookings", headers=headers)
        assert booked.status_code == 201, booked.json
        return headers, booked.json, document

    return make


@pytest.fixture
def sitting(client, clock, world, make_session, book):
    """Factory: ``count`` candidates booked, checked in and started in an open session
    at NEXT_WEEK -> (session id, [(headers, started attempt)])."""

    def make(count: int = 1, **session_extra) -> tuple[int, list[tuple[dict, dict]]]:
        session_id = make_session(**session_extra)
        seats = [book(session_id) for _ in range(count)]
        clock.current = NEXT_WEEK - dt.timedelta(minutes=20)
        proctor = world["headers"]["proctor"]
        for _headers, booking, document in seats:
            admitted = client.post(
                f"/api/v1/bookings/{booking['booking_id']}/check-in",
                json={"id_document_number": document},
                headers=proctor,
            )
            assert admitted.status_code == 200, admitted.json
        clock.current = NEXT_WEEK
        assert (
            client.post(f"/api/v1/sessions/{session_id}/open", headers=proctor).status_code == 200
        )
        started = []
        for headers, booking, _document in seats:
            attempt = client.post(
                "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
            )
            assert attempt.status_code == 201, attempt.json
            started.append((headers, attempt.json))
        return session_id, started

    return make


def sweep(app, name: str, now: dt.datetime) -> int:
    with app.app_context():
        return scheduler.SWEEPS[name](db.session, now)


def session_row(app, session_id: int) -> ExamSession:
    with app.app_context():
        row = db.session.get(ExamSession, session_id)
        db.session.expunge(row)
        return row


def save(client, headers, attempt, position: int, answer: str) -> None:
    ref = attempt["sections"][0]["items"][position]["ref"]
    saved = client.put(
        f"/api/v1/attempts/{attempt['id']}/responses/{ref}",
        json={"response": answer, "client_seq": 1},
        headers=headers,
    )
    assert saved.status_code == 200 and saved.json["accepted"], saved.json


# ---- sessions -----------------------------------------------------------------------------


def test_published_sessions_open_when_they_start(app, clock, make_session):
    """A published session opens at its start, by the system, once."""
    session_id = make_session()
    assert sweep(app, "open_sessions", NEXT_WEEK - dt.timedelta(seconds=1)) == 0
    assert sweep(app, "open_sessions", NEXT_WEEK) == 1
    assert sweep(app, "open_sessions", NEXT_WEEK) == 0
    row = session_row(app, session_id)
    assert row.status == "open" and row.opened_at == NEXT_WEEK
    with app.app_context():
        entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "session.open"))
        assert entry.actor_id is None and entry.entity_id == str(session_id)


def test_open_sessions_close_after_the_longest_attempt_and_grace(app, client, world, make_session):
    """An open session closes at start + late minutes + exam duration + 30 minutes."""
    session_id = make_session(late_minutes=10)
    sweep(app, "open_sessions", NEXT_WEEK)
    closes = NEXT_WEEK + dt.timedelta(minutes=10, seconds=EXAM_SECONDS) + scheduler.CLOSE_GRACE
    assert sweep(app, "close_sessions", closes - dt.timedelta(seconds=1)) == 0
    assert session_row(app, session_id).status == "open"
    assert sweep(app, "close_sessions", closes) == 1
    assert sweep(app, "close_sessions", closes) == 0
    row = session_row(app, session_id)
    assert row.status == "closed" and row.closed_at == closes


# ---- attempts -----------------------------------------------------------------------------


def test_expired_attempt_is_finished_with_its_saved_answers(app, client, clock, sitting):
    """The sweep finishes an expired attempt with exactly the answers saved, and scores it."""
    _session_id, [(headers, attempt)] = sitting()
    save(client, headers, attempt, 0, "A")  # right
    save(client, headers, attempt, 1, "B")  # wrong
    deadline = dt.datetime.fromisoformat(attempt["deadline_at"])
    assert sweep(app, "finish_attempts", deadline - dt.timedelta(seconds=1)) == 0
    assert sweep(app, "finish_attempts", deadline + dt.timedelta(minutes=5)) == 1
    assert sweep(app, "finish_attempts", deadline + dt.timedelta(minutes=5)) == 0
    with app.app_context():
        row = db.session.get(Attempt, attempt["id"])
        assert row.status == "finished" and row.finish_reason == "deadline"
        assert row.finished_at == deadline
        assert (row.result["raw_points"], row.result["raw_max"]) == (1, 4)
        assert row.result["passed"] is False


def test_a_paused_attempt_is_never_finished(app, client, clock, world, sitting):
    """A paused attempt's clock stands still: the sweep leaves it alone however late."""
    _session_id, [(_headers, attempt)] = sitting()
    clock.advance(minutes=5)
    paused = client.post(
        f"/api/v1/attempts/{attempt['id']}/pause",
        json={"reason": "fire alarm"},
        headers=world["headers"]["proctor"],
    )
    assert paused.status_code == 200, paused.json
    assert sweep(app, "finish_attempts", NEXT_WEEK + dt.timedelta(hours=6)) == 0
    with app.app_context():
        row = db.session.get(Attempt, attempt["id"])
        assert row.status == "in_progress" and row.result is None


def test_two_sweeps_at_once_finish_each_attempt_once(
    app, client, clock, sitting, monkeypatch, caplog
):
    """Two sweeps running at the same instant finish and score every attempt exactly once."""
    _session_id, started = sitting(count=4)
    for headers, attempt in started:
        save(client, headers, attempt, 0, "A")
    graded = []
    grade = attempt_services.grade_responses
    monkeypatch.setattr(
        attempt_services, "grade_responses", lambda rows: graded.append(1) or grade(rows)
    )
    later = NEXT_WEEK + dt.timedelta(seconds=EXAM_SECONDS + 60)
    listed, counts, failures = threading.Barrier(2), [], []
    expired = scheduler.expired_attempt_ids

    def list_then_wait(session, now):
        ids = expired(session, now)
        listed.wait()  # both sweeps hold the same four ids before either acts
        return ids

    monkeypatch.setattr(scheduler, "expired_attempt_ids", list_then_wait)

    def run() -> None:
        with app.app_context():
            try:
                counts.append(scheduler.finish_attempts(db.session, later))
            except Exception as error:  # reported below, not swallowed
                failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and len(counts) == 2 and sum(counts) == 4
    assert len(graded) == 4
    assert "failed on" not in caplog.text  # nobody gave up on an item either
    with app.app_context():
        rows = db.session.scalars(select(Attempt)).all()
        assert [r.status for r in rows] == ["finished"] * 4
        assert all(r.result["raw_points"] == 1 for r in rows)


# ---- results, reminders, holds ------------------------------------------------------------


def test_results_are_released_at_the_set_time_and_candidates_told(
    app, client, clock, world, sitting
):
    """At the release time, once the session has closed, results become visible and each
    candidate with a finished attempt is e-mailed, once (a voided attempt is not)."""
    release_at = NEXT_WEEK + dt.timedelta(days=1)
    session_id, [(headers, attempt), (_, expiring), (_, cheating)] = sitting(
        count=3, results_release_at=release_at
    )
    finished = client.post(f"/api/v1/attempts/{attempt['id']}/finish", headers=headers)
    assert finished.status_code == 200, finished.json
    voided = client.post(
        f"/api/v1/attempts/{cheating['id']}/void",
        json={"reason": "phone"},
        headers=world["headers"]["proctor"],
    )
    assert voided.status_code == 200, voided.json
    result = client.get(f"/api/v1/attempts/{attempt['id']}/result", headers=headers).json
    assert not result["released"] and result["total"] is None
    assert sweep(app, "release_results", release_at) == 0  # the session is still open
    sweep(app, "finish_attempts", release_at)
    assert sweep(app, "close_sessions", release_at) == 1
    assert sweep(app, "release_results", release_at - dt.timedelta(seconds=1)) == 0
    assert sweep(app, "release_results", release_at) == 1
    assert sweep(app, "release_results", release_at) == 0
    result = client.get(f"/api/v1/attempts/{attempt['id']}/result", headers=headers).json
    assert result["released"] and result["total"] is not None
    assert session_row(app, session_id).results_released_at == release_at
    with app.app_context():
        told = db.session.scalars(
            select(Notification.user_id).where(Notification.kind == "results_released")
        ).all()
        finished_users = db.session.scalars(
            select(Attempt.user_id).where(Attempt.id.in_([attempt["id"], expiring["id"]]))
        ).all()
        assert db.session.get(Attempt, expiring["id"]).status == "finished"
    assert sorted(told) == sorted(finished_users) and len(told) == 2


def test_reminders_go_once_to_every_live_booking(app, clock, make_session, book):
    """Within REMINDER_HOURS_BEFORE of the start every booked candidate is reminded once."""
    session_id = make_session()
    for _ in range(2):
        book(session_id)
    other = make_session(NEXT_WEEK + dt.timedelta(days=3))
    book(other)
    hours = app.config["REMINDER_HOURS_BEFORE"]
    assert sweep(app, "send_reminders", NEXT_WEEK - dt.timedelta(hours=hours, seconds=1)) == 0
    assert sweep(app, "send_reminders", NEXT_WEEK - dt.timedelta(hours=hours)) == 1
    assert sweep(app, "send_reminders", NEXT_WEEK - dt.timedelta(hours=1)) == 0
    with app.app_context():
        reminders = db.session.scalars(
            select(Notification).where(Notification.kind == "session_reminder")
        ).all()
        assert len(reminders) == 2
        assert all("2026-12-03 14:00" in notice.body for notice in reminders)
    assert session_row(app, session_id).reminder_sent_at is not None
    assert session_row(app, other).reminder_sent_at is None


def test_expired_holds_release_their_seats(app, client, clock, world, make_session, make_candidate):
    """A hold not confirmed in time expires and gives its seat back, once."""
    session_id = make_session()
    candidate = make_candidate()
    held = client.post(
        f"/api/v1/sessions/{session_id}/holds",
        json={"email": candidate.email, "minutes": 60},
        headers=world["headers"]["operator"],
    )
    assert held.status_code == 201, held.json
    assert session_row(app, session_id).seats_taken == 1
    assert sweep(app, "expire_holds", START + dt.timedelta(minutes=59)) == 0
    assert sweep(app, "expire_holds", START + dt.timedelta(minutes=60)) == 1
    assert sweep(app, "expire_holds", START + dt.timedelta(minutes=61)) == 0
    assert session_row(app, session_id).seats_taken == 0
    with app.app_context():
        assert db.session.get(Booking, held.json["booking_id"]).status == "expired"


# ---- e-mail -------------------------------------------------------------------------------


def test_queued_mail_is_written_to_the_mail_folder(app, clock, make_session, book):
    """The mail sweep sends each queued notice once, as an .eml file in MAIL_FOLDER."""
    session_id = make_session()
    book(session_id)
    book(session_id)
    folder = app.config["MAIL_FOLDER"]
    assert sweep(app, "send_mail", clock()) == 2
    assert sweep(app, "send_mail", clock()) == 0
    files = sorted(os.listdir(folder))
    assert len(files) == 2 and all(name.endswith(".eml") for name in files)
    with open(os.path.join(folder, files[0]), encoding="utf-8") as file:
        text = file.read()
    assert "Subject: Your seat is booked: sched-exam" in text


def test_a_failing_message_is_retried_without_blocking_the_others(
    app, clock, make_session, book, tmp_path
):
    """A message the server refuses is counted and retried next time; the rest go out."""
    session_id = make_session()
    for _ in range(3):
        book(session_id)
    with app.app_context():
        first = db.session.scalar(select(func.min(Notification.id)))
    delivered = folder_sender(tmp_path / "flaky")

    def flaky(message) -> None:
        if message["X-Notification-Id"] == str(first):
            raise ConnectionRefusedError("mail server down")
        delivered(message)

    with app.app_context():
        assert send_pending(db.session, clock(), flaky) == 2
        db.session.commit()
        notice = db.session.get(Notification, first)
        assert notice.sent_at is None and notice.tries == 1 and notice.last_error
    assert sweep(app, "send_mail", clock() + dt.timedelta(minutes=1)) == 0  # backing off
    later = clock() + dt.timedelta(minutes=2)
    assert sweep(app, "send_mail", later) == 1
    assert os.listdir(app.config["MAIL_FOLDER"]) == [f"{first}.eml"]
    with app.app_context():
        assert db.session.get(Notification, first).sent_at == later


def queue_notices(app, clock, make_candidate, how_many: int) -> list[int]:
    """Notices for a new candidate, queued straight into the outbox; their ids."""
    candidate = make_candidate()
    with app.app_context():
        user = db.session.get(User, candidate.id)
        notices = [
            queue_notification(db.session, user, "results_released", clock(), exam=EXAM)
            for _ in range(how_many)
        ]
        db.session.commit()
        return [notice.id for notice in notices]


def test_a_refusing_mail_server_is_retried_with_backoff_then_given_up_and_reported(
    app, clock, make_candidate, caplog
):
    """Each failed send waits twice as long as the one before (2 minutes up to 2 hours);
    after MAX_TRIES the notice is given up, logged by id and counted for operators."""
    (notice_id,) = queue_notices(app, clock, make_candidate, 1)

    def refuse(message) -> None:
        raise smtplib.SMTPServerDisconnected("mail server down")

    moment, tries_at = clock(), []
    with app.app_context():
        while moment < clock() + dt.timedelta(days=2):
            before = db.session.get(Notification, notice_id).tries
            assert send_pending(db.session, moment, refuse) == 0
            if db.session.get(Notification, notice_id).tries > before:
                tries_at.append(moment)
            moment += dt.timedelta(minutes=1)
        notice = db.session.get(Notification, notice_id)
        assert notice.sent_at is None and notice.last_error == "SMTPServerDisconnected"
        assert notify.outbox_status(db.session) == (0, 1, "SMTPServerDisconnected")
    waits = [(b - a) // dt.timedelta(minutes=1) for a, b in itertools.pairwise(tries_at)]
    assert len(tries_at) == notify.MAX_TRIES
    assert waits == [2, 4, 8, 16, 32, 64, 120, 120, 120]
    assert f"notice {notice_id} given up after {notify.MAX_TRIES} tries" in caplog.text
    assert "example.test" not in caplog.text  # no address in the log


class Crash(BaseException):
    """The scheduler process dying (nothing of ours catches it, as with SIGKILL)."""


@pytest.mark.parametrize("delivered_first", [True, False], ids=["after-send", "during-send"])
def test_a_crash_around_a_send_sends_the_message_again(
    app, clock, make_candidate, tmp_path, delivered_first
):
    """A scheduler that dies during a send, or after it but before recording it, leaves
    the notice unsent and due again after the first retry delay: it is sent again on a
    later sweep (at least once), never lost; the resend has the same Message-ID."""
    (notice_id,) = queue_notices(app, clock, make_candidate, 1)
    inbox: list = []

    def crashing(message) -> None:
        if delivered_first:
            inbox.append(message)
        raise Crash

    with app.app_context():
        with pytest.raises(Crash):
            send_pending(db.session, clock(), crashing)
        db.session.rollback()  # what the dead process had not committed is gone
        notice = db.session.get(Notification, notice_id)
        assert notice.sent_at is None and notice.tries == 1
        assert send_pending(db.session, clock() + dt.timedelta(minutes=1), inbox.append) == 0
        later = clock() + dt.timedelta(minutes=2)
        assert send_pending(db.session, later, inbox.append) == 1
        assert db.session.get(Notification, notice_id).sent_at == later
    assert len(inbox) == (2 if delivered_first else 1)
    assert len({message["Message-ID"] for message in inbox}) == 1


def test_two_schedulers_never_send_one_message_both(app, clock, make_candidate):
    """While one sender is in the middle of a message, a second one (another scheduler
    that took over) sends the rest and skips that one; each message goes out once."""
    ids = queue_notices(app, clock, make_candidate, 3)
    inbox: list[str] = []
    second: list[int] = []

    def send(message) -> None:
        inbox.append(message["X-Notification-Id"])
        if not second:  # during the first message sent, a second scheduler runs
            second.append(0)
            with Session(db.engine) as other:
                second[0] = send_pending(other, clock(), send)

    with app.app_context():
        first = send_pending(db.session, clock(), send)
        assert first + second[0] == 3
        tries = db.session.scalars(select(Notification.tries).where(Notification.id.in_(ids)))
        assert list(tries) == [1, 1, 1]  # each claimed once, and sent
        assert notify.outbox_status(db.session) == (0, 0, None)
    assert sorted(inbox) == sorted(str(i) for i in ids)


# ---- cycle, failures, heartbeat -----------------------------------------------------------


def test_a_failing_item_is_logged_by_id_and_skipped(app, clock, make_session, monkeypatch, caplog):
    """One item that fails is rolled back, logged by id only, and the sweep goes on."""
    broken, fine = make_session(), make_session(NEXT_WEEK + dt.timedelta(hours=1))
    original = scheduler.services.open_session

    def open_session(session, exam_session, actor, now):
        if exam_session.id == broken:
            raise RuntimeError("Candidate Number 7, passport ZX0000007")
        return original(session, exam_session, actor, now)

    monkeypatch.setattr(scheduler.services, "open_session", open_session)
    clock.current = NEXT_WEEK + dt.timedelta(hours=1)
    with caplog.at_level(logging.ERROR), app.app_context():
        reports = scheduler.run_cycle(db.session, clock)
    by_name = {report.name: report for report in reports}
    assert list(by_name) == list(scheduler.SWEEPS)
    assert (by_name["open_sessions"].count, by_name["open_sessions"].errors) == (1, 1)
    assert session_row(app, fine).status == "open"
    assert session_row(app, broken).status == "published"
    assert f"open_sessions failed on {broken}: RuntimeError" in caplog.text
    assert "Candidate" not in caplog.text and "ZX" not in caplog.text
    monkeypatch.setattr(scheduler.services, "open_session", original)
    assert sweep(app, "open_sessions", clock()) == 1


def test_the_heartbeat_tells_when_the_scheduler_is_stale(app, clock):
    """Every cycle beats; the beat is stale after three intervals without one."""
    with app.app_context():
        assert scheduler.heartbeat_status(db.session, clock()) == (None, True)
        scheduler.run_cycle(db.session, clock, interval_seconds=30)
        heartbeat, stale = scheduler.heartbeat_status(db.session, clock())
        assert not stale and heartbeat.pid == os.getpid() and heartbeat.beat_at == clock()
        assert set(heartbeat.details) == set(scheduler.SWEEPS)
        assert heartbeat.details["open_sessions"] == {
            "last_run": clock().isoformat(),
            "count": 0,
            "errors": 0,
            "every_seconds": 30,
        }
        assert not scheduler.heartbeat_status(db.session, clock() + dt.timedelta(seconds=90))[1]
        assert scheduler.heartbeat_status(db.session, clock() + dt.timedelta(seconds=91))[1]
        scheduler.run_cycle(db.session, clock, interval_seconds=30)
        assert db.session.scalar(select(func.count()).select_from(SchedulerHeartbeat)) == 1


# ---- one scheduler at a time --------------------------------------------------------------


def test_the_lock_refuses_a_second_holder(app, tmp_path):
    """While one lock holds, a second is refused; once released, it can be taken."""
    with app.app_context():
        engine = db.engine
    first = scheduler.SchedulerLock(engine, tmp_path / "scheduler.lock")
    second = scheduler.SchedulerLock(engine, tmp_path / "scheduler.lock")
    try:
        assert first.acquire() and first.is_held()
        assert not second.acquire() and not second.is_held()
        first.release()
        assert not first.is_held()
        assert second.acquire() and second.is_held()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


def test_the_file_lock_refuses_a_second_holder(tmp_path):
    """Without PostgreSQL (SQLite) the lock is an exclusive lock on a file."""
    engine = sa.create_engine("sqlite://")
    path = tmp_path / "instance" / "scheduler.lock"
    with scheduler.SchedulerLock(engine, path) as first:
        assert first.acquire() and not first.uses_database
        assert not scheduler.SchedulerLock(engine, path).acquire()
        assert str(os.getpid()) in path.read_text(encoding="utf-8")
    with scheduler.SchedulerLock(engine, path) as again:
        assert again.acquire()
    engine.dispose()


# ---- the command --------------------------------------------------------------------------


def test_scheduler_once_prints_what_each_sweep_did(app, runner, clock, make_session):
    """`testing-center scheduler --once` runs every sweep once and says what each did."""
    session_id = make_session()
    clock.current = NEXT_WEEK
    result = runner.invoke(args=["scheduler", "--once", "--interval", "300"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines == [
        "open_sessions: 1",
        "finish_attempts: 0",
        "close_sessions: 0",
        "release_results: 0",
        "issue_certificates: 0",
        "reissue_certificates: 0",
        "send_reminders: 0",
        "expire_holds: 0",
        "prune_rate_counters: 0",
        "apply_retention: 0",
        "send_mail: 0",
    ]
    assert session_row(app, session_id).status == "open"
    with app.app_context():
        heartbeat, stale = scheduler.heartbeat_status(db.session, clock())
        assert not stale and heartbeat.details["open_sessions"]["every_seconds"] == 300
    again = runner.invoke(args=["scheduler", "--once"])
    assert again.output.splitlines()[0] == "open_sessions: 0"


def test_scheduler_once_does_nothing_while_another_is_active(app, runner, clock, make_session):
    """A second scheduler reports the active one and acts on nothing."""
    session_id = make_session()
    clock.current = NEXT_WEEK
    with scheduler.SchedulerLock.for_app(app) as active:
        assert active.acquire()
        result = runner.invoke(args=["scheduler", "--once"])
    assert result.exit_code == 0
    assert "another scheduler is active" in result.output
    assert session_row(app, session_id).status == "published"


def test_the_long_running_scheduler_runs_a_cycle_under_the_lock(app, clock, make_session):
    """The APScheduler mode runs a cycle at once (in its own thread and app context) and
    then every interval, never two at a time; a lost lock stops it."""
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

    session_id = make_session()
    clock.current = NEXT_WEEK
    lost = threading.Event()
    with scheduler.SchedulerLock.for_app(app) as lock:
        assert lock.acquire()
        built = scheduler.build_scheduler(app, 45, lock, lost)
        events, jobs = [], []

        def stop(event) -> None:
            events.append(event.code)
            jobs.extend(built.get_jobs())
            built.shutdown(wait=False)

        built.add_listener(stop, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        guard = threading.Timer(20, lambda: built.shutdown(wait=False))
        guard.start()
        built.start()  # returns once the first cycle has run
        guard.cancel()
    assert events == [EVENT_JOB_EXECUTED] and not lost.is_set()
    [job] = jobs
    assert job.trigger.interval == dt.timedelta(seconds=45)
    assert job.max_instances == 1 and job.coalesce
    assert session_row(app, session_id).status == "open"
    with app.app_context():
        assert scheduler.heartbeat_status(db.session, clock()).heartbeat is not None


def test_a_scheduler_that_lost_its_lock_stops_without_acting(app, clock, make_session):
    """If the lock is gone (the database connection dropped), the cycle acts on nothing
    and stops the scheduler, which the command reports so that it is restarted."""
    session_id = make_session()
    clock.current = NEXT_WEEK
    lost = threading.Event()
    never_taken = scheduler.SchedulerLock.for_app(app)
    built = scheduler.build_scheduler(app, 45, never_taken, lost)
    guard = threading.Timer(20, lambda: built.shutdown(wait=False))
    guard.start()
    built.start()
    guard.cancel()
    assert lost.is_set()
    assert session_row(app, session_id).status == "published"
