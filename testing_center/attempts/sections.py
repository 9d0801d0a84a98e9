"""Section clocks: which sections are open, when each closes, and moving on.

One shared clock (JFT-Basic style): every section runs until the attempt's deadline;
with free navigation all are open at once, with sequential navigation each opens when
the one before it is finished. A clock per section (JLPT style): sections run one after
another, each with its own duration, optionally with a break before the next; when a
section's time is up the server closes it, and the next one starts at that moment (or
when its break ends), whether or not the candidate's page is there to see it.
"""

from __future__ import annotations

import datetime as dt

from exam_templates.blueprint import Blueprint
from testing_center.attempts.models import Attempt, AttemptSection, SectionStatus


def attempt_duration(blueprint: Blueprint) -> dt.timedelta:
    """The longest the attempt can run: the shared clock, or all sections and breaks."""
    breaks = blueprint.break_seconds * max(len(blueprint.sections) - 1, 0)
    return dt.timedelta(seconds=blueprint.duration_seconds + breaks)


def start(section: AttemptSection, at: dt.datetime, attempt_deadline: dt.datetime) -> None:
    """Open ``section`` at ``at``: its own clock runs from then, or the shared one goes on."""
    section.available_at = section.available_at or at
    section.started_at = at
    if section.duration_seconds:
        section.deadline_at = min(
            at + dt.timedelta(seconds=section.duration_seconds), attempt_deadline
        )
    else:
        section.deadline_at = attempt_deadline


def create_sections(
    blueprint: Blueprint, attempt: Attempt, *, opened: bool = True
) -> list[AttemptSection]:
    """The sections of a new attempt, the first (or, free navigation, all) opened unless
    the attempt is prepared ahead of its start (``opened=False``)."""
    sections = [
        AttemptSection(code=spec.code, position=position, duration_seconds=spec.duration_seconds)
        for position, spec in enumerate(blueprint.sections, start=1)
    ]
    if opened:
        open_first_sections(blueprint, sections, attempt.started_at, attempt.deadline_at)
    return sections


def open_first_sections(
    blueprint: Blueprint,
    sections: list[AttemptSection],
    at: dt.datetime,
    attempt_deadline: dt.datetime,
) -> None:
    """Open what a start opens: the first section, or with free navigation every one."""
    for section in sections:
        if section.position == 1 or blueprint.navigation == "free":
            start(section, at, attempt_deadline)


def close(section: AttemptSection, at: dt.datetime, reason: str) -> None:
    section.finished_at = at
    section.finish_reason = reason


def open_next(
    attempt: Attempt, blueprint: Blueprint, after: AttemptSection, at: dt.datetime
) -> None:
    """After ``after`` finished at ``at``: start the next section, or begin its break."""
    following = [s for s in attempt.sections if s.position == after.position + 1]
    if not following or following[0].status != SectionStatus.WAITING:
        return
    nxt = following[0]
    if blueprint.break_seconds:
        nxt.available_at = at + dt.timedelta(seconds=blueprint.break_seconds)
    else:
        start(nxt, at, attempt.deadline_at)


def advance(attempt: Attempt, blueprint: Blueprint, now: dt.datetime) -> None:
    """Bring the sections up to ``now``: close what ran out, start what is due."""
    for section in attempt.sections:
        if section.status == SectionStatus.BREAK and section.available_at <= now:
            start(section, section.available_at, attempt.deadline_at)
        if section.status == SectionStatus.OPEN and section.deadline_at <= now:
            close(section, section.deadline_at, "deadline")
            open_next(attempt, blueprint, section, section.deadline_at)


def current_section(attempt: Attempt) -> AttemptSection | None:
    """The section the candidate works in now (or waits for): the first not finished."""
    return next((s for s in attempt.sections if s.status != SectionStatus.FINISHED), None)


def all_finished(attempt: Attempt) -> bool:
    return all(s.status == SectionStatus.FINISHED for s in attempt.sections)
