"""Test-centre operations: centres and rooms, exam sessions, bookings, check-in, proctor
actions, the audit log, notifications and the scheduler's heartbeat.

Seats are counted on the session row (``seats_taken``) and taken by one conditional
UPDATE, so concurrent bookings can never oversell; a booking row per seat keeps who
holds it. Times are UTC instants; a centre's time zone only shapes what people read and
which calendar days count as business days.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from exam_templates.models import ExamTemplate
from item_bank.db import Base
from testing_center.accounts.models import User


class Centre(Base):
    """A testing centre (Tashkent, Samarkand, Namangan, ...)."""

    __tablename__ = "centres"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]

    rooms: Mapped[list[Room]] = relationship(back_populates="centre", order_by="Room.name")


class Room(Base):
    """A room of a centre with a fixed number of seats."""

    __tablename__ = "rooms"
    __table_args__ = (UniqueConstraint("centre_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"))
    name: Mapped[str] = mapped_column(String(100))
    seats: Mapped[int]

    centre: Mapped[Centre] = relationship(back_populates="rooms")


class CentreStaff(Base):
    """A staff member who works for a centre: operators tied to centres see only theirs."""

    __tablename__ = "centre_staff"

    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class Holiday(Base):
    """A day that is not a business day, for every centre or for one."""

    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("day", "centre_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[dt.date]
    centre_id: Mapped[int | None] = mapped_column(ForeignKey("centres.id"))
    name: Mapped[str] = mapped_column(String(200))


class SessionStatus(enum.StrEnum):
    DRAFT = "draft"  # being prepared: not bookable, not listed
    PUBLISHED = "published"  # listed and bookable while the window is open
    OPEN = "open"  # exam day: checked-in candidates may start
    CLOSED = "closed"  # over: no new starts
    CANCELLED = "cancelled"


class ExamSession(Base):
    """One sitting of an exam at a centre and time, with a capacity of seats."""

    __tablename__ = "exam_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("exam_templates.id"))
    centre_id: Mapped[int] = mapped_column(ForeignKey("centres.id"), index=True)
    room_id: Mapped[int | None] = mapped_column(ForeignKey("rooms.id"))
    starts_at: Mapped[dt.datetime] = mapped_column(index=True)
    capacity: Mapped[int]
    seats_taken: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(16), default=SessionStatus.DRAFT, index=True)
    booking_closes_at: Mapped[dt.datetime]  # computed from business days when scheduled
    late_minutes: Mapped[int] = mapped_column(default=0)  # check-in refused after start + this
    results_release_at: Mapped[dt.datetime | None]
    results_released_at: Mapped[dt.datetime | None]
    reminder_sent_at: Mapped[dt.datetime | None]
    opened_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]

    template: Mapped[ExamTemplate] = relationship()
    centre: Mapped[Centre] = relationship()
    room: Mapped[Room | None] = relationship()
    proctors: Mapped[list[User]] = relationship(secondary="session_proctors")

    @property
    def seats_left(self) -> int:
        return max(0, self.capacity - self.seats_taken)


class SessionProctor(Base):
    """A proctor assigned to a session (proctor actions are allowed there only)."""

    __tablename__ = "session_proctors"

    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)


class BookingStatus(enum.StrEnum):
    HELD = "held"  # an operator's reservation that expires unless confirmed
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    MOVED = "moved"  # rescheduled: the new booking carries on
    CANCELLED = "cancelled"  # the session was cancelled
    EXPIRED = "expired"  # a hold that was not confirmed in time
    REFUSED = "refused"  # arrived after the cut-off


ACTIVE_BOOKING = (BookingStatus.HELD, BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)


class Booking(Base):
    """A candidate's seat in a session; its admission number is what the ticket shows."""

    __tablename__ = "bookings"
    __table_args__ = (
        # a candidate holds at most one live seat in a session
        Index(
            "ix_bookings_one_live_per_session",
            "session_id",
            "user_id",
            unique=True,
            sqlite_where=text("status IN ('held', 'confirmed', 'checked_in')"),
            postgresql_where=text("status IN ('held', 'confirmed', 'checked_in')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    admission_number: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    hold_expires_at: Mapped[dt.datetime | None]
    booked_at: Mapped[dt.datetime]
    moved_to_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    checked_in_at: Mapped[dt.datetime | None]
    checked_in_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    arrived_late: Mapped[bool] = mapped_column(default=False)
    seat: Mapped[str | None] = mapped_column(String(16))

    session: Mapped[ExamSession] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class CandidatePhoto(Base):
    """The photo taken or confirmed at check-in (shown on results and certificates)."""

    __tablename__ = "candidate_photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    mime_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    taken_at: Mapped[dt.datetime]
    taken_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # 64-bit difference hash as 16 hex digits: the fraud report finds the same face
    # photo on several accounts by it (``testing_center.operations.imagehash``)
    image_hash: Mapped[str | None] = mapped_column(String(16), index=True)


class TimeExtension(Base):
    """Extra time for one attempt: applied at once by an operator, or requested by a
    proctor and applied when a second person approves it."""

    __tablename__ = "time_extensions"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), index=True)
    seconds: Mapped[int]
    reason: Mapped[str] = mapped_column(String(500))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[dt.datetime]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None]


class Incident(Base):
    """Something a proctor saw and recorded during a session."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("exam_sessions.id"), index=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"))
    category: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[dt.datetime]
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


class AuditEntry(Base):
    """Who did what to which record, when, with the record before and after.

    Written in the same transaction as the change it records; the application only
    ever inserts rows here.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Notification(Base):
    """An e-mail to send (the outbox): written with the change that causes it, sent by
    the scheduler, so a failing mail server never loses or blocks a change.

    ``tries`` counts the sends begun; ``next_try_at`` is when the next may begin (set
    before each send, so a sender that dies mid-send leaves a notice that is due again
    later, never one that looks sent). Unsent after ``notify.MAX_TRIES``: given up.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    tries: Mapped[int] = mapped_column(default=0)
    next_try_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class SchedulerHeartbeat(Base):
    """The last sign of life of the scheduler process, and what its sweeps did."""

    __tablename__ = "scheduler_heartbeats"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    beat_at: Mapped[dt.datetime]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
