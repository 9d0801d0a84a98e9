"""An exam day built through the application's own services: content, accounts, a
centre, sessions, bookings, check-ins, open sessions and API tokens.

Passwords are hashed with the production Argon2id costs, but every benchmark account
has the same password and the hash is computed once (``OnceHasher``): 10,000 hashes at
about 0.25 s of CPU each would take the setup alone 20 minutes on two cores. Logging
in still verifies that production-cost hash, so measured logins cost what real ones do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from flask import Flask

from benchmarks import stack
from testing_center import create_app
from testing_center.accounts.models import Role
from testing_center.accounts.services import (
    CandidateDetails,
    create_user,
    issue_token,
    register_candidate,
)
from testing_center.extensions import db
from testing_center.seed import seed_content

logger = logging.getLogger(__name__)

PASSWORD = "exam-day-benchmark-password"  # noqa: S105 - benchmark accounts only
EXAM = "jft-basic"
CENTRE = "BEN"
MAX_SESSION_CAPACITY = 5000  # one sitting per hall; several halls on a national day
TOKEN_TTL_SECONDS = 12 * 3600


class OnceHasher(PasswordHasher):
    """Hash each distinct password once (same salt for every account: benchmark only)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hashes: dict[str, str] = {}

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        key = password if isinstance(password, str) else password.decode()
        if key not in self._hashes:
            self._hashes[key] = super().hash(password)
        return self._hashes[key]


@dataclass(frozen=True)
class Candidate:
    user_id: int
    email: str
    booking_id: int
    token: str | None  # pre-issued; None for those who log in during the benchmark
    date_of_birth: dt.date


def setup_app(database_url: str, instance: str) -> Flask:
    """An application on the benchmark database with the production password costs."""
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "setup-" + "x" * 40,
            "MAIL_FOLDER": f"{instance}/mail",
        }
    )
    defaults = app.extensions["password_hasher"]
    app.extensions["password_hasher"] = OnceHasher(
        time_cost=defaults.time_cost,
        memory_cost=defaults.memory_cost,
        parallelism=defaults.parallelism,
    )
    return app


@contextlib.contextmanager
def migrated_app(server_url: str, prefix: str) -> Iterator[tuple[Flask, str, str]]:
    """For the benchmarks that run in process: a fresh database on ``server_url``,
    migrated as production is (``testing-center db upgrade``), and ``setup_app`` on it.
    Yields the app, the database URL and the instance folder; drops the database after."""
    with (
        tempfile.TemporaryDirectory(prefix=prefix) as folder,
        stack.fresh_database(server_url) as url,
    ):
        stack.cli(["db", "upgrade"], stack.app_environment(url, Path(folder)))
        yield setup_app(url, folder), url, folder


def build_exam_day(
    app: Flask,
    candidates: int,
    *,
    login_sample: int,
    now: dt.datetime,
    extra: int = 0,
    photo: bytes | None = None,
    progress: Callable[[str], None] = print,
    batch: int = 500,
) -> tuple[list[Candidate], list[Candidate]]:
    """Seed the bank and templates, then ``candidates + extra`` checked-in candidates in
    open sessions of the JFT-Basic-style exam starting shortly after ``now``.

    Bookings are made ten days before (when booking is open), check-in at ``now``. The
    first ``login_sample`` candidates get no token (they log in over HTTP); the others
    get one from ``issue_token``. Returns (exam-day candidates, extra candidates); the
    extra ones are the saturation runs' own attempts. ``photo`` is taken at check-in.
    """
    from testing_center.operations import services as ops
    from testing_center.operations.models import Booking, ExamSession

    booked_at = now - dt.timedelta(days=10)
    starts_at = now + dt.timedelta(minutes=10)
    total = candidates + extra
    with app.app_context():
        session = db.session
        report = seed_content(session, booked_at)
        session.commit()
        progress(f"seeded: {report.items.created} items, {report.templates_added} templates")
        operator = create_user(
            session, email="operator@bench.test", password=PASSWORD, role=Role.OPERATOR, now=now
        )
        ops.create_centre(
            session,
            actor=operator,
            code=CENTRE,
            name="Benchmark National Hall",
            city="Tashkent",
            address="1 Exam Day Street",
            timezone="Asia/Tashkent",
            now=booked_at,
        )
        sessions = []
        for first in range(0, total, MAX_SESSION_CAPACITY):
            sessions.append(
                ops.schedule_session(
                    session,
                    actor=operator,
                    exam_code=EXAM,
                    centre_code=CENTRE,
                    starts_at=starts_at,
                    capacity=min(MAX_SESSION_CAPACITY, total - first),
                    late_minutes=60,
                    publish=True,
                    now=booked_at - dt.timedelta(days=20),
                )
            )
        session.commit()
        session_ids = [s.id for s in sessions]
        made: list[Candidate] = []
        for number in range(total):
            details = CandidateDetails(
                email=f"candidate{number}@bench.test",
                password=PASSWORD,
                full_name=f"Bench Candidate {number}",
                date_of_birth=dt.date(1995, 1, 1) + dt.timedelta(days=number % 3000),
                nationality="UZ",
                id_document_number=f"BN{number:08d}",
            )
            user = register_candidate(session, details, booked_at)
            booking = ops.book_seat(
                session, user, session_ids[number // MAX_SESSION_CAPACITY], booked_at
            )
            token = None
            if number >= login_sample:
                token = issue_token(session, user, now, TOKEN_TTL_SECONDS).token
            made.append(Candidate(user.id, user.email, booking.id, token, details.date_of_birth))
            if (number + 1) % batch == 0:
                session.commit()
                progress(f"accounts and bookings: {number + 1}/{total}")
        session.commit()
        for number, candidate in enumerate(made):
            booking = session.get(Booking, candidate.booking_id)
            ops.check_in(
                session,
                actor=operator,
                booking=booking,
                id_document_number=f"BN{number:08d}",
                now=now,
                opens_before=dt.timedelta(hours=2),
                photo=photo,
            )
            if (number + 1) % batch == 0:
                session.commit()
                progress(f"check-ins: {number + 1}/{total}")
        session.commit()
        for session_id in session_ids:
            ops.open_session(session, session.get(ExamSession, session_id), operator, now)
        session.commit()
        db.engine.dispose()
    return made[:candidates], made[candidates:]


def portrait_jpeg(width: int = 600, height: int = 800) -> bytes:
    """A passport-like photo (a face-coloured oval on a plain ground), as taken at check-in."""
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (222, 230, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width * 0.25, height * 0.15, width * 0.75, height * 0.65), fill=(224, 186, 160))
    draw.rectangle((width * 0.15, height * 0.7, width * 0.85, height), fill=(40, 60, 90))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
