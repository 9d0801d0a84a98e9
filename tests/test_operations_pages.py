"""The test-centre pages with a signed-in cookie session and CSRF on: operators schedule
through forms, candidates browse, book and start, proctors check in and act from the
console; every action leaves its audit entry; others' sessions answer 404."""

from __future__ import annotations

import datetime as dt
import io
import re
import sys
import threading
from collections.abc import Iterator

import pytest
from PIL import Image
from sqlalchemy import select
from werkzeug.serving import make_server

from exam_templates.services import load_templates
from item_bank.services import import_bundles
from testing_center.accounts.models import Role
from testing_center.attempts.models import Attempt, AttemptItem, Response
from testing_center.extensions import db
from testing_center.operations import proctoring
from testing_center.operations.models import (
    AuditEntry,
    Booking,
    CandidatePhoto,
    ExamSession,
    Incident,
)

from .conftest import PASSWORD
from .operations_setup import EXAM, NEXT_WEEK, TEMPLATE, bundle
from .test_browser import CHROMIUM_ARGS, ensure_chromium, wait_ready

ID_NUMBER = "AB 1234567"
SESSION_DAY, SESSION_TIME = "2026-12-03", "14:00"  # Tashkent (UTC+5): 09:00 UTC = NEXT_WEEK


@pytest.fixture
def app_config():
    return {"WTF_CSRF_ENABLED": True}


@pytest.fixture
def exam(app, clock):
    """The small proctored exam of the API tests."""
    with app.app_context():
        import_bundles(db.session, [bundle()], status="approved", now=clock())
        load_templates(db.session, [TEMPLATE], now=clock())
        db.session.commit()


def token_of(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


class Browser:
    """One person's test client: signed in with the form, posting forms with the token."""

    def __init__(self, app, email: str) -> None:
        self.client = app.test_client()
        login = self.client.get("/login").text
        response = self.client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token_of(login)}
        )
        assert response.status_code == 302, response.text
        self.token = token_of(self.client.get("/", follow_redirects=True).text)

    def get(self, url: str, **kwargs):
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict | None = None, **kwargs):
        return self.client.post(url, data={"csrf_token": self.token, **(data or {})}, **kwargs)

    def flashes(self, url: str) -> list[str]:
        html = self.client.get(url).text
        return [
            re.sub(r"\s+", " ", m).strip()
            for m in re.findall(r'class="flash[^"]*"[^>]*>(.*?)</p>', html, re.S)
        ]


@pytest.fixture
def people(app, exam, make_staff, make_candidate):
    operator = make_staff(Role.OPERATOR)
    proctor = make_staff(Role.PROCTOR)
    candidate = make_candidate(id_document_number=ID_NUMBER)
    return {
        "operator": Browser(app, operator.email),
        "proctor": Browser(app, proctor.email),
        "candidate": Browser(app, candidate.email),
        "proctor_email": proctor.email,
        "candidate_email": candidate.email,
    }


def create_centre(operator: Browser) -> None:
    created = operator.post(
        "/staff/operations/centres",
        {
            "code": "tas",
            "name": "Tashkent Testing Centre",
            "city": "Tashkent",
            "address": "1 Amir Temur Street",
            "timezone": "Asia/Tashkent",
        },
    )
    assert created.status_code == 302
    room = operator.post("/staff/operations/centres/TAS/rooms", {"name": "A", "seats": "30"})
    assert room.status_code == 302


def schedule(operator: Browser, capacity: int = 20, day: str = SESSION_DAY, **extra) -> int:
    html = operator.get("/staff/operations/sessions/new").text
    room_id = re.search(r'<option value="(\d+)">TAS · A \(30\)</option>', html).group(1)
    response = operator.post(
        "/staff/operations/sessions/new",
        {
            "exam": EXAM,
            "centre": "TAS",
            "room": room_id,
            "day": day,
            "time": SESSION_TIME,
            "capacity": str(capacity),
            "late_minutes": "10",
            "release_day": "2026-12-10",
            "release_time": "12:00",
            "publish": "y",
            **extra,
        },
    )
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[-1])


@pytest.fixture
def session_id(people) -> int:
    """A published Tashkent session next Thursday 14:00 local, with the proctor assigned."""
    operator = people["operator"]
    create_centre(operator)
    created = schedule(operator)
    assigned = operator.post(
        f"/staff/operations/sessions/{created}/proctors",
        {"proctor-email": people["proctor_email"]},
    )
    assert assigned.status_code == 302
    return created


def book(candidate: Browser, session_id: int) -> int:
    response = candidate.post(f"/sessions/{session_id}/book")
    assert response.status_code == 302 and response.headers["Location"].endswith("/bookings")
    html = candidate.get("/bookings").text
    return int(re.search(r'data-booking="(\d+)"', html).group(1))


def admission_number(app, booking_id: int) -> str:
    with app.app_context():
        return db.session.get(Booking, booking_id).admission_number


def audit_actions(app) -> list[str]:
    with app.app_context():
        return db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()


def check_in(proctor: Browser, session_id: int, number: str, id_number: str = ID_NUMBER, **extra):
    return proctor.post(
        f"/staff/proctor/sessions/{session_id}/check-in",
        {"admission_number": number, "id_document_number": id_number, "seat": "A-7", **extra},
    )


# ---- operators --------------------------------------------------------------------------


def test_operator_schedules_through_the_forms(app, people, session_id):
    """The local date and time at the centre become the UTC start; every step is audited."""
    with app.app_context():
        exam_session = db.session.get(ExamSession, session_id)
        assert exam_session.starts_at == NEXT_WEEK
        assert exam_session.status == "published" and exam_session.capacity == 20
        assert exam_session.results_release_at == dt.datetime(2026, 12, 10, 7, tzinfo=dt.UTC)
        assert exam_session.room.name == "A" and exam_session.late_minutes == 10
    actions = audit_actions(app)
    for action in ("centre.create", "room.create", "session.create", "session.assign_proctor"):
        assert action in actions
    operator = people["operator"]
    dashboard = operator.get("/staff/operations/").text
    assert f'data-session="{session_id}"' in dashboard and "0 / 20" in dashboard
    assert "data-heartbeat=" in dashboard
    html = operator.get(f"/staff/operations/sessions/{session_id}").text
    assert "2026-12-03 14:00 +05" in html and people["proctor_email"] in html


def test_dashboard_shows_the_scheduler_heartbeat(app, clock, people, monkeypatch):
    """Running, silent (stale) or never seen; "unknown" without the scheduler module."""
    from testing_center.operations.models import SchedulerHeartbeat

    operator = people["operator"]
    assert 'data-heartbeat="never"' in operator.get("/staff/operations/").text
    with app.app_context():
        db.session.add(
            SchedulerHeartbeat(name="main", host="web-1", pid=42, beat_at=clock(), details={})
        )
        db.session.commit()
    running = operator.get("/staff/operations/").text
    assert 'data-heartbeat="ok"' in running and "web-1" in running
    clock.advance(hours=1)
    assert 'data-heartbeat="stale"' in operator.get("/staff/operations/").text
    monkeypatch.setitem(sys.modules, "testing_center.operations.scheduler", None)
    assert 'data-heartbeat="unknown"' in operator.get("/staff/operations/").text


def test_dashboard_reports_e_mail_that_failed(app, clock, people):
    """Notices waiting for a retry, and notices given up after MAX_TRIES, are counted on
    the dashboard with the last error, so a broken mail server is not silent."""
    from testing_center.operations.models import Notification
    from testing_center.operations.notify import MAX_TRIES

    operator = people["operator"]
    assert "data-outbox=" not in operator.get("/staff/operations/").text
    with app.app_context():
        for tries in (2, MAX_TRIES, MAX_TRIES):
            db.session.add(
                Notification(
                    to_address="someone@example.test",
                    subject="s",
                    body="b",
                    kind="results_released",
                    created_at=clock(),
                    tries=tries,
                    last_error="SMTPAuthenticationError",
                )
            )
        db.session.commit()
    page = operator.get("/staff/operations/").text
    assert re.search(r'data-outbox="failed">[^<]*: 2 \(last error: SMTPAuthenticationError', page)
    assert re.search(r'data-outbox="retrying">[^<]*: 1 ', page)


def test_session_form_refuses_a_room_too_small(people):
    """A refused schedule shows the service's reason and creates nothing."""
    operator = people["operator"]
    create_centre(operator)
    html = operator.get("/staff/operations/sessions/new").text
    room_id = re.search(r'<option value="(\d+)">TAS · A', html).group(1)
    response = operator.post(
        "/staff/operations/sessions/new",
        {
            "exam": EXAM,
            "centre": "TAS",
            "room": room_id,
            "day": SESSION_DAY,
            "time": SESSION_TIME,
            "capacity": "31",
        },
    )
    assert response.status_code == 422
    assert "The room has only 30 seats." in response.text
    assert "No sessions." in operator.get("/staff/operations/sessions").text


def test_cancel_and_audit_log_filter(app, people, session_id):
    """Cancelling needs a reason; the audit log shows it, filtered by record."""
    operator = people["operator"]
    book(people["candidate"], session_id)
    no_reason = operator.post(f"/staff/operations/sessions/{session_id}/cancel", {})
    assert no_reason.status_code == 302
    cancelled = operator.post(
        f"/staff/operations/sessions/{session_id}/cancel", {"cancel-reason": "power works"}
    )
    assert cancelled.status_code == 302
    assert "Session cancelled; 1 candidates will be told by e-mail." in operator.flashes(
        f"/staff/operations/sessions/{session_id}"
    )
    log = operator.get(
        "/staff/operations/audit", query_string={"entity": "session", "entity_id": session_id}
    ).text
    assert "session.cancelled" in log and "power works" in log
    assert "centre.create" not in log
    bookings = people["candidate"].get("/bookings").text
    assert "cancelled this session" in bookings and "ticket-link" not in bookings


def test_csv_link_works_with_the_cookie_session(people, session_id):
    """The session page links the API's CSV, which the operator's cookie may download."""
    operator = people["operator"]
    html = operator.get(f"/staff/operations/sessions/{session_id}").text
    href = re.search(r'href="([^"]+)" id="bookings-csv"', html).group(1)
    assert href == f"/api/v1/sessions/{session_id}/bookings.csv"
    book(people["candidate"], session_id)
    csv = operator.get(href)
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.text.splitlines()[0].startswith("admission_number,full_name,status")
    assert len(csv.text.splitlines()) == 2
    roster = operator.get(f"/staff/operations/sessions/{session_id}/roster").text
    assert "booked" in roster


def test_operator_holds_a_seat_for_a_candidate(app, people, session_id):
    """A hold by e-mail takes a seat, and confirming it turns it into a booking."""
    operator = people["operator"]
    held = operator.post(
        f"/staff/operations/sessions/{session_id}/holds",
        {"hold-email": people["candidate_email"], "hold-minutes": "60"},
    )
    assert held.status_code == 302
    with app.app_context():
        booking = db.session.scalars(select(Booking)).one()
        assert booking.status == "held"
    operator.post(f"/staff/operations/bookings/{booking.id}/confirm")
    with app.app_context():
        assert db.session.get(Booking, booking.id).status == "confirmed"
    assert {"booking.hold", "booking.confirm"} <= set(audit_actions(app))


# ---- candidates -------------------------------------------------------------------------


def test_candidate_browses_books_and_sees_the_ticket(app, people, session_id):
    """Sessions are found by exam, city and date; a booking shows its admission number
    and the ticket link, and says plainly that there is no cancellation."""
    candidate = people["candidate"]
    listing = candidate.get(
        "/sessions", query_string={"exam": EXAM, "city": "tashkent", "date": SESSION_DAY}
    ).text
    assert f'data-session="{session_id}"' in listing and "20 seats left" in listing
    assert "Booking is open until" in listing
    other_day = candidate.get("/sessions", query_string={"date": "2026-12-04"}).text
    assert f'data-session="{session_id}"' not in other_day
    assert "Book a seat at a test centre" in candidate.get("/exams").text

    booking_id = book(candidate, session_id)
    number = admission_number(app, booking_id)
    html = candidate.get("/bookings").text
    assert number in html
    assert f'href="/api/v1/bookings/{booking_id}/admission.pdf"' in html
    assert "You cannot cancel a booking." in html
    assert "19 seats left" in candidate.get("/sessions").text


def test_booking_refusals_are_explained(app, clock, people, session_id, make_candidate):
    """Full, closed and same-day bookings are refused with a clear message."""
    operator, candidate = people["operator"], people["candidate"]
    small = schedule(operator, capacity=1, day="2026-12-04")
    book(candidate, small)
    someone = Browser(app, make_candidate().email)
    someone.post(f"/sessions/{small}/book")
    assert "This session is full." in someone.flashes("/sessions")
    same_day = schedule(operator, day="2026-12-04", time="16:00")
    candidate.post(f"/sessions/{same_day}/book")
    assert "You already have a seat on this day or at this time." in candidate.flashes("/sessions")
    with app.app_context():
        clock.current = db.session.get(ExamSession, session_id).booking_closes_at
    someone.post(f"/sessions/{session_id}/book")
    assert "Booking for this session has closed." in someone.flashes("/sessions")


def test_candidate_moves_a_booking(app, people, session_id):
    """A booking moves to another session of the same exam with free seats."""
    candidate = people["candidate"]
    later = schedule(people["operator"], day="2026-12-08")
    booking_id = book(candidate, session_id)
    html = candidate.get("/bookings").text
    assert f'name="move-{booking_id}-session_id"' in html
    moved = candidate.post(
        f"/bookings/{booking_id}/reschedule", {f"move-{booking_id}-session_id": str(later)}
    )
    assert moved.status_code == 302
    with app.app_context():
        old = db.session.get(Booking, booking_id)
        assert old.status == "moved"
        assert db.session.get(Booking, old.moved_to_id).session_id == later
    assert "Your booking was moved." in " ".join(candidate.flashes("/bookings"))


# ---- check-in, the console, the start -----------------------------------------------


def test_check_in_open_start_and_console(app, clock, people, session_id):
    """A wrong ID is refused with the reason; the proctor checks in, opens; the candidate
    starts from their bookings; the console and its roster JSON show the candidate."""
    proctor, candidate = people["proctor"], people["candidate"]
    booking_id = book(candidate, session_id)
    number = admission_number(app, booking_id)

    clock.current = NEXT_WEEK - dt.timedelta(hours=5)
    too_early = check_in(proctor, session_id, number)
    assert "Check-in has not opened yet." in too_early.text

    clock.current = NEXT_WEEK - dt.timedelta(minutes=30)
    wrong = check_in(proctor, session_id, number, id_number="ZZ9999999")
    assert "The ID document number does not match the candidate" in wrong.text
    photo = io.BytesIO()
    Image.new("RGB", (40, 50), "gray").save(photo, format="PNG")
    photo.seek(0)
    admitted = check_in(
        proctor,
        session_id,
        number.lower(),
        id_number="ab-1234567",
        photo=(photo, "face.png"),
    )
    assert admitted.status_code == 200
    assert 'id="admitted"' in admitted.text and "Checked in:" in admitted.text
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        assert booking.status == "checked_in" and booking.seat == "A-7"
        assert db.session.scalar(select(CandidatePhoto.booking_id)) == booking_id

    waiting = candidate.get("/bookings").text
    assert "start-exam" not in waiting and "when the proctor opens the session" in waiting
    clock.current = NEXT_WEEK
    opened = proctor.post(f"/staff/proctor/sessions/{session_id}/open")
    assert opened.status_code == 302
    assert "Start the exam" in candidate.get("/bookings").text
    started = candidate.post(f"/bookings/{booking_id}/start")
    assert started.status_code == 302 and "/attempts/" in started.headers["Location"]
    attempt_id = started.headers["Location"].rsplit("/", 1)[-1]
    assert candidate.get(f"/attempts/{attempt_id}").status_code == 200
    assert "Continue the exam" in candidate.get("/bookings").text

    console = proctor.get(f"/staff/proctor/sessions/{session_id}")
    assert console.status_code == 200
    assert number in console.text and "/static/js/console.js" in console.text
    assert f"/staff/proctor/sessions/{session_id}/attempts/{attempt_id}" in console.text
    roster = proctor.get(f"/api/v1/sessions/{session_id}/roster")
    assert roster.status_code == 200
    (row,) = roster.json
    assert row["admission_number"] == number and row["status"] == "in_progress"
    assert row["attempt_id"] == attempt_id and row["seat"] == "A-7"
    assert row["save_retries"] == 0 and 'class="save-retries"></td>' in console.text
    assert {"booking.check_in", "session.open"} <= set(audit_actions(app))

    with app.app_context():  # as the page reports them (tests/test_operations.py)
        attempt = db.session.get(Attempt, attempt_id)
        attempt.save_retries, attempt.save_trouble_at = 3, NEXT_WEEK + dt.timedelta(minutes=2)
        db.session.commit()
    console = proctor.get(f"/staff/proctor/sessions/{session_id}").text
    assert re.search(r'class="save-retries">3, last at [^<]*14:02', console)


@pytest.fixture
def started(app, clock, people, session_id) -> dict:
    """The candidate checked in and started; returns their booking and attempt ids."""
    candidate, proctor = people["candidate"], people["proctor"]
    booking_id = book(candidate, session_id)
    clock.current = NEXT_WEEK - dt.timedelta(minutes=20)
    check_in(proctor, session_id, admission_number(app, booking_id))
    clock.current = NEXT_WEEK
    proctor.post(f"/staff/proctor/sessions/{session_id}/open")
    response = candidate.post(f"/bookings/{booking_id}/start")
    return {"booking_id": booking_id, "attempt_id": response.headers["Location"].rsplit("/", 1)[-1]}


def test_console_forms_pause_resume_and_void(app, clock, people, session_id, started):
    """Pause, resume, extra time and void from the proctor's forms are audited with their
    reasons; void needs the confirmation."""
    proctor, candidate = people["proctor"], people["candidate"]
    attempt_id = started["attempt_id"]
    base = f"/staff/proctor/sessions/{session_id}/attempts/{attempt_id}"
    assert "Pause this candidate" in proctor.get(base).text

    clock.advance(minutes=3)
    assert proctor.post(f"{base}/pause", {"pause-reason": "toilet break"}).status_code == 302
    state = candidate.get(f"/api/v1/attempts/{attempt_id}").json
    assert state["paused"] is True
    assert "Resume this candidate" in proctor.get(base).text
    clock.advance(minutes=4)
    proctor.post(f"{base}/resume", {"resume-reason": "back"})
    assert candidate.get(f"/api/v1/attempts/{attempt_id}").json["paused"] is False

    proctor.post(f"{base}/extend", {"extend-minutes": "10", "extend-reason": "accommodation"})
    assert "requested by you" in proctor.get(base).text

    unconfirmed = proctor.post(f"{base}/void", {"void-reason": "phone"})
    assert unconfirmed.status_code == 302
    with app.app_context():
        assert db.session.get(Attempt, attempt_id).status == "in_progress"
    proctor.post(f"{base}/void", {"void-reason": "phone in hand", "void-confirm": "y"})
    with app.app_context():
        assert db.session.get(Attempt, attempt_id).status == "voided"
        entries = {
            e.action: e
            for e in db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "attempt"))
        }
    assert entries["attempt.pause"].reason == "toilet break"
    assert entries["attempt.resume"].reason == "back"
    assert entries["attempt.extend_request"].reason == "accommodation"
    assert entries["attempt.void"].reason == "phone in hand"
    results = candidate.get("/results").text
    assert "Void: no result" in results


def test_room_pause_incident_and_close(app, people, session_id, started):
    """Room-wide pause and resume, an incident with its category, then closing."""
    proctor = people["proctor"]
    base = f"/staff/proctor/sessions/{session_id}"
    proctor.post(f"{base}/pause", {"room-pause-reason": "fire alarm"})
    assert "1 candidates paused." in proctor.flashes(base)
    with app.app_context():
        assert db.session.get(Attempt, started["attempt_id"]).paused_at is not None
    proctor.post(f"{base}/resume", {"room-resume-reason": "all clear"})
    with app.app_context():
        assert db.session.get(Attempt, started["attempt_id"]).paused_at is None
    proctor.post(f"{base}/incidents", {"category": "technical", "text": "Screen froze at seat A-7"})
    assert "Screen froze at seat A-7" in proctor.get(base).text
    with app.app_context():
        assert db.session.scalar(select(Incident.category)) == "technical"
    proctor.post(f"{base}/close")
    with app.app_context():
        assert db.session.get(ExamSession, session_id).status == "closed"
    actions = audit_actions(app)
    assert {"incident.record", "session.closed"} <= set(actions)


def test_proctored_result_waits_for_release(app, people, session_id, started):
    """The results history lists the proctored attempt as not yet released."""
    candidate = people["candidate"]
    candidate.client.post(
        f"/api/v1/attempts/{started['attempt_id']}/finish", headers={"X-CSRFToken": candidate.token}
    )
    row = re.search(
        rf'data-attempt="{started["attempt_id"]}".*?</tr>', candidate.get("/results").text, re.S
    ).group(0)
    assert "Not yet released" in row and "At a test centre" in row


def test_late_arrival_is_refused_on_the_page(app, clock, people, session_id):
    """After the start plus the late minutes, check-in is refused and recorded."""
    booking_id = book(people["candidate"], session_id)
    clock.current = NEXT_WEEK + dt.timedelta(minutes=11)
    response = check_in(people["proctor"], session_id, admission_number(app, booking_id))
    assert "Check-in has closed: late arrivals are refused." in response.text
    with app.app_context():
        assert db.session.get(Booking, booking_id).status == "refused"


def test_other_proctors_and_candidates_are_kept_out(app, people, session_id, started, make_staff):
    """A proctor not assigned to the session gets 404 everywhere; candidates get 403."""
    stranger = Browser(app, make_staff(Role.PROCTOR).email)
    base = f"/staff/proctor/sessions/{session_id}"
    for url in (base, f"{base}/check-in", f"{base}/attempts/{started['attempt_id']}"):
        assert stranger.get(url).status_code == 404, url
    assert stranger.post(f"{base}/pause", {"room-pause-reason": "x"}).status_code == 404
    assert stranger.get(f"/api/v1/sessions/{session_id}/roster").status_code == 404
    assert f"/sessions/{session_id}" not in stranger.get("/staff/proctor/").text
    assert stranger.get("/staff/operations/").status_code == 403
    candidate = people["candidate"]
    assert candidate.get(base).status_code == 403
    assert candidate.get("/staff/operations/audit").status_code == 403
    assert people["proctor"].get("/sessions").status_code == 403


def test_forms_refuse_a_missing_csrf_token(app, people, session_id):
    """A page form posted without its token changes nothing."""
    response = people["operator"].client.post(
        f"/staff/operations/sessions/{session_id}/cancel", data={"cancel-reason": "x"}
    )
    assert response.status_code == 400
    with app.app_context():
        assert db.session.get(ExamSession, session_id).status == "published"


@pytest.mark.parametrize("lang", ["uz", "ru", "ja", "en"])
def test_every_page_renders_in_every_language(people, session_id, started, lang):
    """Each operations page answers 200 in each interface language."""
    base = f"/staff/proctor/sessions/{session_id}"
    pages = {
        "operator": [
            "/staff/operations/",
            "/staff/operations/centres",
            "/staff/operations/sessions",
            "/staff/operations/sessions/new",
            f"/staff/operations/sessions/{session_id}",
            f"/staff/operations/sessions/{session_id}/roster",
            "/staff/operations/audit",
        ],
        "proctor": [
            "/staff/proctor/",
            base,
            f"{base}/check-in",
            f"{base}/attempts/{started['attempt_id']}",
        ],
        "candidate": ["/sessions", "/bookings", "/results", "/exams"],
    }
    for who, urls in pages.items():
        person = people[who]
        person.post(f"/language/{lang}")
        for url in urls:
            response = person.get(url)
            assert response.status_code == 200, (who, url)
            assert f'<html lang="{lang}">' in response.text


def test_incident_categories_have_labels():
    """Every incident category of the service has a label on the form."""
    from testing_center.operations.forms import INCIDENT_LABELS

    assert tuple(INCIDENT_LABELS) == proctoring.INCIDENT_CATEGORIES


# ---- the exam page while paused (headless Chromium) ---------------------------------


def answered_refs(app, attempt_id: str) -> dict[str, object]:
    with app.app_context():
        return dict(
            db.session.execute(
                select(AttemptItem.ref, Response.value)
                .join(Response, Response.attempt_item_id == AttemptItem.id)
                .where(AttemptItem.attempt_id == attempt_id, Response.value.is_not(None))
            ).all()
        )


@pytest.fixture
def live_url(app) -> Iterator[str]:
    """The application served on a free local port (as in test_browser, without seeding)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def tab():
    """A page of headless Chromium (Debian's, as in test_browser)."""
    from playwright.sync_api import sync_playwright

    executable = ensure_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = chromium.new_context(locale="en-US")
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        chromium.close()


@pytest.mark.browser
def test_paused_overlay_keeps_answers_until_resumed(
    app, people, session_id, started, live_url, tab
):
    """Paused by the proctor, the exam page covers the test and stops its clock; an
    answer given as the pause began is kept and saved once the proctor resumes."""
    attempt_id = started["attempt_id"]
    tab.goto(f"{live_url}/login")
    tab.fill("#email", people["candidate_email"])
    tab.fill("#password", PASSWORD)
    tab.click("button.primary")
    tab.goto(f"{live_url}/attempts/{attempt_id}")
    wait_ready(tab)
    assert tab.is_hidden("#pause-overlay")

    base = f"/staff/proctor/sessions/{session_id}/attempts/{attempt_id}"
    people["proctor"].post(f"{base}/pause", {"pause-reason": "power cut"})
    tab.locator("#answer-area .option").first.click()  # the page does not know yet
    tab.wait_for_selector("#pause-overlay", state="visible")
    assert "Paused by the proctor" in tab.text_content("#pause-overlay")
    assert "answers are kept" in tab.text_content("#pause-overlay")
    shown = tab.text_content("#timer")
    tab.wait_for_timeout(1500)
    assert tab.text_content("#timer") == shown  # the clock stands still
    tab.keyboard.press("n")  # shortcuts do nothing under the overlay
    assert tab.text_content("#question-number") == "Question 1 of 4"
    assert answered_refs(app, attempt_id) == {}
    tab.reload()  # still paused after a reload, the answer still kept (localStorage)
    wait_ready(tab)
    assert tab.is_visible("#pause-overlay")

    people["proctor"].post(f"{base}/resume", {"resume-reason": "power back"})
    tab.wait_for_selector("#pause-overlay", state="hidden", timeout=15000)
    tab.wait_for_selector('#save-status[data-kind="saved"]', timeout=15000)
    assert set(answered_refs(app, attempt_id)) == {"q1"}
    assert tab.locator("#question-grid .cell.answered").count() == 1


@pytest.mark.browser
def test_live_roster_shows_saves_retried(app, people, session_id, started, live_url, tab):
    """The console's roster, redrawn from the API by its script, shows a seat whose page
    had to retry saves: how many, and when it last reported."""
    from playwright.sync_api import expect

    with app.app_context():
        attempt = db.session.get(Attempt, started["attempt_id"])
        attempt.save_retries, attempt.save_trouble_at = 3, NEXT_WEEK + dt.timedelta(minutes=2)
        db.session.commit()
    tab.goto(f"{live_url}/login")
    tab.fill("#email", people["proctor_email"])
    tab.fill("#password", PASSWORD)
    tab.click("button.primary")
    tab.goto(f"{live_url}/staff/proctor/sessions/{session_id}")
    # the script's own rendering: the time with seconds, in the centre's zone (waited
    # for with a locator: a function polled in the page is refused by the page's CSP)
    expect(tab.locator("#roster-body .save-retries")).to_have_text(
        re.compile(r"^3, last at \d\d:02:00"), timeout=30_000
    )
