"""What the operations pages read: the dashboard's counts, a staff member's sessions,
the audit log as a staff member may see it, a candidate's bookings and attempts.

Read-only queries; every change goes through ``services`` and ``proctoring`` so that
the audit log records it. Access rules are the services' own (``centre_ids_of``,
``SessionProctor``): an operator tied to centres sees only theirs, a proctor only the
sessions they are assigned to.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import String, and_, cast, false, func, or_, select
from sqlalchemy.orm import Session

from exam_templates.blueprint import parse_blueprint
from exam_templates.models import ExamTemplate
from exam_templates.services import current_templates
from testing_center.accounts.models import CandidateProfile, Role, User
from testing_center.attempts.models import STARTED, Attempt, AttemptStatus
from testing_center.attempts.presenters import localized
from testing_center.operations.models import (
    AuditEntry,
    Booking,
    BookingStatus,
    Centre,
    ExamSession,
    Incident,
    Room,
    SessionProctor,
    SessionStatus,
    TimeExtension,
)
from testing_center.operations.proctoring import RosterRow, roster
from testing_center.operations.services import centre_ids_of, list_sessions

RECENT_DAYS = 7
AUDIT_PAGE_SIZE = 100


@dataclass(frozen=True)
class SessionSummary:
    """One session on the dashboard with its day's counts."""

    exam_session: ExamSession
    checked_in: int
    in_progress: int
    finished: int

    @property
    def results_released(self) -> bool:
        return self.exam_session.results_released_at is not None

    def day(self, now: dt.datetime) -> str:
        """``today``, ``upcoming`` or ``recent``, by the centre's calendar."""
        zone = zoneinfo.ZoneInfo(self.exam_session.centre.timezone)
        starts = self.exam_session.starts_at.astimezone(zone).date()
        today = now.astimezone(zone).date()
        if starts == today:
            return "today"
        return "upcoming" if starts > today else "recent"


def visible_sessions(session: Session, user: User):
    """A query of the sessions a staff member may see (centre access, or assignment)."""
    query = select(ExamSession)
    if user.role == Role.PROCTOR:
        return query.join(SessionProctor, SessionProctor.session_id == ExamSession.id).where(
            SessionProctor.user_id == user.id
        )
    allowed = centre_ids_of(session, user)
    if allowed is not None:
        query = query.where(ExamSession.centre_id.in_(allowed))
    return query


def session_counts(session: Session, session_ids: list[int]) -> dict[str, dict[int, int]]:
    """Check-ins, attempts in progress and finished attempts per session."""
    checked_in = dict(
        session.execute(
            select(Booking.session_id, func.count())
            .where(
                Booking.session_id.in_(session_ids),
                Booking.status == BookingStatus.CHECKED_IN,
            )
            .group_by(Booking.session_id)
        ).all()
    )
    by_status: dict[str, dict[int, int]] = {"in_progress": {}, "finished": {}}
    for session_id, status, number in session.execute(
        select(Booking.session_id, Attempt.status, func.count())
        .join(Attempt, Attempt.booking_id == Booking.id)
        .where(Booking.session_id.in_(session_ids), STARTED)
        .group_by(Booking.session_id, Attempt.status)
    ):
        key = "in_progress" if status == AttemptStatus.IN_PROGRESS else "finished"
        by_status[key][session_id] = by_status[key].get(session_id, 0) + number
    return {"checked_in": checked_in, **by_status}


def dashboard(session: Session, user: User, now: dt.datetime) -> list[SessionSummary]:
    """Sessions of the last week and to come, soonest first, with their counts."""
    sessions = list(
        session.scalars(
            visible_sessions(session, user)
            .where(ExamSession.starts_at >= now - dt.timedelta(days=RECENT_DAYS))
            .order_by(ExamSession.starts_at, ExamSession.id)
            .limit(300)
        )
    )
    counts = session_counts(session, [s.id for s in sessions])
    return [
        SessionSummary(
            s,
            counts["checked_in"].get(s.id, 0),
            counts["in_progress"].get(s.id, 0),
            counts["finished"].get(s.id, 0),
        )
        for s in sessions
    ]


def all_sessions(session: Session, user: User, status: str | None = None) -> list[ExamSession]:
    """Every session the operator may see, newest start first (the sessions page)."""
    query = visible_sessions(session, user).order_by(
        ExamSession.starts_at.desc(), ExamSession.id.desc()
    )
    if status:
        query = query.where(ExamSession.status == status)
    return list(session.scalars(query.limit(500)))


def proctor_sessions(session: Session, user: User, now: dt.datetime) -> list[ExamSession]:
    """The sessions a proctor works at (an operator: their centres'), from yesterday on."""
    return list(
        session.scalars(
            visible_sessions(session, user)
            .where(
                ExamSession.starts_at >= now - dt.timedelta(days=1),
                ExamSession.status.in_(
                    (SessionStatus.PUBLISHED, SessionStatus.OPEN, SessionStatus.CLOSED)
                ),
            )
            .order_by(ExamSession.starts_at, ExamSession.id)
            .limit(200)
        )
    )


def visible_centres(session: Session, user: User) -> list[Centre]:
    allowed = centre_ids_of(session, user)
    query = select(Centre).order_by(Centre.code)
    if allowed is not None:
        query = query.where(Centre.id.in_(allowed))
    return list(session.scalars(query))


# ---- the audit log --------------------------------------------------------------------


def audit_scope(allowed: set[int]):
    """The audit entries about the given centres and what belongs to them."""
    in_centres = ExamSession.centre_id.in_(allowed)
    sessions = select(cast(ExamSession.id, String)).where(in_centres)
    bookings = select(Booking.admission_number).join(ExamSession).where(in_centres)
    attempts = (
        select(Attempt.id)
        .join(Booking, Booking.id == Attempt.booking_id)
        .join(ExamSession, ExamSession.id == Booking.session_id)
        .where(in_centres)
    )
    centres = select(Centre.code).where(Centre.id.in_(allowed))
    rooms = select(cast(Room.id, String)).where(Room.centre_id.in_(allowed))
    scopes = {
        "session": sessions,
        "booking": bookings,
        "attempt": attempts,
        "centre": centres,
        "room": rooms,
    }
    return or_(
        false(),
        *(
            and_(AuditEntry.entity == entity, AuditEntry.entity_id.in_(ids))
            for entity, ids in scopes.items()
        ),
    )


def audit_entries(
    session: Session,
    user: User,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    page: int = 1,
) -> tuple[list[tuple[AuditEntry, str | None]], bool]:
    """Audit entries newest first with the actor's e-mail; whether there is a next page.

    Admins and operators of the national office (not tied to a centre) see every entry;
    an operator tied to centres sees the entries about those centres only.
    """
    query = (
        select(AuditEntry, User.email)
        .outerjoin(User, User.id == AuditEntry.actor_id)
        .order_by(AuditEntry.id.desc())
    )
    allowed = centre_ids_of(session, user)
    if allowed is not None:
        query = query.where(audit_scope(allowed))
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    rows = session.execute(
        query.offset((max(page, 1) - 1) * AUDIT_PAGE_SIZE).limit(AUDIT_PAGE_SIZE + 1)
    ).all()
    return [tuple(row) for row in rows[:AUDIT_PAGE_SIZE]], len(rows) > AUDIT_PAGE_SIZE


def audit_entities(session: Session) -> list[str]:
    return list(session.scalars(select(AuditEntry.entity).distinct().order_by(AuditEntry.entity)))


# ---- candidates -------------------------------------------------------------------------


@dataclass(frozen=True)
class CandidateBooking:
    """A booking as its candidate sees it, with the attempt started from it, if any."""

    booking: Booking
    attempt: Attempt | None
    targets: list[ExamSession]  # sessions it may move to now (empty: it cannot move)

    @property
    def has_ticket(self) -> bool:
        return self.booking.status in (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)

    @property
    def can_start(self) -> bool:
        """Checked in, the session open, and no finished attempt: the exam may start."""
        return (
            self.booking.status == BookingStatus.CHECKED_IN
            and self.booking.session.status == SessionStatus.OPEN
            and (self.attempt is None or self.attempt.status == AttemptStatus.IN_PROGRESS)
        )


def reschedule_targets(session: Session, booking: Booking, now: dt.datetime) -> list[ExamSession]:
    """Sessions of the same exam with a free seat and an open window, while this
    booking's own window is open too (the rules ``services.reschedule`` enforces)."""
    current = booking.session
    if booking.status != BookingStatus.CONFIRMED or now >= current.booking_closes_at:
        return []
    return [
        listing.exam_session
        for listing in list_sessions(session, now, exam_code=current.template.code)
        if listing.booking_open
        and listing.exam_session.seats_left > 0
        and listing.exam_session.id != current.id
    ]


def candidate_bookings(session: Session, user: User, now: dt.datetime) -> list[CandidateBooking]:
    """The candidate's bookings, newest first."""
    bookings = list(
        session.scalars(
            select(Booking).where(Booking.user_id == user.id).order_by(Booking.id.desc())
        )
    )
    attempts = {
        a.booking_id: a
        for a in session.scalars(
            select(Attempt).where(Attempt.booking_id.in_([b.id for b in bookings]), STARTED)
        )
    }
    return [
        CandidateBooking(b, attempts.get(b.id), reschedule_targets(session, b, now))
        for b in bookings
    ]


def candidate_attempts(session: Session, user: User) -> list[Attempt]:
    """Every attempt of the candidate, practice and proctored, newest first."""
    return list(
        session.scalars(
            select(Attempt)
            .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
            .where(Attempt.user_id == user.id, STARTED)
            .order_by(Attempt.started_at.desc())
            .limit(200)
        )
    )


# ---- exams and the roster -------------------------------------------------------------


def proctored_exams(session: Session, locale: str) -> list[tuple[str, str]]:
    """``(code, title)`` of the current templates given at test centres."""
    exams = []
    for template in current_templates(session):
        blueprint = parse_blueprint(template.definition)
        if "proctored" in blueprint.modes:
            exams.append((template.code, localized(blueprint.title, locale)))
    return exams


def exam_title(exam_session: ExamSession, locale: str) -> str:
    title = (exam_session.template.definition or {}).get("title") or {}
    return localized(title, locale) if isinstance(title, dict) else str(title)


@dataclass(frozen=True)
class RosterView:
    """The roster with the candidates' names and the extra time waiting for approval."""

    rows: list[RosterRow]
    names: dict[int, str]
    pending: dict[str, list[TimeExtension]]

    def name(self, row: RosterRow) -> str:
        return self.names.get(row.booking.user_id, "")

    def pending_for(self, row: RosterRow) -> list[TimeExtension]:
        return self.pending.get(row.attempt.id, []) if row.attempt else []


def roster_view(session: Session, exam_session: ExamSession) -> RosterView:
    rows = roster(session, exam_session)
    names = dict(
        session.execute(
            select(CandidateProfile.user_id, CandidateProfile.full_name).where(
                CandidateProfile.user_id.in_([row.booking.user_id for row in rows])
            )
        ).all()
    )
    pending: dict[str, list[TimeExtension]] = {}
    for extension in session.scalars(
        select(TimeExtension)
        .where(
            TimeExtension.attempt_id.in_([row.attempt.id for row in rows if row.attempt]),
            TimeExtension.approved_at.is_(None),
        )
        .order_by(TimeExtension.id)
    ):
        pending.setdefault(extension.attempt_id, []).append(extension)
    return RosterView(rows, names, pending)


def attempt_booking(session: Session, attempt: Attempt) -> Booking:
    return session.get(Booking, attempt.booking_id)


def session_incidents(session: Session, exam_session: ExamSession) -> list[Incident]:
    return list(
        session.scalars(
            select(Incident)
            .where(Incident.session_id == exam_session.id)
            .order_by(Incident.occurred_at.desc(), Incident.id.desc())
        )
    )
