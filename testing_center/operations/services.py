"""Centres, sessions and bookings: what operators schedule and candidates book.

Every operator action writes an audit entry in its own transaction. Seats are taken by
one conditional UPDATE of the session row (``seats_taken < capacity``), so however many
candidates book at the same instant, a session never holds more bookings than seats;
a candidate's own bookings are serialised by locking the candidate's row first, so two
requests of one person cannot both pass the overlap check.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certificates.codes import new_code, normalise
from exam_templates.blueprint import parse_blueprint
from exam_templates.models import ExamTemplate
from testing_center.accounts.models import Role, User
from testing_center.attempts.sections import attempt_duration
from testing_center.attempts.services import discard_prepared, prepare_form, template_for_code
from testing_center.errors import Conflict, Forbidden, InvalidInput, NotFound
from testing_center.i18n import N_
from testing_center.operations import audit
from testing_center.operations.calendar import booking_closes_at
from testing_center.operations.imagehash import difference_hash
from testing_center.operations.models import (
    ACTIVE_BOOKING,
    Booking,
    BookingStatus,
    Centre,
    CentreStaff,
    ExamSession,
    Holiday,
    Room,
    SessionStatus,
)
from testing_center.operations.notify import queue_notification

CENTRE_FIELDS = ("code", "name", "city", "address", "timezone")
SESSION_FIELDS = (
    "status",
    "starts_at",
    "capacity",
    "seats_taken",
    "room_id",
    "booking_closes_at",
    "late_minutes",
    "results_release_at",
)
BOOKABLE = (SessionStatus.PUBLISHED,)
LISTED = (SessionStatus.PUBLISHED, SessionStatus.OPEN)


# ---- centres ----------------------------------------------------------------------------


def create_centre(
    session: Session,
    *,
    actor: User,
    code: str,
    name: str,
    city: str,
    address: str,
    timezone: str,
    now: dt.datetime,
) -> Centre:
    """Add a testing centre; its code is unique and its time zone a known IANA name."""
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            N_("Unknown time zone %(zone)s."), code="invalid_timezone", zone=timezone
        ) from None
    if session.scalar(select(Centre.id).where(Centre.code == code)):
        raise Conflict(N_("A centre with this code exists."), code="centre_exists")
    centre = Centre(
        code=code, name=name, city=city, address=address, timezone=timezone, created_at=now
    )
    session.add(centre)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="centre.create",
        entity="centre",
        entity_id=centre.code,
        now=now,
        after=audit.snapshot(centre, CENTRE_FIELDS),
    )
    return centre


def centre_by_code(session: Session, code: str) -> Centre:
    centre = session.scalar(select(Centre).where(Centre.code == code))
    if centre is None:
        raise NotFound(N_("There is no centre with this code."), code="centre_not_found")
    return centre


def add_room(
    session: Session, *, actor: User, centre: Centre, name: str, seats: int, now: dt.datetime
) -> Room:
    check_centre_access(session, actor, centre.id)
    if seats < 1:
        raise InvalidInput(N_("A room needs at least one seat."), code="invalid_seats")
    room = Room(centre_id=centre.id, name=name, seats=seats)
    session.add(room)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(N_("The centre has a room with this name."), code="room_exists") from None
    audit.record(
        session,
        actor=actor,
        action="room.create",
        entity="room",
        entity_id=room.id,
        now=now,
        after={"centre": centre.code, "name": name, "seats": seats},
    )
    return room


def centre_ids_of(session: Session, user: User) -> set[int] | None:
    """The centres a staff member works for; None means every centre (admins, and
    operators not tied to a centre: the national office)."""
    if user.role == Role.ADMIN:
        return None
    ids = set(session.scalars(select(CentreStaff.centre_id).where(CentreStaff.user_id == user.id)))
    if user.role == Role.OPERATOR and not ids:
        return None
    return ids


def check_centre_access(session: Session, user: User, centre_id: int) -> None:
    allowed = centre_ids_of(session, user)
    if allowed is not None and centre_id not in allowed:
        raise NotFound(N_("There is no such session."), code="session_not_found")


def holidays_for(session: Session, centre_id: int) -> set[dt.date]:
    return set(
        session.scalars(
            select(Holiday.day).where(
                (Holiday.centre_id == centre_id) | Holiday.centre_id.is_(None)
            )
        )
    )


# ---- sessions ---------------------------------------------------------------------------


def schedule_session(
    session: Session,
    *,
    actor: User,
    exam_code: str,
    centre_code: str,
    starts_at: dt.datetime,
    capacity: int,
    now: dt.datetime,
    room_name: str | None = None,
    late_minutes: int = 0,
    results_release_at: dt.datetime | None = None,
    publish: bool = False,
) -> ExamSession:
    """Schedule a proctored sitting; booking closes by the centre's business days."""
    template = template_for_code(session, exam_code)
    if "proctored" not in parse_blueprint(template.definition).modes:
        raise InvalidInput(N_("This exam is not given at test centres."), code="exam_not_proctored")
    centre = centre_by_code(session, centre_code)
    check_centre_access(session, actor, centre.id)
    if starts_at <= now:
        raise InvalidInput(N_("A session must start in the future."), code="starts_in_past")
    room = None
    if room_name is not None:
        room = next((r for r in centre.rooms if r.name == room_name), None)
        if room is None:
            raise NotFound(N_("The centre has no room with this name."), code="room_not_found")
        if capacity > room.seats:
            raise InvalidInput(
                N_("The room has only %(seats)d seats."), code="room_too_small", seats=room.seats
            )
    if not 1 <= capacity <= 10_000:
        raise InvalidInput(N_("Capacity must be between 1 and 10000."), code="invalid_capacity")
    if results_release_at is not None and results_release_at < starts_at:
        raise InvalidInput(
            N_("Results cannot be released before the session."), code="invalid_release"
        )
    exam_session = ExamSession(
        template_id=template.id,
        centre_id=centre.id,
        room_id=room.id if room else None,
        starts_at=starts_at,
        capacity=capacity,
        seats_taken=0,
        status=SessionStatus.PUBLISHED if publish else SessionStatus.DRAFT,
        booking_closes_at=booking_closes_at(
            starts_at, centre.timezone, holidays_for(session, centre.id)
        ),
        late_minutes=late_minutes,
        results_release_at=results_release_at,
        created_at=now,
    )
    session.add(exam_session)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="session.create",
        entity="session",
        entity_id=exam_session.id,
        now=now,
        after={"exam": exam_code, "centre": centre_code}
        | audit.snapshot(exam_session, SESSION_FIELDS),
    )
    return exam_session


def session_for_staff(session: Session, user: User, session_id: int) -> ExamSession:
    """Return a session the staff member may act on; others look like missing ones."""
    exam_session = session.get(ExamSession, session_id)
    if exam_session is None:
        raise NotFound(N_("There is no such session."), code="session_not_found")
    if user.role == Role.PROCTOR:
        if user not in exam_session.proctors:
            raise NotFound(N_("There is no such session."), code="session_not_found")
    else:
        check_centre_access(session, user, exam_session.centre_id)
    return exam_session


def change_status(
    session: Session,
    exam_session: ExamSession,
    *,
    actor: User | None,
    to: SessionStatus,
    allowed_from: tuple[SessionStatus, ...],
    now: dt.datetime,
    reason: str | None = None,
) -> ExamSession:
    """Move a session through its life cycle, refusing a step from the wrong state."""
    if exam_session.status not in allowed_from:
        raise Conflict(
            N_("The session is %(status)s; this step is not possible now."),
            code="session_state",
            status=exam_session.status,
        )
    before = audit.snapshot(exam_session, SESSION_FIELDS)
    exam_session.status = to
    stamp = {SessionStatus.OPEN: "opened_at", SessionStatus.CLOSED: "closed_at"}.get(to)
    if stamp:
        setattr(exam_session, stamp, now)
    audit.record(
        session,
        actor=actor,
        action=f"session.{to.value}",
        entity="session",
        entity_id=exam_session.id,
        now=now,
        before=before,
        after=audit.snapshot(exam_session, SESSION_FIELDS),
        reason=reason,
    )
    session.flush()
    return exam_session


def publish_session(session: Session, exam_session: ExamSession, actor: User, now: dt.datetime):
    return change_status(
        session,
        exam_session,
        actor=actor,
        to=SessionStatus.PUBLISHED,
        allowed_from=(SessionStatus.DRAFT,),
        now=now,
    )


def open_session(session: Session, exam_session: ExamSession, actor: User | None, now):
    """Open the sitting: checked-in candidates may start from now on."""
    return change_status(
        session,
        exam_session,
        actor=actor,
        to=SessionStatus.OPEN,
        allowed_from=(SessionStatus.PUBLISHED,),
        now=now,
    )


def close_session(session: Session, exam_session: ExamSession, actor: User | None, now):
    """Close the sitting: no new starts; attempts under way run to their deadlines, and
    the forms prepared for candidates who never started are deleted."""
    change_status(
        session,
        exam_session,
        actor=actor,
        to=SessionStatus.CLOSED,
        allowed_from=(SessionStatus.OPEN, SessionStatus.PUBLISHED),
        now=now,
    )
    discard_prepared(session, select(Booking.id).where(Booking.session_id == exam_session.id))
    return exam_session


def cancel_session(
    session: Session, exam_session: ExamSession, actor: User, reason: str, now: dt.datetime
) -> int:
    """Cancel a session: seats are released and every booked candidate is told.

    Returns how many bookings were cancelled.
    """
    if not reason.strip():
        raise InvalidInput(N_("Say why the session is cancelled."), code="reason_required")
    change_status(
        session,
        exam_session,
        actor=actor,
        to=SessionStatus.CANCELLED,
        allowed_from=(SessionStatus.DRAFT, SessionStatus.PUBLISHED),
        now=now,
        reason=reason,
    )
    exam_session.cancelled_at = now
    bookings = live_bookings(session, exam_session.id)
    for booking in bookings:
        booking.status = BookingStatus.CANCELLED
        queue_notification(
            session,
            booking.user,
            "session_cancelled",
            now,
            exam=exam_session.template.code,
            starts=local_time(exam_session),
            centre=exam_session.centre.name,
            admission_number=booking.admission_number,
        )
    exam_session.seats_taken = 0
    session.flush()
    discard_prepared(session, [booking.id for booking in bookings])
    return len(bookings)


def move_session(
    session: Session,
    exam_session: ExamSession,
    actor: User,
    *,
    starts_at: dt.datetime,
    reason: str,
    now: dt.datetime,
) -> ExamSession:
    """Move a session to another time; the booking window follows and candidates are told."""
    if exam_session.status not in (SessionStatus.DRAFT, SessionStatus.PUBLISHED):
        raise Conflict(N_("Only a session not yet open can be moved."), code="session_state")
    if starts_at <= now:
        raise InvalidInput(N_("A session must start in the future."), code="starts_in_past")
    before = audit.snapshot(exam_session, SESSION_FIELDS)
    exam_session.starts_at = starts_at
    exam_session.reminder_sent_at = None  # remind again before the new date
    exam_session.booking_closes_at = booking_closes_at(
        starts_at, exam_session.centre.timezone, holidays_for(session, exam_session.centre_id)
    )
    for booking in live_bookings(session, exam_session.id):
        queue_notification(
            session,
            booking.user,
            "session_moved",
            now,
            exam=exam_session.template.code,
            starts=local_time(exam_session),
            centre=exam_session.centre.name,
            admission_number=booking.admission_number,
        )
    audit.record(
        session,
        actor=actor,
        action="session.move",
        entity="session",
        entity_id=exam_session.id,
        now=now,
        before=before,
        after=audit.snapshot(exam_session, SESSION_FIELDS),
        reason=reason,
    )
    session.flush()
    return exam_session


def assign_proctor(
    session: Session, exam_session: ExamSession, actor: User, proctor: User, now: dt.datetime
) -> None:
    if proctor.role != Role.PROCTOR:
        raise InvalidInput(N_("This account is not a proctor."), code="not_a_proctor")
    if proctor not in exam_session.proctors:
        exam_session.proctors.append(proctor)
        audit.record(
            session,
            actor=actor,
            action="session.assign_proctor",
            entity="session",
            entity_id=exam_session.id,
            now=now,
            after={"proctor": proctor.email},
        )
    session.flush()


def local_time(exam_session: ExamSession) -> str:
    """The session's start as people at the centre read it."""
    zone = zoneinfo.ZoneInfo(exam_session.centre.timezone)
    return exam_session.starts_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def live_bookings(session: Session, session_id: int) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .where(Booking.session_id == session_id, Booking.status.in_(ACTIVE_BOOKING))
            .order_by(Booking.id)
        )
    )


@dataclass(frozen=True)
class SessionListing:
    exam_session: ExamSession
    booking_open: bool


def list_sessions(
    session: Session,
    now: dt.datetime,
    *,
    exam_code: str | None = None,
    city: str | None = None,
    starts_from: dt.datetime | None = None,
    starts_to: dt.datetime | None = None,
) -> list[SessionListing]:
    """Published sessions still to come, soonest first, with seats left."""
    query = (
        select(ExamSession)
        .join(ExamTemplate, ExamTemplate.id == ExamSession.template_id)
        .join(Centre, Centre.id == ExamSession.centre_id)
        .where(ExamSession.status.in_(LISTED), ExamSession.starts_at > now)
        .order_by(ExamSession.starts_at, ExamSession.id)
    )
    if exam_code:
        query = query.where(ExamTemplate.code == exam_code)
    if city:
        query = query.where(func.lower(Centre.city) == city.strip().lower())
    if starts_from:
        query = query.where(ExamSession.starts_at >= starts_from)
    if starts_to:
        query = query.where(ExamSession.starts_at < starts_to)
    return [
        SessionListing(s, s.status in BOOKABLE and now < s.booking_closes_at)
        for s in session.scalars(query.limit(500))
    ]


# ---- bookings ---------------------------------------------------------------------------


def lock_candidate(session: Session, user: User) -> None:
    """Serialise one candidate's booking steps (row lock on PostgreSQL; SQLite has one
    writer at a time anyway)."""
    session.execute(select(User.id).where(User.id == user.id).with_for_update())


def bookable_session(session: Session, session_id: int, now: dt.datetime) -> ExamSession:
    exam_session = session.get(ExamSession, session_id)
    if exam_session is None or exam_session.status == SessionStatus.DRAFT:
        raise NotFound(N_("There is no such session."), code="session_not_found")
    if exam_session.status not in BOOKABLE or now >= exam_session.booking_closes_at:
        raise Conflict(N_("Booking for this session has closed."), code="booking_closed")
    return exam_session


def check_no_overlap(
    session: Session, user: User, exam_session: ExamSession, ignore: Booking | None = None
) -> None:
    """A candidate cannot hold two seats on one exam day or in overlapping sessions."""
    zone = zoneinfo.ZoneInfo(exam_session.centre.timezone)
    day = exam_session.starts_at.astimezone(zone).date()
    length = attempt_duration(parse_blueprint(exam_session.template.definition))
    for other in session.scalars(
        select(ExamSession)
        .join(Booking, Booking.session_id == ExamSession.id)
        .where(Booking.user_id == user.id, Booking.status.in_(ACTIVE_BOOKING))
    ):
        if ignore is not None and other.id == ignore.session_id:
            continue
        other_length = attempt_duration(parse_blueprint(other.template.definition))
        same_day = other.starts_at.astimezone(zone).date() == day
        overlaps = (
            other.starts_at < exam_session.starts_at + length
            and exam_session.starts_at < other.starts_at + other_length
        )
        if same_day or overlaps:
            raise Conflict(
                N_("You already have a seat on this day or at this time."),
                code="booking_conflict",
            )


def take_seat(session: Session, exam_session: ExamSession) -> None:
    """Take one seat with a single conditional UPDATE, or refuse: the session is full."""
    taken = session.execute(
        update(ExamSession)
        .where(
            ExamSession.id == exam_session.id,
            ExamSession.seats_taken < ExamSession.capacity,
            ExamSession.status.in_(BOOKABLE),
        )
        .values(seats_taken=ExamSession.seats_taken + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not taken:
        raise Conflict(N_("This session is full."), code="session_full")
    session.refresh(exam_session)


def release_seat(session: Session, exam_session_id: int) -> None:
    session.execute(
        update(ExamSession)
        .where(ExamSession.id == exam_session_id, ExamSession.seats_taken > 0)
        .values(seats_taken=ExamSession.seats_taken - 1)
        .execution_options(synchronize_session=False)
    )


def new_booking(
    session: Session,
    user: User,
    exam_session: ExamSession,
    now: dt.datetime,
    status: BookingStatus = BookingStatus.CONFIRMED,
    hold_expires_at: dt.datetime | None = None,
) -> Booking:
    booking = Booking(
        session_id=exam_session.id,
        user_id=user.id,
        admission_number=new_code(exam_session.centre.code[:3].upper()),
        status=status,
        hold_expires_at=hold_expires_at,
        booked_at=now,
    )
    session.add(booking)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            N_("You already have a seat in this session."), code="already_booked"
        ) from None
    return booking


def book_seat(session: Session, user: User, session_id: int, now: dt.datetime) -> Booking:
    """Book a seat for the candidate; ``session_full`` when none is left."""
    if user.role != Role.CANDIDATE:
        raise Forbidden(N_("Only candidates book seats."), code="forbidden")
    lock_candidate(session, user)
    exam_session = bookable_session(session, session_id, now)
    check_no_overlap(session, user, exam_session)
    take_seat(session, exam_session)
    booking = new_booking(session, user, exam_session, now)
    queue_notification(
        session,
        user,
        "booking_confirmed",
        now,
        exam=exam_session.template.code,
        starts=local_time(exam_session),
        centre=f"{exam_session.centre.name}, {exam_session.centre.address}",
        admission_number=booking.admission_number,
    )
    return booking


def candidate_booking(session: Session, user: User, booking_id: int) -> Booking:
    booking = session.get(Booking, booking_id)
    if booking is None or booking.user_id != user.id:
        raise NotFound(N_("There is no such booking."), code="booking_not_found")
    return booking


def reschedule(
    session: Session, user: User, booking_id: int, new_session_id: int, now: dt.datetime
) -> Booking:
    """Move a booking into another session of the same exam with a free seat, while both
    sessions' booking windows are open. There are no cancellations (FIELD.md)."""
    lock_candidate(session, user)
    booking = candidate_booking(session, user, booking_id)
    if booking.status != BookingStatus.CONFIRMED:
        raise Conflict(N_("This booking cannot be changed."), code="booking_not_changeable")
    current = booking.session
    if now >= current.booking_closes_at:
        raise Conflict(N_("Changes for this session have closed."), code="changes_closed")
    target = bookable_session(session, new_session_id, now)
    if target.id == current.id:
        raise Conflict(N_("The booking is already in this session."), code="same_session")
    if target.template.code != current.template.code:
        raise InvalidInput(
            N_("A booking can only move to a session of the same exam."), code="other_exam"
        )
    check_no_overlap(session, user, target, ignore=booking)
    take_seat(session, target)
    booking.status = BookingStatus.MOVED
    session.flush()
    moved = new_booking(session, user, target, now)
    booking.moved_to_id = moved.id
    release_seat(session, current.id)
    queue_notification(
        session,
        user,
        "booking_moved",
        now,
        exam=target.template.code,
        starts=local_time(target),
        centre=f"{target.centre.name}, {target.centre.address}",
        admission_number=moved.admission_number,
    )
    session.flush()
    return moved


def hold_seat(
    session: Session,
    *,
    actor: User,
    exam_session: ExamSession,
    candidate: User,
    minutes: int,
    now: dt.datetime,
) -> Booking:
    """Reserve a seat for a candidate (an agency's group, a training programme) that
    expires unless confirmed; the scheduler releases expired holds."""
    check_centre_access(session, actor, exam_session.centre_id)
    if candidate.role != Role.CANDIDATE:
        raise InvalidInput(N_("Seats are held for candidates only."), code="not_a_candidate")
    if not 1 <= minutes <= 60 * 24 * 14:
        raise InvalidInput(N_("A hold lasts from 1 minute to 14 days."), code="invalid_hold")
    lock_candidate(session, candidate)
    exam_session = bookable_session(session, exam_session.id, now)
    check_no_overlap(session, candidate, exam_session)
    take_seat(session, exam_session)
    booking = new_booking(
        session,
        candidate,
        exam_session,
        now,
        BookingStatus.HELD,
        now + dt.timedelta(minutes=minutes),
    )
    audit.record(
        session,
        actor=actor,
        action="booking.hold",
        entity="booking",
        entity_id=booking.admission_number,
        now=now,
        # the account id, not the e-mail: an erased account leaves no address behind
        after={"candidate_id": candidate.id, "expires": booking.hold_expires_at.isoformat()},
    )
    return booking


def confirm_hold(session: Session, booking: Booking, actor: User, now: dt.datetime) -> Booking:
    if booking.status != BookingStatus.HELD or booking.hold_expires_at <= now:
        raise Conflict(N_("This hold has expired or was confirmed."), code="hold_not_active")
    booking.status = BookingStatus.CONFIRMED
    booking.hold_expires_at = None
    audit.record(
        session,
        actor=actor,
        action="booking.confirm",
        entity="booking",
        entity_id=booking.admission_number,
        now=now,
    )
    session.flush()
    return booking


def expire_holds(session: Session, now: dt.datetime) -> int:
    """Release the seats of holds not confirmed in time (idempotent)."""
    expired = 0
    for booking in session.scalars(
        select(Booking)
        .where(Booking.status == BookingStatus.HELD, Booking.hold_expires_at <= now)
        .with_for_update(skip_locked=True)
    ):
        booking.status = BookingStatus.EXPIRED
        release_seat(session, booking.session_id)
        audit.record(
            session,
            actor=None,
            action="booking.expire",
            entity="booking",
            entity_id=booking.admission_number,
            now=now,
        )
        expired += 1
    session.flush()
    return expired


def booking_by_admission(session: Session, admission_number: str) -> Booking:
    booking = session.scalar(
        select(Booking).where(Booking.admission_number == normalise(admission_number))
    )
    if booking is None:
        raise NotFound(
            N_("There is no booking with this admission number."), code="booking_not_found"
        )
    return booking


# ---- check-in ---------------------------------------------------------------------------

RECOMMENDED_ARRIVAL = dt.timedelta(minutes=15)
MAX_PHOTO_BYTES = 5 * 1024 * 1024
PHOTO_MAX_SIDE = 1200


def same_document_number(typed: str, on_file: str) -> bool:
    """Compare ID numbers as people write them: case, spaces and hyphens do not count."""

    def canonical(text: str) -> str:
        return "".join(c for c in text.upper() if c.isalnum())

    return bool(typed) and canonical(typed) == canonical(on_file)


def clean_photo(data: bytes) -> bytes:
    """Return the photo re-encoded as a JPEG of at most 1200 px a side (no metadata kept:
    no location, no camera details), or refuse what is not a JPEG or PNG image."""
    import io

    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_PHOTO_BYTES:
        raise InvalidInput(N_("The photo is larger than 5 MB."), code="photo_too_large")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG") or image.width * image.height > 40_000_000:
                raise InvalidInput(N_("The photo must be a JPEG or PNG image."), code="bad_photo")
            image.thumbnail((PHOTO_MAX_SIDE, PHOTO_MAX_SIDE))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=85)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise InvalidInput(N_("The photo must be a JPEG or PNG image."), code="bad_photo") from None
    return buffer.getvalue()


def check_in(
    session: Session,
    *,
    actor: User,
    booking: Booking,
    id_document_number: str,
    now: dt.datetime,
    opens_before: dt.timedelta,
    photo: bytes | None = None,
    seat: str | None = None,
) -> Booking:
    """Admit a candidate: the ID document matches the profile and they are on time.

    A candidate arriving after the cut-off (the start plus the session's late minutes)
    is refused; the refusal is recorded on the booking (status ``refused``), which the
    caller reports as an error after committing it. An admitted candidate's form is
    assembled and written now, so that the start only sets its clocks
    (``attempts.services.prepare_form``).
    """
    from testing_center.accounts.models import CandidateProfile
    from testing_center.operations.models import CandidatePhoto

    exam_session = session_for_staff(session, actor, booking.session_id)
    if booking.status == BookingStatus.CHECKED_IN:
        raise Conflict(N_("This candidate is already checked in."), code="already_checked_in")
    if booking.status != BookingStatus.CONFIRMED:
        raise Conflict(N_("This booking is not valid for admission."), code="booking_not_valid")
    if exam_session.status not in (SessionStatus.PUBLISHED, SessionStatus.OPEN):
        raise Conflict(N_("This session is not taking place."), code="session_state")
    if now < exam_session.starts_at - opens_before:
        raise Conflict(N_("Check-in has not opened yet."), code="check_in_not_open")
    before = audit.snapshot(booking, ("status", "checked_in_at"))
    if now > exam_session.starts_at + dt.timedelta(minutes=exam_session.late_minutes):
        booking.status = BookingStatus.REFUSED
        audit.record(
            session,
            actor=actor,
            action="booking.refuse_late",
            entity="booking",
            entity_id=booking.admission_number,
            now=now,
            before=before,
            after=audit.snapshot(booking, ("status",)),
        )
        session.flush()
        return booking
    profile = session.get(CandidateProfile, booking.user_id)
    if profile is None or not same_document_number(id_document_number, profile.id_document_number):
        raise InvalidInput(
            N_("The ID document number does not match the candidate's profile."),
            code="id_mismatch",
        )
    if photo is not None:
        cleaned = clean_photo(photo)
        session.add(
            CandidatePhoto(
                user_id=booking.user_id,
                booking_id=booking.id,
                mime_type="image/jpeg",
                data=cleaned,
                taken_at=now,
                taken_by_id=actor.id,
                image_hash=difference_hash(cleaned),
            )
        )
    booking.status = BookingStatus.CHECKED_IN
    booking.checked_in_at = now
    booking.checked_in_by_id = actor.id
    booking.arrived_late = now > exam_session.starts_at - RECOMMENDED_ARRIVAL
    booking.seat = seat
    audit.record(
        session,
        actor=actor,
        action="booking.check_in",
        entity="booking",
        entity_id=booking.admission_number,
        now=now,
        before=before,
        after=audit.snapshot(booking, ("status", "checked_in_at", "arrived_late", "seat")),
    )
    session.flush()
    prepare_form(session, booking, now)
    return booking
