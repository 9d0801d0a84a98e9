"""Shipped content and demo accounts, loaded idempotently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam_templates.services import BLUEPRINTS_DIR, load_templates, read_template_documents
from item_bank.media import process_media_cached
from item_bank.services import SAMPLES_DIR, ImportReport, import_bundles, read_yaml_bundle
from testing_center.accounts.models import Role, User
from testing_center.accounts.services import CandidateDetails, create_user, register_candidate

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - published demo credential, demo data only
DEMO_CANDIDATE = CandidateDetails(
    email="candidate@demo.test",
    password=DEMO_PASSWORD,
    full_name="Aziza Karimova",
    date_of_birth=dt.date(2000, 4, 12),
    nationality="UZ",
    id_document_number="FA1234567",
)


@dataclass(frozen=True)
class SeedReport:
    templates_added: int
    items: ImportReport


def seed_content(
    session: Session, now: dt.datetime, samples: Iterable[str] | None = None
) -> SeedReport:
    """Load the shipped templates and the sample bank (approved); repeating adds nothing.

    ``samples`` names sample files (without ``.yaml``) to load instead of all of them.
    """
    paths = sorted(SAMPLES_DIR.glob("*.yaml"))
    if samples is not None:
        paths = [SAMPLES_DIR / f"{name}.yaml" for name in samples]
    bundles = [read_yaml_bundle(path) for path in paths]
    items = import_bundles(
        session, bundles, status="approved", now=now, process=process_media_cached
    )
    added = load_templates(
        session, read_template_documents(sorted(BLUEPRINTS_DIR.glob("*.yaml"))), now=now
    )
    return SeedReport(templates_added=added, items=items)


def ensure_demo_accounts(session: Session, now: dt.datetime) -> list[tuple[str, str]]:
    """Create one demo account per role if missing; return (role, e-mail) pairs."""
    accounts = []
    for role in Role:
        email = DEMO_CANDIDATE.email if role is Role.CANDIDATE else f"{role.value}@demo.test"
        if session.scalar(select(User).where(User.email == email)) is None:
            if role is Role.CANDIDATE:
                register_candidate(session, DEMO_CANDIDATE, now)
            else:
                create_user(session, email=email, password=DEMO_PASSWORD, role=role, now=now)
        accounts.append((role.value, email))
    return accounts


DEMO_CENTRES = (
    ("TAS", "Tashkent Testing Centre", "Tashkent", "12 Amir Temur Avenue, Tashkent 100000"),
    ("SAM", "Samarkand Testing Centre", "Samarkand", "5 Registan Street, Samarkand 140100"),
    ("NAM", "Namangan Testing Centre", "Namangan", "21 Navoi Street, Namangan 160100"),
)
DEMO_EXAM = "jft-basic"


def ensure_demo_operations(session: Session, now: dt.datetime) -> int:
    """Demo centres with a room each, sessions to book in the weeks ahead, and one
    sitting later today with the demo candidate already booked, so the whole exam day
    (check-in, opening, start, proctoring) can be tried at once. Returns sessions added."""
    from testing_center.operations import services as ops
    from testing_center.operations.models import Centre, ExamSession

    operator = session.scalar(select(User).where(User.email == "operator@demo.test"))
    proctor = session.scalar(select(User).where(User.email == "proctor@demo.test"))
    candidate = session.scalar(select(User).where(User.email == DEMO_CANDIDATE.email))
    if operator is None or proctor is None or candidate is None:
        return 0
    for code, name, city, address in DEMO_CENTRES:
        if session.scalar(select(Centre.id).where(Centre.code == code)) is None:
            centre = ops.create_centre(
                session,
                actor=operator,
                code=code,
                name=name,
                city=city,
                address=address,
                timezone="Asia/Tashkent",
                now=now,
            )
            ops.add_room(session, actor=operator, centre=centre, name="Room 1", seats=30, now=now)
    if session.scalar(select(ExamSession.id).limit(1)) is not None:
        return 0
    today = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    zone = ZoneInfo("Asia/Tashkent")
    local_day = now.astimezone(zone).date()
    starts = [
        (code, dt.datetime.combine(local_day + dt.timedelta(days=days), dt.time(9), tzinfo=zone))
        for days in (8, 15)
        for code, *_ in DEMO_CENTRES
    ]
    added = 0
    for code, starts_at in [("TAS", today), *starts]:
        exam_session = ops.schedule_session(
            session,
            actor=operator,
            exam_code=DEMO_EXAM,
            centre_code=code,
            starts_at=starts_at,
            capacity=20,
            room_name="Room 1",
            late_minutes=15,
            publish=True,
            now=now,
        )
        ops.assign_proctor(session, exam_session, operator, proctor, now)
        added += 1
        if starts_at == today:  # the demo candidate's seat, booked before the window closed
            ops.take_seat(session, exam_session)
            ops.new_booking(session, candidate, exam_session, now)
    return added
