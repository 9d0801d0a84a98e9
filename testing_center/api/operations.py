"""Test-centre operations: centres, sessions, bookings, check-in, proctor actions.

Operators schedule; candidates book; proctors check in and supervise. Every id in a
path is checked against the requester: a candidate sees only their own bookings, a
proctor only the sessions they are assigned to, an operator tied to centres only
theirs; anything else answers 404 like a missing record.
"""

from __future__ import annotations

import base64
import binascii
import csv
import datetime as dt
import io

from flask import Response, current_app, send_file
from sqlalchemy import select

from testing_center.access import requester, require_recent_sign_in, require_roles
from testing_center.accounts.models import CandidateProfile, Role, User
from testing_center.api.blueprint import Blueprint
from testing_center.api.operations_schemas import (
    BookingSchema,
    CentreSchema,
    CheckInByNumberSchema,
    CheckInSchema,
    CountSchema,
    ExtendSchema,
    ExtensionSchema,
    HoldSchema,
    IncidentSchema,
    MoveSessionSchema,
    NewSessionSchema,
    ProctorAttemptSchema,
    ProctorSchema,
    ReasonSchema,
    RescheduleSchema,
    ResumeSchema,
    RoomSchema,
    RosterRowSchema,
    SessionQuerySchema,
    SessionSchema,
)
from testing_center.api.schemas import ErrorSchema
from testing_center.attempts.models import STARTED, Attempt
from testing_center.clock import now
from testing_center.errors import Conflict, InvalidInput, NotFound
from testing_center.extensions import db
from testing_center.i18n import N_
from testing_center.operations import proctoring
from testing_center.operations import services as ops
from testing_center.operations.models import Booking, BookingStatus, ExamSession, TimeExtension

blp = Blueprint("operations", __name__, url_prefix="/api/v1", description="Test-centre operations")
SECURITY = [{"bearerAuth": []}]
OPERATORS = (Role.OPERATOR, Role.ADMIN)
BOOKING_CSV_HEADER = (
    "admission_number",
    "full_name",
    "status",
    "checked_in_at",
    "late",
    "seat",
    "attempt_status",
    "total",
    "passed",
)
SUPERVISORS = (Role.OPERATOR, Role.ADMIN, Role.PROCTOR)


# ---- presenters -------------------------------------------------------------------------


def session_payload(exam_session: ExamSession, booking_open: bool | None = None) -> dict:
    centre = exam_session.centre
    return {
        "id": exam_session.id,
        "exam_code": exam_session.template.code,
        "center_code": centre.code,
        "center_name": centre.name,
        "city": centre.city,
        "address": centre.address,
        "timezone": centre.timezone,
        "room": exam_session.room.name if exam_session.room else None,
        "starts_at": exam_session.starts_at,
        "local_start": ops.local_time(exam_session),
        "capacity": exam_session.capacity,
        "seats_left": exam_session.seats_left,
        "status": exam_session.status,
        "booking_closes_at": exam_session.booking_closes_at,
        "booking_open": booking_open
        if booking_open is not None
        else exam_session.status == "published" and now() < exam_session.booking_closes_at,
        "results_release_at": exam_session.results_release_at,
    }


def booking_payload(booking: Booking) -> dict:
    attempt_id = db.session.scalar(
        select(Attempt.id).where(Attempt.booking_id == booking.id, STARTED)
    )
    return {
        "booking_id": booking.id,
        "admission_number": booking.admission_number,
        "status": booking.status,
        "session": session_payload(booking.session),
        "booked_at": booking.booked_at,
        "hold_expires_at": booking.hold_expires_at,
        "checked_in_at": booking.checked_in_at,
        "attempt_id": attempt_id,
    }


def attempt_payload(attempt: Attempt) -> dict:
    return {
        "attempt_id": attempt.id,
        "status": attempt.status,
        "paused": attempt.paused_at is not None,
        "deadline_at": attempt.deadline_at,
        "extra_seconds": attempt.extra_seconds,
        "paused_seconds": attempt.paused_seconds,
    }


def extension_payload(extension: TimeExtension, attempt: Attempt) -> dict:
    return {
        "id": extension.id,
        "seconds": extension.seconds,
        "reason": extension.reason,
        "approved": extension.approved_at is not None,
        "attempt_deadline_at": attempt.deadline_at,
    }


# ---- centres ----------------------------------------------------------------------------


@blp.route("/centers", methods=["POST"])
@require_roles(*OPERATORS)
@blp.arguments(CentreSchema)
@blp.response(201, CentreSchema)
@blp.alt_response(409, schema=ErrorSchema, description="A centre with this code exists")
@blp.alt_response(422, schema=ErrorSchema, description="Unknown time zone")
@blp.doc(security=SECURITY)
def create_centre(data):
    """Add a testing centre (operator)."""
    centre = ops.create_centre(db.session, actor=requester(), now=now(), **data)
    db.session.commit()
    return centre


@blp.route("/centers", methods=["GET"])
@require_roles(*SUPERVISORS)
@blp.response(200, CentreSchema(many=True))
@blp.doc(security=SECURITY)
def list_centres():
    """The centres the requester works for."""
    from testing_center.operations.models import Centre

    allowed = ops.centre_ids_of(db.session, requester())
    query = select(Centre).order_by(Centre.code)
    if allowed is not None:
        query = query.where(Centre.id.in_(allowed))
    return db.session.scalars(query).all()


@blp.route("/centers/<code>/rooms", methods=["POST"])
@require_roles(*OPERATORS)
@blp.arguments(RoomSchema)
@blp.response(201, RoomSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such centre")
@blp.doc(security=SECURITY)
def add_room(data, code):
    """Add a room with its number of seats to a centre (operator)."""
    centre = ops.centre_by_code(db.session, code)
    room = ops.add_room(db.session, actor=requester(), centre=centre, now=now(), **data)
    db.session.commit()
    return room


# ---- sessions ---------------------------------------------------------------------------


@blp.route("/sessions", methods=["POST"])
@require_roles(*OPERATORS)
@blp.arguments(NewSessionSchema)
@blp.response(201, SessionSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such exam, centre or room")
@blp.alt_response(422, schema=ErrorSchema, description="Not a proctored exam, in the past, ...")
@blp.doc(security=SECURITY)
def create_session(data):
    """Schedule a session; booking closes 3 business days before (4 on non-working days)."""
    exam_session = ops.schedule_session(
        db.session,
        actor=requester(),
        exam_code=data["exam_code"],
        centre_code=data["center_code"],
        starts_at=data["starts_at"],
        capacity=data["capacity"],
        room_name=data.get("room"),
        late_minutes=data["late_minutes"],
        results_release_at=data.get("results_release_at"),
        publish=data["publish"],
        now=now(),
    )
    db.session.commit()
    return session_payload(exam_session)


@blp.route("/sessions", methods=["GET"])
@blp.arguments(SessionQuerySchema, location="query")
@blp.response(200, SessionSchema(many=True))
def list_sessions(query):
    """Published sessions to come, soonest first, with seats left (public)."""
    listings = ops.list_sessions(
        db.session,
        now(),
        exam_code=query.get("exam_code"),
        city=query.get("city"),
        starts_from=query.get("from_"),
        starts_to=query.get("to"),
    )
    return [session_payload(item.exam_session, item.booking_open) for item in listings]


def staff_session(session_id: int) -> ExamSession:
    return ops.session_for_staff(db.session, requester(), session_id)


def operator_session(session_id: int) -> ExamSession:
    """A session an operator may change (proctors supervise, they do not schedule)."""
    exam_session = staff_session(session_id)
    if requester().role not in OPERATORS:
        raise NotFound(N_("There is no such session."), code="session_not_found")
    return exam_session


@blp.route("/sessions/<int:session_id>", methods=["GET"])
@require_roles(*SUPERVISORS)
@blp.response(200, SessionSchema)
@blp.doc(security=SECURITY)
def get_session(session_id):
    return session_payload(staff_session(session_id))


@blp.route("/sessions/<int:session_id>/publish", methods=["POST"])
@require_roles(*OPERATORS)
@blp.response(200, SessionSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Not a draft")
@blp.doc(security=SECURITY)
def publish_session(session_id):
    exam_session = ops.publish_session(db.session, operator_session(session_id), requester(), now())
    db.session.commit()
    return session_payload(exam_session)


@blp.route("/sessions/<int:session_id>/cancel", methods=["POST"])
@require_roles(*OPERATORS)
@require_recent_sign_in
@blp.arguments(ReasonSchema)
@blp.response(200, CountSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Already open, closed or cancelled")
@blp.doc(security=SECURITY)
def cancel_session(data, session_id):
    """Cancel: every booked candidate is notified and the seats are released."""
    count = ops.cancel_session(
        db.session, operator_session(session_id), requester(), data["reason"], now()
    )
    db.session.commit()
    return {"count": count}


@blp.route("/sessions/<int:session_id>/move", methods=["POST"])
@require_roles(*OPERATORS)
@blp.arguments(MoveSessionSchema)
@blp.response(200, SessionSchema)
@blp.doc(security=SECURITY)
def move_session(data, session_id):
    """Move the session to another time; booked candidates are notified."""
    exam_session = ops.move_session(
        db.session,
        operator_session(session_id),
        requester(),
        starts_at=data["starts_at"],
        reason=data["reason"],
        now=now(),
    )
    db.session.commit()
    return session_payload(exam_session)


@blp.route("/sessions/<int:session_id>/proctors", methods=["POST"])
@require_roles(*OPERATORS)
@blp.arguments(ProctorSchema)
@blp.response(200, SessionSchema)
@blp.doc(security=SECURITY)
def assign_proctor(data, session_id):
    exam_session = operator_session(session_id)
    proctor = db.session.scalar(select(User).where(User.email == data["email"].lower()))
    if proctor is None:
        raise NotFound(N_("There is no account with this e-mail."), code="user_not_found")
    ops.assign_proctor(db.session, exam_session, requester(), proctor, now())
    db.session.commit()
    return session_payload(exam_session)


@blp.route("/sessions/<int:session_id>/open", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.response(200, SessionSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Not published")
@blp.doc(security=SECURITY)
def open_session(session_id):
    """Open the sitting: checked-in candidates may start (operator or proctor)."""
    exam_session = ops.open_session(db.session, staff_session(session_id), requester(), now())
    db.session.commit()
    return session_payload(exam_session)


@blp.route("/sessions/<int:session_id>/close", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.response(200, SessionSchema)
@blp.doc(security=SECURITY)
def close_session(session_id):
    """Close the sitting: no new starts; attempts under way run to their deadlines."""
    exam_session = ops.close_session(db.session, staff_session(session_id), requester(), now())
    db.session.commit()
    return session_payload(exam_session)


@blp.route("/sessions/<int:session_id>/roster", methods=["GET"])
@require_roles(*SUPERVISORS)
@blp.response(200, RosterRowSchema(many=True))
@blp.doc(security=SECURITY)
def roster(session_id):
    """Every seat: status, section, answered count, remaining time, last activity, and
    the saves the candidate's page had to retry."""
    exam_session = staff_session(session_id)
    moment = now()
    rows = proctoring.roster(db.session, exam_session)
    names = dict(
        db.session.execute(
            select(CandidateProfile.user_id, CandidateProfile.full_name).where(
                CandidateProfile.user_id.in_([row.booking.user_id for row in rows])
            )
        ).all()
    )
    pending = {}
    attempt_ids = [row.attempt.id for row in rows if row.attempt]
    for extension in db.session.scalars(
        select(TimeExtension).where(
            TimeExtension.attempt_id.in_(attempt_ids), TimeExtension.approved_at.is_(None)
        )
    ):
        pending.setdefault(extension.attempt_id, []).append(extension)
    return [
        {
            "booking_id": row.booking.id,
            "admission_number": row.booking.admission_number,
            "full_name": names.get(row.booking.user_id, ""),
            "seat": row.booking.seat,
            "status": row.status(),
            "arrived_late": row.booking.arrived_late,
            "attempt_id": row.attempt.id if row.attempt else None,
            "section": row.section(),
            "answered": row.answered,
            "items": row.items,
            "remaining_seconds": row.remaining_seconds(moment),
            "last_activity_at": row.last_activity_at,
            "save_retries": row.attempt.save_retries if row.attempt else 0,
            "save_trouble_at": row.attempt.save_trouble_at if row.attempt else None,
            "pending_extensions": [
                extension_payload(e, row.attempt)
                for e in pending.get(row.attempt.id if row.attempt else "", [])
            ],
        }
        for row in rows
    ]


@blp.route("/sessions/<int:session_id>/pause", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(ReasonSchema)
@blp.response(200, CountSchema)
@blp.doc(security=SECURITY)
def pause_room(data, session_id):
    """Pause every running attempt of the room (the clocks stop)."""
    count = proctoring.pause_room(
        db.session, requester(), staff_session(session_id), data["reason"], now()
    )
    db.session.commit()
    return {"count": count}


@blp.route("/sessions/<int:session_id>/resume", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(ReasonSchema)
@blp.response(200, CountSchema)
@blp.doc(security=SECURITY)
def resume_room(data, session_id):
    count = proctoring.resume_room(
        db.session, requester(), staff_session(session_id), data["reason"], now()
    )
    db.session.commit()
    return {"count": count}


@blp.route("/sessions/<int:session_id>/incidents", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(IncidentSchema)
@blp.response(201, CountSchema)
@blp.doc(security=SECURITY)
def record_incident(data, session_id):
    """Record an incident (category, text, time), optionally about one candidate."""
    exam_session = staff_session(session_id)
    booking = None
    if data.get("admission_number"):
        booking = ops.booking_by_admission(db.session, data["admission_number"])
    incident = proctoring.record_incident(
        db.session,
        requester(),
        exam_session,
        category=data["category"],
        text=data["text"],
        now=now(),
        booking=booking,
        occurred_at=data.get("occurred_at"),
    )
    db.session.commit()
    return {"count": incident.id}


@blp.route("/sessions/<int:session_id>/holds", methods=["POST"])
@require_roles(*OPERATORS)
@blp.arguments(HoldSchema)
@blp.response(201, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Session full or booking closed")
@blp.doc(security=SECURITY)
def hold_seat(data, session_id):
    """Hold a seat for a candidate; it expires unless confirmed."""
    exam_session = operator_session(session_id)
    candidate = db.session.scalar(select(User).where(User.email == data["email"].lower()))
    if candidate is None:
        raise NotFound(N_("There is no account with this e-mail."), code="user_not_found")
    booking = ops.hold_seat(
        db.session,
        actor=requester(),
        exam_session=exam_session,
        candidate=candidate,
        minutes=data["minutes"],
        now=now(),
    )
    db.session.commit()
    return booking_payload(booking)


@blp.route("/sessions/<int:session_id>/bookings.csv", methods=["GET"])
@require_roles(*OPERATORS)
@blp.doc(security=SECURITY)
def bookings_csv(session_id):
    """The session's bookings and results as CSV (operator)."""
    exam_session = operator_session(session_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(BOOKING_CSV_HEADER)
    for row in proctoring.roster(db.session, exam_session):
        profile = db.session.get(CandidateProfile, row.booking.user_id)
        result = (row.attempt.result or {}) if row.attempt else {}
        writer.writerow(
            [
                row.booking.admission_number,
                profile.full_name if profile else "",
                row.booking.status,
                row.booking.checked_in_at.isoformat() if row.booking.checked_in_at else "",
                "yes" if row.booking.arrived_late else "",
                row.booking.seat or "",
                row.attempt.status if row.attempt else "",
                result.get("total", ""),
                {True: "yes", False: "no"}.get(result.get("passed"), ""),
            ]
        )
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=session-{session_id}.csv"},
    )


# ---- bookings ---------------------------------------------------------------------------


@blp.route("/sessions/<int:session_id>/bookings", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.response(201, BookingSchema)
@blp.alt_response(404, schema=ErrorSchema, description="No such session")
@blp.alt_response(409, schema=ErrorSchema, description="session_full, booking_closed, ...")
@blp.doc(security=SECURITY)
def book(session_id):
    """Book a seat: ``{booking_id, admission_number}``, or 409 ``session_full``."""
    booking = ops.book_seat(db.session, requester(), session_id, now())
    db.session.commit()
    return booking_payload(booking)


@blp.route("/bookings", methods=["GET"])
@require_roles(Role.CANDIDATE)
@blp.response(200, BookingSchema(many=True))
@blp.doc(security=SECURITY)
def my_bookings():
    """The candidate's own bookings, newest first."""
    bookings = db.session.scalars(
        select(Booking).where(Booking.user_id == requester().id).order_by(Booking.id.desc())
    )
    return [booking_payload(b) for b in bookings]


@blp.route("/bookings/<int:booking_id>/reschedule", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.arguments(RescheduleSchema)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Full, closed, or not changeable")
@blp.doc(security=SECURITY)
def reschedule(data, booking_id):
    """Move the booking to another session of the same exam (no cancellations)."""
    booking = ops.reschedule(db.session, requester(), booking_id, data["session_id"], now())
    db.session.commit()
    return booking_payload(booking)


@blp.route("/bookings/<int:booking_id>/admission.pdf", methods=["GET"])
@require_roles(Role.CANDIDATE)
@blp.doc(security=SECURITY)
def admission_ticket(booking_id):
    """The admission ticket (PDF) of a live booking."""
    from testing_center.operations.admission import admission_ticket_pdf

    booking = ops.candidate_booking(db.session, requester(), booking_id)
    if booking.status not in (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN):
        raise Conflict(N_("This booking has no admission ticket."), code="no_ticket")
    pdf = admission_ticket_pdf(db.session, booking)
    return send_file(
        io.BytesIO(pdf),
        mimetype="application/pdf",
        download_name=f"admission-{booking.admission_number}.pdf",
    )


@blp.route("/bookings/<int:booking_id>/confirm", methods=["POST"])
@require_roles(*OPERATORS)
@blp.response(200, BookingSchema)
@blp.doc(security=SECURITY)
def confirm_hold(booking_id):
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound(N_("There is no such booking."), code="booking_not_found")
    operator_session(booking.session_id)
    ops.confirm_hold(db.session, booking, requester(), now())
    db.session.commit()
    return booking_payload(booking)


# ---- check-in ---------------------------------------------------------------------------


def decode_photo(data: dict) -> bytes | None:
    if not data.get("photo"):
        return None
    try:
        return base64.b64decode(data["photo"], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(N_("The photo must be base64."), code="bad_photo") from None


def admit(booking: Booking, data: dict) -> dict:
    booking = ops.check_in(
        db.session,
        actor=requester(),
        booking=booking,
        id_document_number=data["id_document_number"],
        photo=decode_photo(data),
        seat=data.get("seat"),
        now=now(),
        opens_before=dt.timedelta(minutes=current_app.config["CHECK_IN_OPENS_MINUTES"]),
    )
    db.session.commit()  # a refusal for lateness is kept on record too
    if booking.status == BookingStatus.REFUSED:
        raise Conflict(N_("Check-in has closed: late arrivals are refused."), code="late_arrival")
    return booking_payload(booking)


@blp.route("/bookings/<int:booking_id>/check-in", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(CheckInSchema)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Late, already checked in, not open")
@blp.alt_response(422, schema=ErrorSchema, description="ID number does not match")
@blp.doc(security=SECURITY)
def check_in(data, booking_id):
    """Check a candidate in: the ID document number must match the profile."""
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        raise NotFound(N_("There is no such booking."), code="booking_not_found")
    return admit(booking, data)


@blp.route("/check-in", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(CheckInByNumberSchema)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Late, already checked in, not open")
@blp.doc(security=SECURITY)
def check_in_by_number(data):
    """Check in by the admission number typed or read from the ticket's QR code."""
    return admit(ops.booking_by_admission(db.session, data["admission_number"]), data)


# ---- proctor actions on attempts ----------------------------------------------------


def staff_attempt(attempt_id: str) -> Attempt:
    return proctoring.attempt_for_staff(db.session, requester(), attempt_id)


@blp.route("/attempts/<attempt_id>/pause", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(ReasonSchema)
@blp.response(200, ProctorAttemptSchema)
@blp.doc(security=SECURITY)
def pause(data, attempt_id):
    """Pause one candidate: the clock stops until resumed."""
    attempt = proctoring.pause(
        db.session, requester(), staff_attempt(attempt_id), data["reason"], now()
    )
    db.session.commit()
    return attempt_payload(attempt)


@blp.route("/attempts/<attempt_id>/resume", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(ResumeSchema)
@blp.response(200, ProctorAttemptSchema)
@blp.doc(security=SECURITY)
def resume(data, attempt_id):
    """Resume with exactly the time left at the pause (on this or another seat)."""
    attempt = proctoring.resume(
        db.session,
        requester(),
        staff_attempt(attempt_id),
        data["reason"],
        now(),
        seat=data.get("seat"),
    )
    db.session.commit()
    return attempt_payload(attempt)


@blp.route("/attempts/<attempt_id>/extend", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(ExtendSchema)
@blp.response(200, ExtensionSchema)
@blp.doc(security=SECURITY)
def extend(data, attempt_id):
    """Extra time: applied at once for an operator, pending a second approver for a proctor."""
    attempt = staff_attempt(attempt_id)
    extension = proctoring.request_extension(
        db.session, requester(), attempt, data["seconds"], data["reason"], now()
    )
    db.session.commit()
    return extension_payload(extension, attempt)


@blp.route("/attempts/<attempt_id>/extensions/<int:extension_id>/approve", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.response(200, ExtensionSchema)
@blp.alt_response(403, schema=ErrorSchema, description="The requester cannot approve it")
@blp.doc(security=SECURITY)
def approve_extension(attempt_id, extension_id):
    attempt = staff_attempt(attempt_id)
    extension = proctoring.approve_extension(db.session, requester(), attempt, extension_id, now())
    db.session.commit()
    return extension_payload(extension, attempt)


@blp.route("/attempts/<attempt_id>/void", methods=["POST"])
@require_roles(*SUPERVISORS)
@blp.arguments(ReasonSchema)
@blp.response(200, ProctorAttemptSchema)
@blp.doc(security=SECURITY)
def void(data, attempt_id):
    """Void the attempt for misconduct: no result, no certificate."""
    attempt = proctoring.void(
        db.session, requester(), staff_attempt(attempt_id), data["reason"], now()
    )
    db.session.commit()
    return attempt_payload(attempt)
