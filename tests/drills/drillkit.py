"""What the fault drills share: a throw-away PostgreSQL database, a proctored exam world
built through the services, the app server and scheduler as real processes, candidates
that save answers over HTTP and retry like the exam page, and a report of checks.

Each drill is a script (``python tests/drills/NAME.py``) that prints every check and
exits non-zero when one fails. The server is ``DRILL_DATABASE_URL`` (default: the local
PostgreSQL as ``postgres``); each drill creates its own database and drops it after.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from exam_templates.services import load_templates  # noqa: E402
from item_bank.bundle import Bundle  # noqa: E402
from item_bank.services import import_bundles  # noqa: E402
from testing_center import create_app  # noqa: E402
from testing_center.accounts.models import Role  # noqa: E402
from testing_center.accounts.services import (  # noqa: E402
    CandidateDetails,
    create_user,
    issue_token,
    register_candidate,
)
from testing_center.config import database_uri  # noqa: E402
from testing_center.extensions import MIGRATIONS_DIR, db  # noqa: E402

SERVER_URL = os.environ.get("DRILL_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET_KEY = "drill-secret-key-that-is-long-enough-0123456789"
EXAM = "drill-exam"
ITEMS = 12
DURATION_SECONDS = 1800
PASSWORD = "drill-password-2026"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---- report ---------------------------------------------------------------------------------


class Report:
    """Prints each check as it is made; ``done`` exits 1 if any failed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failures: list[str] = []
        self.started = time.monotonic()
        print(f"== drill: {name}", flush=True)

    def note(self, text: str) -> None:
        print(f"   {self.elapsed()} .. {text}", flush=True)

    def check(self, condition: bool, text: str) -> bool:
        print(f"   {self.elapsed()} {'ok  ' if condition else 'FAIL'} {text}", flush=True)
        if not condition:
            self.failures.append(text)
        return condition

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:5.1f}s"

    def done(self) -> None:
        took = time.monotonic() - self.started
        if self.failures:
            print(f"== {self.name}: {len(self.failures)} FAILED ({took:.1f} s)", flush=True)
            sys.exit(1)
        print(f"== {self.name}: all checks passed ({took:.1f} s)", flush=True)


# ---- database and app -----------------------------------------------------------------------


@contextlib.contextmanager
def temporary_database(label: str) -> Iterator[str]:
    """Create an empty database on the drill server, yield its URL, drop it after."""
    name = f"tc_drill_{label}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database_uri(SERVER_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        drop_database(admin, name)
        admin.dispose()


def drop_database(admin: sa.Engine, name: str) -> None:
    """Drop a drill database, waiting for the server if a drill restarted it."""
    for _ in range(30):
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except sa.exc.OperationalError:
            time.sleep(0.5)


def app_for(url: str, instance: Path):
    """The application in this process, on ``url``, with cheap password hashing."""
    os.environ["TESTING_CENTER_INSTANCE"] = str(instance)
    return create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "SQLALCHEMY_DATABASE_URI": url,
            "ARGON2_TIME_COST": 1,
            "ARGON2_MEMORY_COST_KIB": 64,
            "ARGON2_PARALLELISM": 1,
            "API_TOKEN_TTL_SECONDS": 30 * 24 * 3600,
            "MAIL_FOLDER": str(instance / "mail"),
        }
    )


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        db.engine.dispose()


def process_env(url: str, instance: Path) -> dict[str, str]:
    """The environment of the app server and scheduler processes."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "SECRET_KEY": SECRET_KEY,
        "TESTING_CENTER_ENV": "development",
        "TESTING_CENTER_INSTANCE": str(instance),
        "MAIL_FOLDER": str(instance / "mail"),
        "PYTHONUNBUFFERED": "1",
    }


# ---- the exam world -------------------------------------------------------------------------


def drill_bundle() -> Bundle:
    return Bundle(
        items=[
            {
                "ref": f"drill-{n}",
                "type": "single_choice",
                "exam_family": "drill",
                "level": "A2",
                "section": "all",
                "topic": "work",
                "stem": f"<p>問題 {n}</p>",
                "options": [{"id": k, "html": k} for k in "ABCD"],
                "key": "A",
            }
            for n in range(ITEMS)
        ],
        origin="drill",
    )


TEMPLATE = {
    "code": EXAM,
    "version": 1,
    "title": {"en": "Drill exam", "ja": "訓練試験"},
    "modes": ["practice", "proctored"],
    "clock": {"kind": "shared", "duration_seconds": DURATION_SECONDS},
    "shuffle": {"items": False, "options": False},
    "sections": [
        {
            "code": "all",
            "title": {"en": "All"},
            "select": {"exam_family": "drill", "section": "all", "count": ITEMS},
        }
    ],
    "scoring": {"rule": "percent", "pass_percent": 60},
}


@dataclass
class Seat:
    """One candidate of the world: what a client needs, and what checks look up."""

    user_id: int
    email: str
    token: str
    booking_id: int
    date_of_birth: dt.date


@dataclass
class World:
    session_id: int
    seats: list[Seat] = field(default_factory=list)
    operator_id: int = 0
    later_session_id: int | None = None
    later_bookings: int = 0


def build_world(
    app,
    *,
    candidates: int,
    starts_at: dt.datetime,
    results_release_at: dt.datetime | None = None,
    open_session: bool = True,
    later_session_at: dt.datetime | None = None,
    later_candidates: int = 0,
) -> World:
    """A bank, a template, a Tashkent centre, a session at ``starts_at`` with every
    candidate booked and checked in (through the services, with times in the past as
    the real day would have had them), opened when asked; optionally a later published
    session with other candidates booked (for reminders)."""
    from testing_center.operations import services as ops

    booked_at = min(starts_at, utcnow()) - dt.timedelta(days=12)
    with app.app_context():
        import_bundles(db.session, [drill_bundle()], status="approved", now=booked_at)
        load_templates(db.session, [TEMPLATE], now=booked_at)
        operator = create_user(
            db.session,
            email="operator@drill.test",
            password=PASSWORD,
            role=Role.OPERATOR,
            now=booked_at,
        )
        proctor = create_user(
            db.session,
            email="proctor@drill.test",
            password=PASSWORD,
            role=Role.PROCTOR,
            now=booked_at,
        )
        ops.create_centre(
            db.session,
            actor=operator,
            code="TAS",
            name="Tashkent Testing Centre",
            city="Tashkent",
            address="1 Amir Temur Street",
            timezone="Asia/Tashkent",
            now=booked_at,
        )
        exam_session = ops.schedule_session(
            db.session,
            actor=operator,
            exam_code=EXAM,
            centre_code="TAS",
            starts_at=starts_at,
            capacity=max(candidates, 1),
            results_release_at=results_release_at,
            publish=True,
            now=booked_at,
        )
        ops.assign_proctor(db.session, exam_session, operator, proctor, booked_at)
        world = World(session_id=exam_session.id, operator_id=operator.id)
        check_in_at = starts_at - dt.timedelta(minutes=30)
        for n in range(candidates):
            user, born = new_candidate(n, booked_at)
            booking = ops.book_seat(db.session, user, exam_session.id, booked_at)
            db.session.flush()
            ops.check_in(
                db.session,
                actor=proctor,
                booking=booking,
                id_document_number=f"AB{n:07d}",
                now=check_in_at,
                opens_before=dt.timedelta(hours=2),
                seat=f"A{n + 1}",
            )
            token = issue_token(db.session, user, booked_at, 30 * 24 * 3600).token
            world.seats.append(Seat(user.id, user.email, token, booking.id, born))
        if open_session:
            ops.open_session(db.session, exam_session, proctor, starts_at)
        if later_session_at is not None:
            later = ops.schedule_session(
                db.session,
                actor=operator,
                exam_code=EXAM,
                centre_code="TAS",
                starts_at=later_session_at,
                capacity=max(later_candidates, 1),
                publish=True,
                now=booked_at,
            )
            for n in range(candidates, candidates + later_candidates):
                user, _ = new_candidate(n, booked_at)
                ops.book_seat(db.session, user, later.id, booked_at)
            world.later_session_id = later.id
            world.later_bookings = later_candidates
        db.session.commit()
        db.engine.dispose()
    return world


def sit_exams(app, world: World, started_at: dt.datetime, seed: int = 1) -> None:
    """Every candidate of the world starts the sitting at ``started_at`` and has an
    answer stored for each item a minute later (some right, some wrong)."""
    from testing_center.accounts.models import User
    from testing_center.attempts.services import start_proctored

    chooser = random.Random(seed)  # noqa: S311 - made-up answers, not secrets
    saved_at = started_at + dt.timedelta(minutes=1)
    with app.app_context():
        for seat in world.seats:
            user = db.session.get(User, seat.user_id)
            attempt, _ = start_proctored(db.session, user, seat.booking_id, started_at)
            for item in attempt.items:  # stored as a save would store them, in one go
                item.response.value = chooser.choice("AAB")
                item.response.client_seq = 1
                item.response.saved_at = saved_at
        db.session.commit()
        db.engine.dispose()


def new_candidate(n: int, now: dt.datetime):
    born = dt.date(1990, 1, 1) + dt.timedelta(days=37 * n)
    details = CandidateDetails(
        email=f"candidate{n}@drill.test",
        password=PASSWORD,
        full_name=f"Drill Candidate {n}",
        date_of_birth=born,
        nationality="UZ",
        id_document_number=f"AB{n:07d}",
    )
    return register_candidate(db.session, details, now), born


# ---- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Process:
    """A child process in its own process group, so a kill reaches all of it (and only it)."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.popen: subprocess.Popen | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=REPO,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()

    def kill9(self) -> None:
        """SIGKILL the whole process group (a crash: no cleanup of any kind)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)
        self.popen = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill9()
        self.popen = None

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class AppServer(Process):
    """gunicorn serving ``testing_center:create_app()`` on a local port."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "testing_center:create_app()",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--preload",  # import the app once, then fork the workers
            "--timeout",
            "30",
            "--graceful-timeout",
            "2",
        ]
        super().__init__("gunicorn", command, env, log)

    def start(self, wait_seconds: float = 30) -> None:
        super().start()
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(Unreachable):
                if call(self.base_url, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            if not self.running:
                break
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not come up; see {self.log}")


def cli_command(*arguments: str) -> list[str]:
    """The ``testing-center`` console script, through this interpreter."""
    return [sys.executable, "-c", "from testing_center.cli import main; main()", *arguments]


# ---- HTTP clients ---------------------------------------------------------------------------


class Unreachable(Exception):
    """No HTTP answer: refused, reset, or the server died mid-request."""


def call(
    base_url: str,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    timeout: float = 10,
) -> tuple[int, Any, str]:
    """One request; returns (status, JSON body or None, content type)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            raw, status, kind = (
                response.read(),
                response.status,
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as error:
        raw, status, kind = error.read(), error.code, error.headers.get_content_type()
    except (urllib.error.URLError, OSError, ConnectionError) as error:
        raise Unreachable(str(error)) from error
    except Exception as error:  # http.client.RemoteDisconnected, IncompleteRead, ...
        raise Unreachable(type(error).__name__) from error
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed, kind


@dataclass
class Ack:
    value: str
    seq: int


class Candidate(threading.Thread):
    """A candidate's exam page: starts the sitting, then changes answers one by one,
    each with a rising client_seq, resending a save until the server acknowledges it
    (network errors, 5xx and 429 are retried with backoff, as ``player.js`` does)."""

    def __init__(
        self, seat: Seat, server: AppServer, stop: threading.Event, pause_seconds: float = 0.02
    ) -> None:
        super().__init__(daemon=True, name=f"candidate-{seat.user_id}")
        self.seat = seat
        self.server = server
        self.stop = stop
        self.pause_seconds = pause_seconds
        self.random = random.Random(seat.user_id)  # noqa: S311 - made-up answers
        self.attempt_id: str | None = None
        self.refs: list[str] = []
        self.seq = 0
        self.acked: dict[str, Ack] = {}
        self.acks = 0
        self.acks_at: list[float] = []
        self.retries = 0
        self.server_errors: list[tuple[int, Any, str]] = []
        self.refusals: list[tuple[int, Any]] = []
        self.first_deadline: str | None = None

    def request(self, method: str, path: str, body: Any = None, give_up_after: float = 60):
        """Send until answered with something other than a retryable failure."""
        delay, deadline = 0.05, time.monotonic() + give_up_after
        while True:
            try:
                status, data, kind = call(self.server.base_url, method, path, self.seat.token, body)
            except Unreachable:
                status, data, kind = 0, None, ""
            if status and status < 500 and status != 429:
                return status, data
            if status:
                self.server_errors.append((status, data, kind))
            self.retries += 1
            if time.monotonic() > deadline:
                raise RuntimeError(f"{method} {path}: no answer for {give_up_after} s")
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def begin(self) -> None:
        status, state = self.request(
            "POST", "/api/v1/attempts", {"booking_id": self.seat.booking_id}
        )
        if status not in (200, 201):
            raise RuntimeError(f"start refused: {status} {state}")
        self.attempt_id = state["id"]
        self.first_deadline = state["deadline_at"]
        self.refs = [item["ref"] for section in state["sections"] for item in section["items"]]

    def save(self, ref: str, value: str) -> None:
        self.seq += 1
        status, ack = self.request(
            "PUT",
            f"/api/v1/attempts/{self.attempt_id}/responses/{ref}",
            {"response": value, "client_seq": self.seq},
        )
        if status == 200 and ack["accepted"] and ack["client_seq"] == self.seq:
            self.acked[ref] = Ack(value, self.seq)
            self.acks += 1
            self.acks_at.append(time.monotonic())
        else:
            self.refusals.append((status, ack))

    def run(self) -> None:
        if self.attempt_id is None:
            self.begin()
        while not self.stop.is_set():
            self.save(self.random.choice(self.refs), self.random.choice("ABCD"))
            time.sleep(self.pause_seconds)

    def state(self) -> dict:
        status, state = self.request("GET", f"/api/v1/attempts/{self.attempt_id}")
        if status != 200:
            raise RuntimeError(f"state: {status} {state}")
        return state


def check_answers_kept(report: Report, candidates: list[Candidate]) -> None:
    """Every acknowledged answer is what the server now shows (value and client_seq)."""
    lost, compared = [], 0
    for candidate in candidates:
        state = candidate.state()
        shown = {item["ref"]: item for s in state["sections"] for item in s["items"]}
        for ref, ack in candidate.acked.items():
            compared += 1
            item = shown[ref]
            if item["response"] != ack.value or item["client_seq"] != ack.seq:
                lost.append((candidate.seat.email, ref, ack, item["response"], item["client_seq"]))
    report.check(
        not lost and compared > 0,
        f"every acknowledged answer is stored exactly "
        f"({compared} items compared, {len(lost)} differ)",
    )
    for entry in lost[:5]:
        report.note(f"differs: {entry}")


def check_clock(report: Report, candidates: list[Candidate]) -> None:
    """Remaining time comes from the server's deadline, unchanged by what happened."""
    problems = []
    for candidate in candidates:
        state = candidate.state()
        local = utcnow()
        deadline = dt.datetime.fromisoformat(state["deadline_at"])
        server_time = dt.datetime.fromisoformat(state["server_time"])
        expected = (deadline - server_time).total_seconds()
        if state["deadline_at"] != candidate.first_deadline:
            problems.append(f"deadline moved: {candidate.first_deadline} -> {state['deadline_at']}")
        if not expected - 1 <= state["remaining_seconds"] <= expected + 1:
            problems.append(f"remaining {state['remaining_seconds']} vs {expected:.0f}")
        if abs((server_time - local).total_seconds()) > 5:
            problems.append(f"server time {server_time} vs local {local}")
        if state["status"] != "in_progress":
            problems.append(f"status {state['status']}")
    report.check(
        not problems,
        "deadlines unchanged, remaining_seconds = deadline - server time, attempts in progress",
    )
    for problem in problems[:5]:
        report.note(problem)


@contextlib.contextmanager
def scratch_folder(label: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"tc-drill-{label}-") as folder:
        yield Path(folder)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
