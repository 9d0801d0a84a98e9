"""Starting, saving, finishing and scoring attempts.

Every function takes ``now`` from the server clock; the client's clock is never read.
Ownership is checked in the queries themselves: another user's attempt is simply not
found, so an id is never confirmed to someone who does not own it.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import logging
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    Update,
    bindparam,
    case,
    delete,
    func,
    inspect,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload, undefer

from exam_templates.blueprint import Blueprint, parse_blueprint
from exam_templates.errors import AssemblyError
from exam_templates.models import ExamTemplate
from exam_templates.services import build_form, current_templates
from item_bank.errors import InvalidResponse
from item_bank.models import ItemVersion, Media
from item_bank.types import ITEM_TYPES
from scoring.grading import ResponseToGrade, grade_responses
from testing_center.accounts.models import Principal, User
from testing_center.attempts import adaptive
from testing_center.attempts.exposure import EXPOSURE
from testing_center.attempts.form_writer import write_attempt
from testing_center.attempts.models import (
    STARTED,
    Attempt,
    AttemptItem,
    AttemptPlay,
    AttemptSection,
    AttemptStatus,
    FinishReason,
    Response,
    ScoreRevision,
    SectionStatus,
)
from testing_center.attempts.sections import (
    advance,
    all_finished,
    attempt_duration,
    create_sections,
    open_first_sections,
    open_next,
    start,
)
from testing_center.attempts.sections import close as close_section
from testing_center.errors import Conflict, NotFound
from testing_center.i18n import N_
from testing_center.psychometrics.services import scoring_inputs

if TYPE_CHECKING:
    from testing_center.operations.models import Booking

PRACTICE = "practice"
PROCTORED = "proctored"

logger = logging.getLogger(__name__)


class Started(enum.Enum):
    """How a start request was met, which decides how the start answers."""

    RESUMED = "resumed"  # the attempt already under way (read as GET reads it)
    WRITTEN = "written"  # a form assembled and written now (presented from its objects)
    BEGUN = "begun"  # the form prepared at check-in, its clocks set now (read as GET)


@dataclass(frozen=True)
class SaveAck:
    """The server's answer to a save: what is stored now, and whether this save won."""

    item_ref: str
    accepted: bool
    client_seq: int
    response: Any
    flagged: bool
    saved_at: dt.datetime | None
    section_code: str
    section_deadline_at: dt.datetime | None  # as read under the save's lock on the attempt


def attempt_not_found() -> NotFound:
    """The answer for an attempt id that is not the requester's: the same whether it
    exists or not, so an id is never confirmed to someone who does not own it."""
    return NotFound(N_("There is no such attempt."), code="attempt_not_found")


def attempt_closed() -> Conflict:
    """The refusal for anything that would change a finished attempt."""
    return Conflict(
        N_("This attempt is finished; answers can no longer be changed."), code="attempt_closed"
    )


def attempt_paused() -> Conflict:
    """The refusal while a proctor has paused the attempt (its clock stands still)."""
    return Conflict(
        N_("Your exam is paused by the proctor; answers are kept but not saved until it resumes."),
        code="attempt_paused",
    )


def template_for_code(session: Session, code: str) -> ExamTemplate:
    """Return the current version of the template ``code`` or raise ``NotFound``."""
    for template in current_templates(session):
        if template.code == code:
            return template
    raise NotFound(N_("There is no exam with this code."), code="exam_not_found")


def find_open_attempt(
    session: Session, user: Principal | User, template_code: str
) -> Attempt | None:
    """Return the user's in-progress attempt at this exam, if one exists."""
    return session.scalar(
        select(Attempt)
        .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
        .where(
            Attempt.user_id == user.id,
            ExamTemplate.code == template_code,
            Attempt.status == AttemptStatus.IN_PROGRESS,
        )
        .order_by(Attempt.started_at.desc())
        .limit(1)
    )


def start_practice(
    session: Session, user: Principal | User, template_code: str, now: dt.datetime
) -> tuple[Attempt, Started]:
    """Start a practice attempt, or return the open one.

    The form is assembled here, once, and written with one empty response per item.
    """
    template = template_for_code(session, template_code)
    blueprint = parse_blueprint(template.definition)
    if PRACTICE not in blueprint.modes:
        raise Conflict(N_("This exam is only given at a test centre."), code="mode_not_allowed")
    existing = find_open_attempt(session, user, template_code)
    if existing is not None and existing.mode != PRACTICE:
        raise Conflict(
            N_("Your proctored exam is in progress; practice can wait."), code="exam_in_progress"
        )
    if existing is not None:
        if existing.deadline_at > now:
            return existing, Started.RESUMED
        finish_attempt(session, existing, now, FinishReason.DEADLINE)
    attempt = new_attempt(session, user, template, blueprint, PRACTICE, now)
    try:
        with session.begin_nested():
            write_attempt(session, attempt)
    except IntegrityError:  # a concurrent start of the same exam won
        concurrent = find_open_attempt(session, user, template_code)
        if concurrent is None:
            raise
        return concurrent, Started.RESUMED
    return attempt, Started.WRITTEN


def new_attempt(
    session: Session,
    user: Principal | User,
    template: ExamTemplate,
    blueprint: Blueprint,
    mode: str,
    now: dt.datetime,
    booking_id: int | None = None,
    *,
    prepared: bool = False,
) -> Attempt:
    """Assemble a form and build the attempt with its sections, items and empty
    responses (not yet added to the session: the caller handles a concurrent start).

    A ``prepared`` attempt starts later (``begin_prepared``): its sections stay closed.
    """
    form = build_form(
        session,
        template,
        seed=secrets.randbelow(2**31),
        exposure=lambda ids: EXPOSURE.counts(session, ids),
    )
    attempt = Attempt(
        id=secrets.token_hex(16),
        user_id=user.id,
        template=template,
        mode=mode,
        booking_id=booking_id,
        status=AttemptStatus.PREPARED if prepared else AttemptStatus.IN_PROGRESS,
        seed=form.seed,
        started_at=now,
        deadline_at=now + attempt_duration(blueprint),
    )
    attempt.sections = create_sections(blueprint, attempt, opened=not prepared)
    position = 0
    for section in form.sections:
        for assembled in section.items:
            position += 1
            attempt.items.append(
                AttemptItem(
                    ref=f"q{position}",
                    position=position,
                    section_code=section.code,
                    score_as=assembled.score_as,
                    max_points=assembled.points,
                    item_version_id=assembled.version_id,
                    option_order=list(assembled.option_order),
                    response=Response(),
                )
            )
    adaptive.add_first_items(session, attempt, blueprint)
    # The objects, not only their ids: the start answers with the form built from them.
    versions = form_versions(session, attempt.items)
    for attempt_item in attempt.items:
        attempt_item.item_version = versions[attempt_item.item_version_id]
    attempt.plays = audio_sources(attempt.items)
    return attempt


def start_proctored(
    session: Session, user: Principal | User, booking_id: int, now: dt.datetime
) -> tuple[Attempt, Started]:
    """Start the attempt of a checked-in booking in an open session, or return it.

    One attempt per booking (a unique key): a second start, from another seat after an
    interruption for instance, returns the same attempt with its time as it stands. A
    form prepared at check-in is started as it is: only its clocks are set.
    """
    from testing_center.operations.models import Booking, BookingStatus, SessionStatus

    booking = session.get(Booking, booking_id)
    if booking is None or booking.user_id != user.id:
        raise NotFound(N_("There is no such booking."), code="booking_not_found")
    existing = session.scalar(select(Attempt).where(Attempt.booking_id == booking.id))
    if existing is not None and existing.status != AttemptStatus.PREPARED:
        return existing, Started.RESUMED
    if booking.status != BookingStatus.CHECKED_IN:
        raise Conflict(
            N_("You can start only after the proctor has checked you in."),
            code="not_checked_in",
        )
    if booking.session.status != SessionStatus.OPEN:
        raise Conflict(N_("The session is not open."), code="session_not_open")
    template = booking.session.template
    blueprint = parse_blueprint(template.definition)
    open_practice = find_open_attempt(session, user, template.code)
    if open_practice is not None:  # one open attempt per exam: the sitting comes first
        finish_attempt(session, open_practice, now, FinishReason.CANDIDATE)
    if existing is not None:
        if existing.template_id == template.id:
            return existing, begin_prepared(session, existing, blueprint, now)
        discard_prepared(session, [booking.id])  # the session's exam changed since
    attempt = new_attempt(session, user, template, blueprint, PROCTORED, now, booking.id)
    try:
        with session.begin_nested():
            write_attempt(session, attempt)
    except IntegrityError:  # a concurrent start of the same booking won
        concurrent = session.scalar(select(Attempt).where(Attempt.booking_id == booking.id))
        if concurrent is None:
            raise
        return concurrent, Started.RESUMED
    return attempt, Started.WRITTEN


def prepare_form(session: Session, booking: Booking, now: dt.datetime) -> Attempt | None:
    """Assemble and write the form of a booking at check-in, to be started later.

    The start of a national sitting is thousands of starts in a minute, and assembling
    and writing a form (about 110 rows) made the start the costliest request of the day
    (benchmarks/README.md, "The start"). Check-in is spread over the hour before, so the
    form is written then and the start only sets the clocks. Returns None, and the start
    assembles the form as before, when the booking has an attempt already or the bank
    cannot fill the form now (logged: the start would fail the same way).
    """
    template = booking.session.template
    blueprint = parse_blueprint(template.definition)
    try:
        attempt = new_attempt(
            session, booking.user, template, blueprint, PROCTORED, now, booking.id, prepared=True
        )
    except AssemblyError as error:
        logger.warning("no form prepared for booking %s: %s", booking.id, error)
        return None
    try:
        with session.begin_nested():
            write_attempt(session, attempt)
    except IntegrityError:  # the booking has an attempt: a start was quicker
        return None
    return attempt


def begin_prepared(
    session: Session, attempt: Attempt, blueprint: Blueprint, now: dt.datetime
) -> Started:
    """Start a prepared attempt now: its clocks run from ``now``, its first section opens.

    The status changes with a conditional UPDATE, so of two starts of the same booking
    at once exactly one begins it; the other returns it as it stands.
    """
    deadline = now + attempt_duration(blueprint)
    begun = session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.status == AttemptStatus.PREPARED)
        .values(status=AttemptStatus.IN_PROGRESS, started_at=now, deadline_at=deadline)
    ).rowcount
    if not begun:
        session.refresh(attempt)  # as the other start left it
        return Started.RESUMED
    open_first_sections(blueprint, attempt.sections, now, deadline)
    session.flush()
    return Started.BEGUN


def discard_prepared(session: Session, booking_ids: Iterable[int] | Select) -> int:
    """Delete the prepared, never started forms of these bookings; return how many.

    For a sitting cancelled after check-in, a sitting closed with candidates who never
    started, and a prepared form whose session changed its exam.
    """
    attempt_ids = list(
        session.scalars(
            select(Attempt.id).where(
                Attempt.booking_id.in_(booking_ids), Attempt.status == AttemptStatus.PREPARED
            )
        )
    )
    if not attempt_ids:
        return 0
    items = select(AttemptItem.id).where(AttemptItem.attempt_id.in_(attempt_ids))
    session.execute(delete(Response).where(Response.attempt_item_id.in_(items)))
    for model in (AttemptItem, AttemptPlay, AttemptSection):
        session.execute(delete(model).where(model.attempt_id.in_(attempt_ids)))
    session.execute(delete(Attempt).where(Attempt.id.in_(attempt_ids)))
    return len(attempt_ids)


def owned_attempt(
    session: Session, attempt_id: str, user: Principal | User, *, player_view: bool = False
) -> Attempt:
    """Return the user's attempt with its form loaded, or raise ``NotFound``.

    ``player_view`` loads only what the player's state shows: not the item records,
    keys, explanations or details of the form's versions (a third of a state read's
    work; issue 8). Should the read close the attempt, scoring loads the keys then.
    """
    versions = selectinload(Attempt.items).selectinload(AttemptItem.item_version)
    attempt = session.scalar(
        select(Attempt)
        .where(Attempt.id == attempt_id, Attempt.user_id == user.id, STARTED)
        .options(
            versions.defer(ItemVersion.answer_key)
            .defer(ItemVersion.explanation)
            .defer(ItemVersion.details)
            if player_view
            else versions.selectinload(ItemVersion.item),
            selectinload(Attempt.items).selectinload(AttemptItem.response),
            selectinload(Attempt.template),
            selectinload(Attempt.plays),
            selectinload(Attempt.sections),
        )
        # Objects already in the session (a start that just wrote the form) are loaded
        # afresh with the options above, instead of one lazy query per item.
        .execution_options(populate_existing=True)
    )
    if attempt is None:
        raise attempt_not_found()
    return attempt


def owned_attempt_summary(session: Session, attempt_id: str, user: Principal | User) -> Attempt:
    """Return the user's attempt with its sections and template but not its form, or
    raise ``NotFound``: what finishing and the result need.

    Loading the form (items, versions, responses) was most of a finish's work, and the
    end of a national sitting is a burst of finishes (issue 8). The template is joined
    (one row each), the sections come in a second query.
    """
    attempt = session.scalar(
        select(Attempt)
        .where(Attempt.id == attempt_id, Attempt.user_id == user.id, STARTED)
        .options(joinedload(Attempt.template), selectinload(Attempt.sections))
    )
    if attempt is None:
        raise attempt_not_found()
    return attempt


def current_attempt(
    session: Session,
    attempt_id: str,
    user: Principal | User,
    now: dt.datetime,
    *,
    player_view: bool = False,
) -> Attempt:
    """Return the user's attempt as of ``now``: one whose time is up is finished first.

    Until the scheduler's sweep exists, reading an expired attempt is what closes it;
    either way it is scored with exactly the answers saved before the deadline.
    ``player_view`` as for ``owned_attempt``.
    """
    attempt = owned_attempt(session, attempt_id, user, player_view=player_view)
    now = attempt.paused_at or now  # a paused attempt's clock stands still
    if attempt.status == AttemptStatus.IN_PROGRESS and clock_step_due(
        attempt.deadline_at, attempt.sections, now
    ):
        # Lock the attempt row before changing sections (the same order as every other
        # step takes), then look again: another request may have done it meanwhile.
        session.execute(select(Attempt.id).where(Attempt.id == attempt.id).with_for_update())
        session.refresh(attempt)
        for section in attempt.sections:
            session.refresh(section)
        if attempt.status == AttemptStatus.IN_PROGRESS:
            advance(attempt, blueprint_of(attempt), now)
            if attempt.deadline_at <= now or all_finished(attempt):
                finish_attempt(session, attempt, now, FinishReason.DEADLINE)
            session.flush()
    return attempt


def clock_step_due(
    deadline_at: dt.datetime, sections: Iterable[AttemptSection], now: dt.datetime
) -> bool:
    """Whether a section's time or break has run out, or the whole attempt's (sections
    as ORM objects or as ``player.SectionRow``)."""
    return deadline_at <= now or any(
        (s.status == SectionStatus.OPEN and s.deadline_at <= now)
        or (s.status == SectionStatus.BREAK and s.available_at <= now)
        for s in sections
    )


def locked_attempt(
    session: Session, attempt_id: str, user: Principal | User, now: dt.datetime
) -> Attempt:
    """Return the open attempt with its row locked (a section step excludes saves)."""
    session.execute(select(Attempt.id).where(Attempt.id == attempt_id).with_for_update())
    attempt = current_attempt(session, attempt_id, user, now)
    if attempt.status != AttemptStatus.IN_PROGRESS:
        raise attempt_closed()
    if attempt.paused_at is not None:
        raise attempt_paused()
    return attempt


def finish_section(
    session: Session, user: Principal | User, attempt_id: str, code: str, now: dt.datetime
) -> Attempt:
    """Close an open section at the candidate's request and move on (or finish)."""
    attempt = locked_attempt(session, attempt_id, user, now)
    section = section_named(attempt, code)
    if section.status != SectionStatus.OPEN:
        raise Conflict(N_("This section is not open."), code="section_not_open")
    close_section(section, now, FinishReason.CANDIDATE)
    open_next(attempt, blueprint_of(attempt), section, now)
    if all_finished(attempt):
        finish_attempt(session, attempt, now, FinishReason.CANDIDATE)
    session.flush()
    return attempt


def start_section(
    session: Session, user: Principal | User, attempt_id: str, code: str, now: dt.datetime
) -> Attempt:
    """Start a section whose break is running, before the break ends."""
    attempt = locked_attempt(session, attempt_id, user, now)
    section = section_named(attempt, code)
    if section.status != SectionStatus.BREAK:
        raise Conflict(N_("This section cannot be started now."), code="section_not_waiting")
    start(section, now, attempt.deadline_at)
    session.flush()
    return attempt


def section_named(attempt: Attempt, code: str) -> AttemptSection:
    section = next((s for s in attempt.sections if s.code == code), None)
    if section is None:
        raise NotFound(N_("This attempt has no section with this code."), code="section_not_found")
    return section


def reviewable_attempt(
    session: Session, attempt_id: str, user: Principal | User, now: dt.datetime
) -> Attempt:
    """Return a finished attempt whose template offers a review (practice only)."""
    attempt = current_attempt(session, attempt_id, user, now)
    if not parse_blueprint(attempt.template.definition).review:
        raise NotFound(N_("This test has no review of answers."), code="review_not_available")
    if attempt.status != AttemptStatus.FINISHED:
        raise Conflict(N_("The attempt is still in progress."), code="attempt_in_progress")
    return attempt


def save_response(
    session: Session,
    user: Principal | User,
    attempt_id: str,
    item_ref: str,
    *,
    value: Any,
    client_seq: int,
    flagged: bool | None,
    now: dt.datetime,
) -> SaveAck:
    """Store one answer if it is newer than the stored one; refuse after the deadline.

    The attempt row is read with a shared lock (PostgreSQL ``FOR SHARE``), so a save
    and a finish of the same attempt cannot interleave: either the save lands before
    the finish scores, or it sees the attempt closed and is refused.

    Three statements when the save is written (issue 8): the token, this read, and
    the conditional UPDATE, which itself checks that attempt and section are open and
    returns what it stored; why a save was refused is looked up only when it was.

    The acknowledgement carries the section's deadline, so the player keeps its
    countdown true from its saves and reads the clock only when it has not saved for a
    minute: 10,000 pages' clock reads cost a node about half as much as their saves.
    """
    # Core execution on the session's connection (same transaction): these statements
    # return rows, not objects, and the ORM's execution layer cost a save about a fifth
    # of its CPU (issue 8).
    connection = session.connection()
    row = connection.execute(
        save_target_query(), {"attempt_id": attempt_id, "user_id": user.id, "item_ref": item_ref}
    ).one_or_none()
    if row is None:
        owned_attempt(session, attempt_id, user)  # raises when the attempt is not theirs
        raise NotFound(N_("This attempt has no item with this reference."), code="item_not_found")
    attempt_item_id, section_code, section_deadline_at, content, item_type, definition = row
    if value in ("", [], {}):
        value = None  # an emptied answer is no answer
    if value is not None:
        try:
            ITEM_TYPES[item_type].check_response(content, value)
        except InvalidResponse:
            check_still_open(session, attempt_id, section_code, now)  # closed comes first
            raise
    gate = adaptive.gate(session, attempt_id, attempt_item_id, section_code, definition)
    statement = fixed_save_update() if gate is None else save_update(adaptive.answer_open(gate))
    stored = connection.execute(
        statement,
        {
            "target_item_id": attempt_item_id,
            "attempt_id": attempt_id,
            "section_code": section_code,
            "moment": now,
            "new_value": value,
            "new_seq": client_seq,
            "new_flagged": flagged,
        },
    ).one_or_none()
    written = stored is not None
    if not written:
        check_still_open(session, attempt_id, section_code, now)
        stored = session.execute(
            select(
                Response.value, Response.client_seq, Response.is_flagged, Response.saved_at
            ).where(Response.attempt_item_id == attempt_item_id)
        ).one()
    ack = SaveAck(
        item_ref=item_ref,
        accepted=written or is_same_save(stored, client_seq, value, flagged),
        client_seq=stored.client_seq,
        response=stored.value,
        flagged=stored.is_flagged,
        saved_at=stored.saved_at,
        section_code=section_code,
        section_deadline_at=section_deadline_at,
    )
    if gate is not None:  # an adaptive section: the answer brings the next item
        done = adaptive.after_save(
            session, gate, written=bool(written), accepted=ack.accepted, value=value, now=now
        )
        if done is not None:
            finish_attempt(session, done, now, FinishReason.CANDIDATE)
    return ack


@functools.cache
def save_target_query() -> Select:
    """The save's first read: the requester's attempt item with what checking the answer
    needs and its section's deadline, locking the attempt row for share.

    Built once with bound parameters: on the busiest request of an exam day, building
    the expression and its cache key anew each time cost about as much as the query.
    """
    return (
        select(
            AttemptItem.id,
            AttemptItem.section_code,
            AttemptSection.deadline_at,
            ItemVersion.content,
            ItemVersion.item_type,
            ExamTemplate.definition,
        )
        .select_from(Attempt)
        .join(AttemptItem, AttemptItem.attempt_id == Attempt.id)
        .join(
            AttemptSection,
            (AttemptSection.attempt_id == Attempt.id)
            & (AttemptSection.code == AttemptItem.section_code),
        )
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
        .where(
            Attempt.id == bindparam("attempt_id"),
            Attempt.user_id == bindparam("user_id"),
            AttemptItem.ref == bindparam("item_ref"),
        )
        .with_for_update(read=True, of=Attempt)
    )


@functools.cache
def fixed_save_update() -> Update:
    """The save's UPDATE for fixed sections, built once (see ``save_target_query``)."""
    return save_update(true())


def save_update(answer_open: ColumnElement[bool]) -> Update:
    """The save's conditional UPDATE ... RETURNING, with bound parameters.

    It writes only a newer ``client_seq`` while attempt and section are open and
    ``answer_open`` holds (adaptive sections: no later item exists). A ``new_flagged``
    of None keeps the stored flag.
    """
    moment = bindparam("moment", type_=Attempt.deadline_at.type)
    attempt_id = bindparam("attempt_id", type_=Attempt.id.type)
    return (
        update(Response)
        .where(
            Response.attempt_item_id == bindparam("target_item_id"),
            Response.client_seq < bindparam("new_seq"),
            open_attempt_exists(attempt_id, moment),
            open_section_exists(attempt_id, bindparam("section_code"), moment),
            answer_open,
        )
        .values(
            value=bindparam("new_value", type_=Response.value.type),
            client_seq=bindparam("new_seq"),
            saved_at=moment,
            is_flagged=func.coalesce(
                bindparam("new_flagged", type_=Response.is_flagged.type), Response.is_flagged
            ),
        )
        .returning(Response.value, Response.client_seq, Response.is_flagged, Response.saved_at)
    )


def record_save_retries(
    session: Session, attempt_id: str, user: Principal | User, retries: int, now: dt.datetime
) -> None:
    """Add the retries a candidate's page reports to the attempt, for the proctor's roster.

    Called after the save's own commit, in a transaction of its own: the save holds the
    attempt row only for share, and a counter must never cost an answer.
    """
    session.execute(
        update(Attempt)
        .where(Attempt.id == attempt_id, Attempt.user_id == user.id)
        .values(save_retries=Attempt.save_retries + retries, save_trouble_at=now)
        .execution_options(synchronize_session=False)
    )


def is_same_save(stored: Any, client_seq: int, value: Any, flagged: bool | None) -> bool:
    """True when the stored answer is this very save (a retry after a lost acknowledgement)."""
    return (
        stored.client_seq == client_seq
        and stored.value == value
        and (flagged is None or stored.is_flagged == flagged)
    )


def open_attempt_exists(attempt_id: ColumnElement[str], now: ColumnElement[Any]) -> Exists:
    """SQL condition: the attempt is in progress and its deadline has not passed.

    Part of the save's own UPDATE, so on SQLite (where the earlier read is not locked)
    a save that comes after a finish's claim cannot write.
    """
    return (
        select(Attempt.id)
        .where(
            Attempt.id == attempt_id,
            Attempt.status == AttemptStatus.IN_PROGRESS,
            Attempt.deadline_at > now,
            Attempt.paused_at.is_(None),
        )
        .exists()
    )


def open_section_exists(
    attempt_id: ColumnElement[str], section_code: ColumnElement[str], now: ColumnElement[Any]
) -> Exists:
    """SQL condition: the item's section has started, is not finished, and has time left."""
    return (
        select(AttemptSection.id)
        .where(
            AttemptSection.attempt_id == attempt_id,
            AttemptSection.code == section_code,
            AttemptSection.started_at.is_not(None),
            AttemptSection.finished_at.is_(None),
            AttemptSection.deadline_at > now,
        )
        .exists()
    )


def check_still_open(
    session: Session, attempt_id: str, section_code: str, now: dt.datetime
) -> None:
    """Raise the reason a save cannot be written now (attempt or section closed)."""
    status, deadline_at, paused_at = session.execute(
        select(Attempt.status, Attempt.deadline_at, Attempt.paused_at).where(
            Attempt.id == attempt_id
        )
    ).one()
    if status == AttemptStatus.PREPARED:
        raise attempt_not_found()  # not started: as if it did not exist yet
    if status != AttemptStatus.IN_PROGRESS:
        raise attempt_closed()
    if paused_at is not None:
        raise attempt_paused()
    section = session.execute(
        select(
            AttemptSection.started_at, AttemptSection.finished_at, AttemptSection.deadline_at
        ).where(AttemptSection.attempt_id == attempt_id, AttemptSection.code == section_code)
    ).one()
    if section.finished_at is not None:
        raise Conflict(
            N_("This section is closed; its answers can no longer be changed."),
            code="section_closed",
        )
    if section.started_at is None:
        raise Conflict(N_("This section has not started yet."), code="section_not_open")
    if now >= deadline_at:
        raise Conflict(
            N_("The time for this exam is over; the answer was not saved."),
            code="deadline_passed",
        )
    if now >= section.deadline_at:
        raise Conflict(
            N_("The time for this section is over; the answer was not saved."),
            code="deadline_passed",
        )


# The attempt's columns a finish's claim reads again (all of them: its relationships
# are not reloaded, so the template is not read again).
ATTEMPT_COLUMNS = [column.key for column in inspect(Attempt).column_attrs]


def claim_for_finish(
    session: Session, attempt: Attempt, now: dt.datetime, reason: FinishReason
) -> bool:
    """Mark the attempt finished if it is in progress; return whether this call did it.

    The UPDATE comes before the responses are read: it waits for saves holding the
    shared lock (PostgreSQL) or the write lock (SQLite), and saves after it are refused,
    so the responses read next are exactly the acknowledged ones.

    The attempt may have changed since it was loaded (a proctor's extra time moves its
    deadline and its section's): the UPDATE takes the deadline from the row it claims,
    and the attempt and its sections are read again after it, overwriting what was
    loaded, so the sections are closed by their clocks as they are now.
    """
    deadline = Attempt.deadline_at
    claimed = session.execute(
        update(Attempt)
        .where(Attempt.id == attempt.id, Attempt.status == AttemptStatus.IN_PROGRESS)
        .values(
            status=AttemptStatus.FINISHED,
            finished_at=case((deadline < now, deadline), else_=literal(now, deadline.type)),
            finish_reason=case((deadline <= now, FinishReason.DEADLINE.value), else_=reason.value),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(attempt, attribute_names=ATTEMPT_COLUMNS)
    session.scalars(  # read for its effect: the loaded sections take the stored values
        select(AttemptSection)
        .where(AttemptSection.attempt_id == attempt.id)
        .execution_options(populate_existing=True)
    ).all()
    return bool(claimed)


def saved_responses(session: Session, attempt: Attempt) -> list[ResponseToGrade]:
    """Read every presented item's key and stored response, with the corrections and
    stored item parameters in force (a dropped item is left out)."""
    rows = session.execute(
        select(
            AttemptItem.score_as,
            AttemptItem.item_version_id,
            ItemVersion.item_type,
            ItemVersion.answer_key,
            Response.value,
            ItemVersion.details,
            AttemptItem.max_points,
        )
        .join(Response, Response.attempt_item_id == AttemptItem.id)
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .where(AttemptItem.attempt_id == attempt.id)
        .order_by(AttemptItem.position)
    ).all()
    overrides = scoring_inputs(session, (row.item_version_id for row in rows))
    responses = []
    for section, version_id, item_type, key, value, details, points in rows:
        override = overrides.get(version_id)
        if override and override.dropped:
            continue
        responses.append(
            ResponseToGrade(
                section,
                item_type,
                override.answer_key if override else key,
                value,
                max_points=points,
                irt=(override and override.irt) or bundle_parameters(details),
                full_credit=bool(override and override.full_credit),
            )
        )
    return responses


def bundle_parameters(details: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the IRT parameters an item version was imported with, labelled by the scale
    its bundle names (the parameter version a result records)."""
    irt = (details.get("difficulty") or {}).get("irt")
    if not irt:
        return None
    return {**irt, "version": irt.get("scale") or "bundle"}


def finish_attempt(
    session: Session, attempt: Attempt, now: dt.datetime, reason: FinishReason
) -> Attempt:
    """Close the attempt and score exactly what was saved; finishing twice changes nothing."""
    close_and_score(session, attempt, now, reason)
    return attempt


def close_and_score(
    session: Session, attempt: Attempt, now: dt.datetime, reason: FinishReason
) -> bool:
    """Claim the finish and score; False when another request or sweep claimed it first."""
    if not claim_for_finish(session, attempt, now, reason):
        return False
    for section in attempt.sections:
        if section.finished_at is None:
            ended = (
                section.deadline_at if section.deadline_at and section.deadline_at < now else now
            )
            close_section(section, ended, attempt.finish_reason)
    blueprint = parse_blueprint(attempt.template.definition)
    graded = grade_responses(saved_responses(session, attempt))
    score = blueprint.scoring.score(graded, blueprint.scoring_sections)
    attempt.result = score.as_dict()
    session.flush()
    return True


def results_released(session: Session, attempt: Attempt) -> bool:
    """Whether the candidate may see the scores: at once in practice; for a proctored
    sitting once its session's results are released; never for a voided attempt."""
    from testing_center.operations.models import Booking, ExamSession

    if attempt.status == AttemptStatus.VOIDED:
        return False
    if attempt.booking_id is None:
        return True
    released_at = session.scalar(
        select(ExamSession.results_released_at)
        .join(Booking, Booking.session_id == ExamSession.id)
        .where(Booking.id == attempt.booking_id)
    )
    return released_at is not None


def expired_attempt_ids(session: Session, now: dt.datetime, limit: int = 1000) -> list[str]:
    """Attempts whose time is up and that nobody has finished (the scheduler's sweep);
    a paused attempt's clock stands still, so it is never among them."""
    return list(
        session.scalars(
            select(Attempt.id)
            .where(
                Attempt.status == AttemptStatus.IN_PROGRESS,
                Attempt.paused_at.is_(None),
                Attempt.deadline_at <= now,
            )
            .order_by(Attempt.deadline_at)
            .limit(limit)
        )
    )


def finish_if_expired(session: Session, attempt_id: str, now: dt.datetime) -> bool:
    """Finish and score one expired attempt with exactly its saved answers.

    Safe to run from two sweeps at once: the finish is claimed by one conditional
    UPDATE, so the second finds nothing to do. Returns whether this call finished it.
    """
    attempt = session.scalar(select(Attempt).where(Attempt.id == attempt_id).with_for_update())
    if (
        attempt is None
        or attempt.status != AttemptStatus.IN_PROGRESS
        or attempt.paused_at is not None
        or attempt.deadline_at > now
    ):
        return False
    advance(attempt, blueprint_of(attempt), attempt.deadline_at)
    return close_and_score(session, attempt, now, FinishReason.DEADLINE)


def blueprint_of(attempt: Attempt) -> Blueprint:
    return parse_blueprint(attempt.template.definition)


# ---- audio ------------------------------------------------------------------------------


def stimulus_keys(contents: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Name each shared stimulus of a form "s1", "s2"... in form order.

    Candidates see these keys, never bank refs, so a payload does not identify items.
    """
    keys: dict[str, str] = {}
    for content in contents:
        stimulus = content.get("stimulus")
        if stimulus and stimulus["ref"] not in keys:
            keys[stimulus["ref"]] = f"s{len(keys) + 1}"
    return keys


def form_versions(session: Session, attempt_items: list[AttemptItem]) -> dict[int, ItemVersion]:
    """The item versions of a new form by id, in one query."""
    ids = [i.item_version_id for i in attempt_items]
    return {v.id: v for v in session.scalars(select(ItemVersion).where(ItemVersion.id.in_(ids)))}


def audio_sources(attempt_items: list[AttemptItem]) -> list[AttemptPlay]:
    """Return one play counter per audio clip of the form (item clips and conversations)."""
    contents = [i.item_version.content for i in attempt_items]
    keys = stimulus_keys(contents)
    plays: dict[str, AttemptPlay] = {}
    for attempt_item, content in zip(attempt_items, contents, strict=True):
        stimulus = content.get("stimulus") or {}
        for source, audio in (
            (attempt_item.ref, content.get("audio")),
            (keys.get(stimulus.get("ref")), stimulus.get("audio")),
        ):
            if audio and source not in plays:
                plays[source] = AttemptPlay(
                    source=source, media_sha256=audio["media"], play_limit=audio["play_limit"]
                )
    return list(plays.values())


def record_play(
    session: Session, user: Principal | User, attempt_id: str, source: str, now: dt.datetime
) -> AttemptPlay:
    """Count one play of an audio source, refusing it past the limit or after the deadline."""
    attempt = current_attempt(session, attempt_id, user, now)
    if attempt.status != AttemptStatus.IN_PROGRESS:
        raise attempt_closed()
    if attempt.paused_at is not None:
        raise attempt_paused()
    play = next((p for p in attempt.plays if p.source == source), None)
    if play is None:
        raise NotFound(
            N_("This attempt has no recording with this reference."), code="audio_not_found"
        )
    if not source_is_open(attempt, source):
        raise Conflict(N_("This section has not started yet."), code="section_not_open")
    counted = session.execute(
        update(AttemptPlay)
        .where(AttemptPlay.id == play.id, AttemptPlay.plays < AttemptPlay.play_limit)
        .values(plays=AttemptPlay.plays + 1, last_played_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.refresh(play)
    if not counted:
        raise Conflict(
            N_("This recording has been played as often as allowed."), code="play_limit_reached"
        )
    return play


def source_is_open(attempt: Attempt, source: str) -> bool:
    """A recording plays only while an item using it is in an open section."""
    open_codes = {s.code for s in attempt.sections if s.status == SectionStatus.OPEN}
    keys = stimulus_keys(item.item_version.content for item in attempt.items)
    for item in attempt.items:
        stimulus = item.item_version.content.get("stimulus")
        uses = item.ref == source or (stimulus and keys.get(stimulus["ref"]) == source)
        if uses and item.section_code in open_codes:
            return True
    return False


def granted_audio(session: Session, user: Principal | User, attempt_id: str, source: str) -> Media:
    """Return the audio of a source of the user's attempt (the grant was checked before)."""
    media = session.scalar(
        select(Media)
        .join(AttemptPlay, AttemptPlay.media_sha256 == Media.sha256)
        .join(Attempt, Attempt.id == AttemptPlay.attempt_id)
        .where(
            Attempt.id == attempt_id,
            Attempt.user_id == user.id,
            AttemptPlay.source == source,
            AttemptPlay.plays > 0,
        )
        .options(undefer(Media.data))
    )
    if media is None:
        raise NotFound(
            N_("This attempt has no recording with this reference."), code="audio_not_found"
        )
    return media


@dataclass(frozen=True)
class Rescored:
    """One finished attempt whose result a re-scoring changed."""

    attempt_id: str
    previous: dict[str, Any]
    current: dict[str, Any]

    @property
    def pass_changed(self) -> bool:
        return self.previous.get("passed") != self.current.get("passed")


def rescore_attempts(
    session: Session,
    *,
    reason: str,
    now: dt.datetime,
    actor: User | None = None,
    template_code: str | None = None,
    apply: bool = True,
) -> tuple[int, list[Rescored]]:
    """Score finished attempts again from their stored answers; record what changed.

    Applies the corrections and stored item parameters in force. Returns how many were
    checked and the changes. With ``apply`` false nothing is written (a dry run shows
    what a correction would do, computed exactly as applying it would). Each applied
    change keeps the old result, who and why, and marks the certificate for re-issue.
    """
    query = select(Attempt).where(Attempt.status == AttemptStatus.FINISHED)
    if template_code:
        query = query.join(ExamTemplate).where(ExamTemplate.code == template_code)
    checked, changes = 0, []
    for attempt in session.scalars(query.order_by(Attempt.finished_at)):
        checked += 1
        blueprint = blueprint_of(attempt)
        graded = grade_responses(saved_responses(session, attempt))
        current = blueprint.scoring.score(graded, blueprint.scoring_sections).as_dict()
        if current == attempt.result:
            continue
        changes.append(Rescored(attempt.id, attempt.result or {}, current))
        if apply:
            session.add(
                ScoreRevision(
                    attempt_id=attempt.id,
                    previous=attempt.result or {},
                    current=current,
                    reason=reason[:500],
                    at=now,
                    actor_id=actor.id if actor else None,
                    reissue_pending=True,
                )
            )
            attempt.result = current
    session.flush()
    return checked, changes
