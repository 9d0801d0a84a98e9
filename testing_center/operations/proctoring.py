"""Proctor actions on proctored attempts: pause and resume (one candidate or the room),
extra time with a second approver, void for misconduct, incidents, the live roster.

A pause stops the clock: while ``paused_at`` is set the attempt's clocks are read at
that instant (no section closes, no save is accepted), and resuming moves every
deadline still ahead by the length of the pause, so the candidate gets back exactly
the time they had. That is also how an interrupted candidate goes on at another seat:
pause, move, resume. Every action carries a reason and is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from testing_center.accounts.models import Role, User
from testing_center.attempts.models import (
    STARTED,
    Attempt,
    AttemptItem,
    AttemptStatus,
    FinishReason,
    Response,
    SectionStatus,
)
from testing_center.attempts.sections import current_section
from testing_center.attempts.services import attempt_not_found
from testing_center.errors import Conflict, Forbidden, InvalidInput, NotFound
from testing_center.i18n import N_
from testing_center.operations import audit
from testing_center.operations.models import (
    ACTIVE_BOOKING,
    Booking,
    BookingStatus,
    ExamSession,
    Incident,
    TimeExtension,
)
from testing_center.operations.services import session_for_staff

MAX_EXTENSION_SECONDS = 4 * 3600
INCIDENT_CATEGORIES = (
    "identity",  # the person is not who the ID says
    "cheating",  # notes, phone, talking, copying
    "disruption",
    "technical",  # a computer, the network, power
    "health",
    "other",
)
ATTEMPT_FIELDS = ("status", "deadline_at", "paused_at", "paused_seconds", "extra_seconds")


def attempt_for_staff(session: Session, user: User, attempt_id: str) -> Attempt:
    """Return a proctored attempt the staff member may act on (their session's)."""
    attempt = session.scalar(
        select(Attempt).where(Attempt.id == attempt_id, STARTED).with_for_update()
    )
    if attempt is None or attempt.booking_id is None:
        raise attempt_not_found()
    booking = session.get(Booking, attempt.booking_id)
    session_for_staff(session, user, booking.session_id)
    return attempt


def require_reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise InvalidInput(N_("Give a reason for this action."), code="reason_required")
    return reason.strip()[:500]


def require_running(attempt: Attempt, now: dt.datetime) -> None:
    if attempt.status != AttemptStatus.IN_PROGRESS or attempt.deadline_at <= now:
        raise Conflict(N_("This attempt is not in progress."), code="attempt_closed")


def log(session, actor, action, attempt, before, now, reason=None, after_extra=None):
    audit.record(
        session,
        actor=actor,
        action=action,
        entity="attempt",
        entity_id=attempt.id,
        now=now,
        before=before,
        after=audit.snapshot(attempt, ATTEMPT_FIELDS) | (after_extra or {}),
        reason=reason,
    )


def pause(session: Session, actor: User, attempt: Attempt, reason: str, now: dt.datetime):
    """Stop the candidate's clock now."""
    reason = require_reason(reason)
    require_running(attempt, now)
    if attempt.paused_at is not None:
        raise Conflict(N_("This attempt is already paused."), code="already_paused")
    before = audit.snapshot(attempt, ATTEMPT_FIELDS)
    attempt.paused_at = now
    log(session, actor, "attempt.pause", attempt, before, now, reason)
    session.flush()
    return attempt


def shift_clocks(attempt: Attempt, by: dt.timedelta) -> None:
    """Move every deadline and break end still ahead of the candidate by ``by``."""
    attempt.deadline_at += by
    for section in attempt.sections:
        if section.status == SectionStatus.FINISHED:
            continue
        if section.deadline_at is not None:
            section.deadline_at += by
        if section.available_at is not None and section.status == SectionStatus.BREAK:
            section.available_at += by


def resume(
    session: Session,
    actor: User,
    attempt: Attempt,
    reason: str,
    now: dt.datetime,
    seat: str | None = None,
):
    """Restart the clock with exactly the time the candidate had when paused, at the
    same seat or, after an interruption (a broken computer), at ``seat``."""
    reason = require_reason(reason)
    if attempt.status != AttemptStatus.IN_PROGRESS or attempt.paused_at is None:
        raise Conflict(N_("This attempt is not paused."), code="not_paused")
    before = audit.snapshot(attempt, ATTEMPT_FIELDS)
    paused_for = now - attempt.paused_at
    shift_clocks(attempt, paused_for)
    attempt.paused_seconds += int(paused_for.total_seconds())
    attempt.paused_at = None
    moved = {}
    if seat:
        booking = session.get(Booking, attempt.booking_id)
        moved = {"seat": {"from": booking.seat, "to": seat}}
        booking.seat = seat
    log(session, actor, "attempt.resume", attempt, before, now, reason, moved)
    session.flush()
    return attempt


def running_attempts(session: Session, exam_session: ExamSession) -> list[Attempt]:
    return list(
        session.scalars(
            select(Attempt)
            .join(Booking, Booking.id == Attempt.booking_id)
            .where(
                Booking.session_id == exam_session.id,
                Attempt.status == AttemptStatus.IN_PROGRESS,
            )
            .order_by(Attempt.id)
            .with_for_update(of=Attempt)
        )
    )


def pause_room(
    session: Session, actor: User, exam_session: ExamSession, reason: str, now: dt.datetime
) -> int:
    """Pause every running attempt of the session (a fire alarm, a power cut)."""
    paused = 0
    for attempt in running_attempts(session, exam_session):
        if attempt.paused_at is None and attempt.deadline_at > now:
            pause(session, actor, attempt, reason, now)
            paused += 1
    return paused


def resume_room(
    session: Session, actor: User, exam_session: ExamSession, reason: str, now: dt.datetime
) -> int:
    resumed = 0
    for attempt in running_attempts(session, exam_session):
        if attempt.paused_at is not None:
            resume(session, actor, attempt, reason, now)
            resumed += 1
    return resumed


def request_extension(
    session: Session, actor: User, attempt: Attempt, seconds: int, reason: str, now: dt.datetime
) -> TimeExtension:
    """Extra time (an accommodation): an operator's applies at once; a proctor's waits
    for a second person (another proctor of the session, or an operator)."""
    reason = require_reason(reason)
    if not 1 <= seconds <= MAX_EXTENSION_SECONDS:
        raise InvalidInput(
            N_("Extra time must be between 1 second and 4 hours."), code="invalid_seconds"
        )
    require_running(attempt, now)
    extension = TimeExtension(
        attempt_id=attempt.id,
        seconds=seconds,
        reason=reason,
        requested_by_id=actor.id,
        requested_at=now,
    )
    session.add(extension)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="attempt.extend_request",
        entity="attempt",
        entity_id=attempt.id,
        now=now,
        after={"extension": extension.id, "seconds": seconds},
        reason=reason,
    )
    if actor.role in (Role.OPERATOR, Role.ADMIN):
        apply_extension(session, actor, attempt, extension, now)
    return extension


def approve_extension(
    session: Session, actor: User, attempt: Attempt, extension_id: int, now: dt.datetime
) -> TimeExtension:
    extension = session.get(TimeExtension, extension_id)
    if extension is None or extension.attempt_id != attempt.id:
        raise NotFound(N_("There is no such request for extra time."), code="extension_not_found")
    if extension.approved_at is not None:
        raise Conflict(N_("This extra time was already approved."), code="already_approved")
    if extension.requested_by_id == actor.id:
        raise Forbidden(
            N_("Extra time needs a second person's approval."), code="second_approver_required"
        )
    require_running(attempt, now)
    apply_extension(session, actor, attempt, extension, now)
    return extension


def apply_extension(
    session: Session, actor: User, attempt: Attempt, extension: TimeExtension, now: dt.datetime
) -> None:
    """Give the attempt the extra time, and every section running on its clock with it.

    With free navigation all sections are open at once on the shared clock; extending
    only the first would close the others at the old deadline. Sections not started yet
    take their deadline from the attempt's when they start.
    """
    before = audit.snapshot(attempt, ATTEMPT_FIELDS)
    by = dt.timedelta(seconds=extension.seconds)
    attempt.deadline_at += by
    for section in attempt.sections:
        if section.status != SectionStatus.FINISHED and section.deadline_at is not None:
            section.deadline_at = min(section.deadline_at + by, attempt.deadline_at)
    attempt.extra_seconds += extension.seconds
    extension.approved_by_id = actor.id
    extension.approved_at = now
    log(session, actor, "attempt.extend", attempt, before, now, extension.reason)
    session.flush()


def void(session: Session, actor: User, attempt: Attempt, reason: str, now: dt.datetime):
    """End an attempt for misconduct: no score is released and no certificate issued."""
    reason = require_reason(reason)
    if attempt.status == AttemptStatus.VOIDED:
        raise Conflict(N_("This attempt is already void."), code="already_voided")
    before = audit.snapshot(attempt, ATTEMPT_FIELDS)
    attempt.status = AttemptStatus.VOIDED
    attempt.finish_reason = FinishReason.VOIDED
    attempt.finished_at = attempt.finished_at or now
    attempt.paused_at = None
    log(session, actor, "attempt.void", attempt, before, now, reason)
    session.flush()
    return attempt


def record_incident(
    session: Session,
    actor: User,
    exam_session: ExamSession,
    *,
    category: str,
    text: str,
    now: dt.datetime,
    booking: Booking | None = None,
    occurred_at: dt.datetime | None = None,
) -> Incident:
    if category not in INCIDENT_CATEGORIES:
        raise InvalidInput(N_("Unknown incident category."), code="invalid_category")
    if not text.strip():
        raise InvalidInput(N_("Describe what happened."), code="text_required")
    if booking is not None and booking.session_id != exam_session.id:
        raise NotFound(N_("There is no such booking."), code="booking_not_found")
    incident = Incident(
        session_id=exam_session.id,
        booking_id=booking.id if booking else None,
        category=category,
        text=text.strip()[:5000],
        occurred_at=occurred_at or now,
        recorded_by_id=actor.id,
    )
    session.add(incident)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="incident.record",
        entity="session",
        entity_id=exam_session.id,
        now=now,
        after={"incident": incident.id, "category": category},
    )
    return incident


@dataclass(frozen=True)
class RosterRow:
    """One seat of the session as the proctor sees it."""

    booking: Booking
    attempt: Attempt | None
    answered: int
    items: int
    last_activity_at: dt.datetime | None

    def status(self) -> str:
        if self.attempt is None:
            return self.booking.status
        if self.attempt.status == AttemptStatus.IN_PROGRESS and self.attempt.paused_at:
            return "paused"
        return self.attempt.status

    def remaining_seconds(self, now: dt.datetime) -> int | None:
        attempt = self.attempt
        if attempt is None or attempt.status != AttemptStatus.IN_PROGRESS:
            return None
        moment = attempt.paused_at or now
        section = current_section(attempt)
        deadline = section.deadline_at if section and section.deadline_at else attempt.deadline_at
        return max(0, int((deadline - moment).total_seconds()))

    def section(self) -> str | None:
        if self.attempt is None or self.attempt.status != AttemptStatus.IN_PROGRESS:
            return None
        section = current_section(self.attempt)
        return section.code if section else None


def roster(session: Session, exam_session: ExamSession) -> list[RosterRow]:
    """Every seat of the session with its attempt's progress, in three queries."""
    bookings = list(
        session.scalars(
            select(Booking)
            .where(
                Booking.session_id == exam_session.id,
                Booking.status.in_((*ACTIVE_BOOKING, BookingStatus.REFUSED)),
            )
            .order_by(Booking.id)
        )
    )
    attempts = {
        a.booking_id: a
        for a in session.scalars(
            select(Attempt).where(Attempt.booking_id.in_([b.id for b in bookings]), STARTED)
        )
    }
    progress: dict[str, list] = {a.id: [0, 0, None] for a in attempts.values()}
    for attempt_id, value, saved_at in session.execute(
        select(AttemptItem.attempt_id, Response.value, Response.saved_at)
        .join(Response, Response.attempt_item_id == AttemptItem.id)
        .where(AttemptItem.attempt_id.in_(list(progress)))
    ):  # JSON null and SQL NULL differ by database: count answers here, not in SQL
        entry = progress[attempt_id]
        entry[0] += value is not None
        entry[1] += 1
        if saved_at is not None and (entry[2] is None or saved_at > entry[2]):
            entry[2] = saved_at
    rows = []
    for booking in bookings:
        attempt = attempts.get(booking.id)
        answered, total, last = progress.get(attempt.id, (0, 0, None)) if attempt else (0, 0, None)
        rows.append(RosterRow(booking, attempt, answered, total, last))
    return rows
