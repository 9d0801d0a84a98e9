"""An attempt, its frozen form (attempt items) and one response row per presented item.

The form is written once, when the attempt starts (a proctored sitting's at check-in,
kept ``prepared`` until the start), and never re-assembled: each ``AttemptItem`` names
the item version shown and the option order, so a reload, a new bank version or a
template change cannot alter what the candidate sees. Response rows are created with
the form, so saving an answer is a single conditional UPDATE.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam_templates.models import ExamTemplate
from item_bank.db import Base
from item_bank.models import ItemVersion


class AttemptStatus(enum.StrEnum):
    # A proctored form assembled and written at check-in, not yet started: no clock
    # runs and nothing shows it (``STARTED``) until the candidate starts it.
    PREPARED = "prepared"
    IN_PROGRESS = "in_progress"
    FINISHED = "finished"
    VOIDED = "voided"  # ended by a proctor for misconduct: no result, no certificate


class FinishReason(enum.StrEnum):
    CANDIDATE = "candidate"
    DEADLINE = "deadline"
    VOIDED = "voided"


class Attempt(Base):
    """One sitting. Its id is random, so ids reveal nothing about other attempts."""

    __tablename__ = "attempts"
    __table_args__ = (
        # At most one open attempt per candidate and template, even under double clicks.
        Index(
            "ix_attempts_one_open",
            "user_id",
            "template_id",
            unique=True,
            sqlite_where=text("status = 'in_progress'"),
            postgresql_where=text("status = 'in_progress'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("exam_templates.id"))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    seed: Mapped[int]
    # a prepared attempt's are provisional (from when it was prepared): the start sets them
    started_at: Mapped[dt.datetime]
    deadline_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    finish_reason: Mapped[str | None] = mapped_column(String(16))
    result: Mapped[dict[str, Any] | None]
    # proctored sittings: the seat it was started from; one attempt per booking
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id"), unique=True)
    # while paused by a proctor the clock stands still: deadlines move on by the pause
    paused_at: Mapped[dt.datetime | None]
    paused_seconds: Mapped[int] = mapped_column(default=0)
    extra_seconds: Mapped[int] = mapped_column(default=0)
    # saves the candidate's page had to retry (network or server trouble), as it reported
    # them once a save got through: the server never sees the failures themselves
    save_retries: Mapped[int] = mapped_column(default=0, server_default="0")
    save_trouble_at: Mapped[dt.datetime | None]

    template: Mapped[ExamTemplate] = relationship()
    items: Mapped[list[AttemptItem]] = relationship(
        back_populates="attempt", order_by="AttemptItem.position"
    )
    plays: Mapped[list[AttemptPlay]] = relationship(back_populates="attempt")
    sections: Mapped[list[AttemptSection]] = relationship(
        back_populates="attempt", order_by="AttemptSection.position"
    )


# Every reader of attempts but the start and the sweeps keeps to started ones: a
# prepared form is not the candidate's to see, nor the proctor's to count.
STARTED = Attempt.status != AttemptStatus.PREPARED


class SectionStatus(enum.StrEnum):
    WAITING = "waiting"  # not reached yet (sections taken in order)
    BREAK = "break"  # the pause before it runs; it starts at the latest at available_at
    OPEN = "open"
    FINISHED = "finished"


class AttemptSection(Base):
    """One timed section of an attempt and its clock.

    With one shared clock every section shares the attempt's deadline; with a clock per
    section a section's deadline is set when it starts. Saves are accepted only for
    items of an open section before its deadline.
    """

    __tablename__ = "attempt_sections"
    __table_args__ = (UniqueConstraint("attempt_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"))
    code: Mapped[str] = mapped_column(String(64))
    position: Mapped[int]
    duration_seconds: Mapped[int | None]
    available_at: Mapped[dt.datetime | None]
    started_at: Mapped[dt.datetime | None]
    deadline_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    finish_reason: Mapped[str | None] = mapped_column(String(16))

    attempt: Mapped[Attempt] = relationship(back_populates="sections")

    @property
    def status(self) -> SectionStatus:
        return section_status(self.finished_at, self.started_at, self.available_at)


def section_status(
    finished_at: dt.datetime | None,
    started_at: dt.datetime | None,
    available_at: dt.datetime | None,
) -> SectionStatus:
    """A section's state follows from its moments: finished, started, or given a time."""
    if finished_at is not None:
        return SectionStatus.FINISHED
    if started_at is not None:
        return SectionStatus.OPEN
    if available_at is not None:
        return SectionStatus.BREAK
    return SectionStatus.WAITING


class AttemptItem(Base):
    """One position of the frozen form: section, item version and option order."""

    __tablename__ = "attempt_items"
    __table_args__ = (UniqueConstraint("attempt_id", "ref"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"))
    ref: Mapped[str] = mapped_column(String(16))
    position: Mapped[int]
    section_code: Mapped[str] = mapped_column(String(64))
    score_as: Mapped[str] = mapped_column(String(64))  # the scoring section it counts in
    max_points: Mapped[float] = mapped_column(default=1.0)  # the part's weight
    # indexed: exposure control counts the attempts that showed each item of a pool
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    option_order: Mapped[list[Any]] = mapped_column(JSON)

    attempt: Mapped[Attempt] = relationship(back_populates="items")
    item_version: Mapped[ItemVersion] = relationship()
    response: Mapped[Response] = relationship(back_populates="attempt_item")


class Response(Base):
    """The latest acknowledged answer to one attempt item.

    ``client_seq`` is the page's sequence number of the save that wrote it; a save with
    a number not above it is stale and changes nothing.
    """

    __tablename__ = "responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_item_id: Mapped[int] = mapped_column(ForeignKey("attempt_items.id"), unique=True)
    value: Mapped[Any | None] = mapped_column(JSON)
    is_flagged: Mapped[bool] = mapped_column(default=False)
    client_seq: Mapped[int] = mapped_column(default=0)
    saved_at: Mapped[dt.datetime | None]

    attempt_item: Mapped[AttemptItem] = relationship(back_populates="response")


class AttemptPlay(Base):
    """How often one audio source (an item's clip or a shared conversation) was played.

    Rows are created with the form for every audio source, so a play is one conditional
    UPDATE that cannot pass the limit, whatever the page does or how often it reloads.
    """

    __tablename__ = "attempt_plays"
    __table_args__ = (UniqueConstraint("attempt_id", "source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"))
    source: Mapped[str] = mapped_column(String(16))  # "q3" (item audio) or "s1" (stimulus)
    media_sha256: Mapped[str] = mapped_column(String(64))
    play_limit: Mapped[int]
    plays: Mapped[int] = mapped_column(default=0)
    last_played_at: Mapped[dt.datetime | None]

    attempt: Mapped[Attempt] = relationship(back_populates="plays")


class ScoreRevision(Base):
    """A re-scoring that changed a finished attempt's result: before, after, why, when.

    Results decide visas and jobs; a scoring error found later is corrected by
    re-scoring, and every change stays on record. ``reissue_pending`` marks the
    attempt's certificate for re-issue; the certificate service clears it when it acts.
    """

    __tablename__ = "score_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), index=True)
    previous: Mapped[dict[str, Any]]
    current: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(String(500))
    at: Mapped[dt.datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reissue_pending: Mapped[bool] = mapped_column(default=True, index=True)
