"""The player's view of an attempt, read as plain rows.

A state read is the most frequent request after a save (every page load, every
reconnect). Loading the form as ORM objects built some 150 objects per read and was
most of its work (benchmarks/README.md, "The state read"). When no clock has to move,
nothing is written, so four plain queries serve it: the attempt with its template, the
sections, the items joined with their versions' content and responses, and the play
counters. The rows carry the attribute names the presenter reads from the ORM objects,
so one presenter serves both. When a clock step is due, the caller takes the ORM path,
which advances the sections and may finish the attempt.

The player also asks for its clock after a minute without a save, to keep its countdown
true: that read (``settled_clock``) needs only the attempt's row and its sections.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam_templates.blueprint import Blueprint, parse_blueprint
from exam_templates.models import ExamTemplate
from item_bank.models import ItemVersion
from testing_center.accounts.models import Principal, User
from testing_center.attempts.models import (
    STARTED,
    Attempt,
    AttemptItem,
    AttemptPlay,
    AttemptSection,
    AttemptStatus,
    Response,
    SectionStatus,
    section_status,
)
from testing_center.attempts.services import attempt_not_found, clock_step_due


@dataclass(frozen=True)
class VersionRow:
    item_type: str
    content: dict[str, Any]


@dataclass(frozen=True)
class ResponseRow:
    value: Any
    is_flagged: bool
    client_seq: int


@dataclass(frozen=True)
class ItemRow:
    ref: str
    position: int
    section_code: str
    option_order: list[Any]
    item_version: VersionRow
    response: ResponseRow


@dataclass(frozen=True)
class SectionRow:
    code: str
    started_at: dt.datetime | None
    deadline_at: dt.datetime | None
    available_at: dt.datetime | None
    finished_at: dt.datetime | None

    @property
    def status(self) -> SectionStatus:
        return section_status(self.finished_at, self.started_at, self.available_at)


@dataclass(frozen=True)
class PlayRow:
    source: str
    play_limit: int
    plays: int


@dataclass(frozen=True)
class AttemptRows:
    """What the presenter reads of an attempt, with the same attribute names."""

    id: str
    status: str
    mode: str
    paused_at: dt.datetime | None
    started_at: dt.datetime
    deadline_at: dt.datetime
    sections: list[SectionRow]
    items: list[ItemRow]
    plays: list[PlayRow]


def settled_attempt(
    session: Session, attempt_id: str, user: Principal | User, now: dt.datetime
) -> tuple[AttemptRows, Blueprint] | None:
    """Return the user's attempt as rows and its blueprint, or None when a clock step is
    due (a section's time or break, or the attempt's, has run out): the caller then
    loads it with ``current_attempt``, which moves the clocks. Raise ``NotFound`` for an
    attempt that is not the user's."""
    head = session.execute(
        select(
            Attempt.id,
            Attempt.status,
            Attempt.mode,
            Attempt.paused_at,
            Attempt.started_at,
            Attempt.deadline_at,
            ExamTemplate.definition,
        )
        .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
        .where(Attempt.id == attempt_id, Attempt.user_id == user.id, STARTED)
    ).one_or_none()
    if head is None:
        raise attempt_not_found()
    sections = section_rows(session, attempt_id)
    clock = head.paused_at or now  # a paused attempt's clock stands still
    if head.status == AttemptStatus.IN_PROGRESS and clock_step_due(
        head.deadline_at, sections, clock
    ):
        return None
    rows = AttemptRows(
        id=head.id,
        status=head.status,
        mode=head.mode,
        paused_at=head.paused_at,
        started_at=head.started_at,
        deadline_at=head.deadline_at,
        sections=sections,
        items=form_rows(session, attempt_id),
        plays=[
            PlayRow(*row)
            for row in session.execute(
                select(AttemptPlay.source, AttemptPlay.play_limit, AttemptPlay.plays).where(
                    AttemptPlay.attempt_id == attempt_id
                )
            )
        ],
    )
    return rows, parse_blueprint(head.definition)


@dataclass(frozen=True)
class ClockRows:
    """What ``presenters.attempt_clock`` reads of an attempt."""

    id: str
    status: str
    paused_at: dt.datetime | None
    deadline_at: dt.datetime
    sections: list[SectionRow]


def settled_clock(
    session: Session, attempt_id: str, user: Principal | User, now: dt.datetime
) -> ClockRows | None:
    """Return the user's attempt's clocks as rows (two statements), or None when a clock
    step is due, as ``settled_attempt`` does. Raise ``NotFound`` for an attempt that is
    not the user's."""
    head = session.execute(
        select(Attempt.id, Attempt.status, Attempt.paused_at, Attempt.deadline_at).where(
            Attempt.id == attempt_id, Attempt.user_id == user.id, STARTED
        )
    ).one_or_none()
    if head is None:
        raise attempt_not_found()
    sections = section_rows(session, attempt_id)
    if head.status == AttemptStatus.IN_PROGRESS and clock_step_due(
        head.deadline_at, sections, head.paused_at or now
    ):
        return None
    return ClockRows(*head, sections=sections)


def section_rows(session: Session, attempt_id: str) -> list[SectionRow]:
    """The attempt's sections in their order."""
    return [
        SectionRow(*row)
        for row in session.execute(
            select(
                AttemptSection.code,
                AttemptSection.started_at,
                AttemptSection.deadline_at,
                AttemptSection.available_at,
                AttemptSection.finished_at,
            )
            .where(AttemptSection.attempt_id == attempt_id)
            .order_by(AttemptSection.position)
        )
    ]


def form_rows(session: Session, attempt_id: str) -> list[ItemRow]:
    """The form in order: each item with its version's content (never its key) and the
    stored response."""
    query = (
        select(
            AttemptItem.ref,
            AttemptItem.position,
            AttemptItem.section_code,
            AttemptItem.option_order,
            ItemVersion.item_type,
            ItemVersion.content,
            Response.value,
            Response.is_flagged,
            Response.client_seq,
        )
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(Response, Response.attempt_item_id == AttemptItem.id)
        .where(AttemptItem.attempt_id == attempt_id)
        .order_by(AttemptItem.position)
    )
    return [
        ItemRow(
            ref=row.ref,
            position=row.position,
            section_code=row.section_code,
            option_order=row.option_order,
            item_version=VersionRow(row.item_type, row.content),
            response=ResponseRow(row.value, row.is_flagged, row.client_seq),
        )
        for row in session.execute(query)
    ]
