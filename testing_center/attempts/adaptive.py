"""Adaptive sections at run time: the first item at the start, the next after each answer.

An adaptive section (``SectionSpec.adaptive`` in the blueprint) has no assembled form.
When the attempt starts, its first item is chosen (at the configured initial ability)
and written as an ``AttemptItem`` like any other. When a save of the section's current
(last) item is written with an answer, the server grades the section's answers with the
item types' rules (credit of at least half is right; key corrections and stored item
parameters apply, as in scoring), updates the EAP ability and appends the next item -
or, once a stopping rule is met, closes the section: the next section opens, or the
attempt is finished and scored.

The section's earlier items are final: a save to one of them is refused, except the
replay of the very save that is stored, which is acknowledged and changes nothing. So a
retried or stale save never advances the test twice. Nothing is stored besides the items
and responses: the ability is recomputed from them, and every choice is reproducible
from the attempt's seed (the randomesque draw per step, the Sympson-Hetter lottery per
item, fixed for the whole attempt so that an item once set aside stays aside). The
candidate's payloads carry neither ability nor parameters nor keys.

Eligible items: approved, active, matching the pool filters, with IRT parameters (stored
calibrated ones, else the ``difficulty.irt`` their version was imported with), not part
of a set and without a shared stimulus, not dropped by a correction, and not already in
the attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from exam_templates.blueprint import AdaptiveSpec, Blueprint, parse_blueprint
from exam_templates.errors import AssemblyError
from exam_templates.models import ExamTemplate
from item_bank.models import Item, ItemVersion
from item_bank.services import approved_pool
from item_bank.types import ITEM_TYPES
from scoring.cat import CatBank, next_item
from testing_center.attempts.models import (
    Attempt,
    AttemptItem,
    AttemptPlay,
    AttemptSection,
    Response,
)
from testing_center.attempts.sections import all_finished, close, open_next
from testing_center.errors import Conflict
from testing_center.i18n import N_
from testing_center.psychometrics.services import ItemScoring, scoring_inputs

logger = logging.getLogger(__name__)

SECTION_COMPLETED = "completed"  # finish reason of a section its stopping rule ended


@dataclass(frozen=True)
class PoolItem:
    """One item an adaptive section may give (or gave): identity, parameters, topic."""

    item_id: int
    ref: str
    version_id: int
    topic: str
    a: float
    b: float
    c: float
    option_ids: tuple[str, ...] = ()
    audio: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Gate:
    """What a save to an item of an adaptive section must respect."""

    attempt_id: str
    section_code: str
    section_index: int
    spec: AdaptiveSpec
    blueprint: Blueprint
    position: int
    locked: bool  # a later item exists: this one's answer is final


def answer_final() -> Conflict:
    """The refusal of a change to an adaptive item that was already answered."""
    return Conflict(
        N_("This answer is final: the test has moved on to the next question."),
        code="answer_final",
    )


def adaptive_spec(blueprint: Blueprint, section_code: str) -> tuple[int, AdaptiveSpec] | None:
    """The position and adaptive rules of a section, or None for a fixed section."""
    for index, section in enumerate(blueprint.sections):
        if section.code == section_code and section.adaptive is not None:
            return index, section.adaptive
    return None


# ---- the pool ----------------------------------------------------------------------------


def irt_parameters(
    details: Mapping[str, Any], scoring: ItemScoring | None
) -> tuple[float, float, float] | None:
    """(a, b, c) as scoring uses them: stored parameters first, else the imported ones."""
    irt = (scoring.irt if scoring and scoring.irt else None) or (
        (details.get("difficulty") or {}).get("irt")
    )
    if not irt:
        return None
    try:
        a, b, c = float(irt.get("a", 1.0)), float(irt.get("b", 0.0)), float(irt.get("c") or 0.0)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite([a, b, c]).all() and a > 0 and 0 <= c < 1):
        return None
    return a, b, c


def eligible_pool(session: Session, spec: AdaptiveSpec, exclude: set[int]) -> list[PoolItem]:
    """The items the section may still give: see the module docstring."""
    entries = [
        e
        for e in approved_pool(session, spec.filters)
        if e.group is None and e.item_id not in exclude
    ]
    if not entries:
        return []
    ids = [entry.version_id for entry in entries]
    versions = {
        version_id: (details, content)
        for version_id, details, content in session.execute(
            select(ItemVersion.id, ItemVersion.details, ItemVersion.content).where(
                ItemVersion.id.in_(ids)
            )
        )
    }
    overrides = scoring_inputs(session, ids)
    pool = []
    for entry in entries:
        details, content = versions[entry.version_id]
        scoring = overrides.get(entry.version_id)
        parameters = irt_parameters(details, scoring)
        if parameters is None or content.get("stimulus") or (scoring and scoring.dropped):
            continue
        pool.append(
            PoolItem(
                entry.item_id,
                entry.item_ref,
                entry.version_id,
                entry.topic,
                *parameters,
                option_ids=entry.option_ids,
                audio=content.get("audio"),
            )
        )
    return pool


def items_in_attempt(session: Session, version_ids: Iterable[int]) -> set[int]:
    """The bank items (any version) behind these item versions."""
    ids = list(version_ids)
    if not ids:
        return set()
    return set(session.scalars(select(ItemVersion.item_id).where(ItemVersion.id.in_(ids))))


# ---- selection ---------------------------------------------------------------------------


def choose_next(
    spec: AdaptiveSpec,
    seed: int,
    section_index: int,
    given: list[tuple[PoolItem, bool]],
    pool: list[PoolItem],
) -> PoolItem | None:
    """The next item after the answers ``given`` (item, right), or None to stop.

    Reproducible from the attempt's seed: the randomesque draw comes from a generator
    seeded by (seed, section, step) and each item's Sympson-Hetter lottery from one
    seeded by (seed, section, item), so an item whose lottery failed stays aside.
    """
    items = [item for item, _ in given] + pool
    if not items:
        return None
    bank = CatBank(
        tuple(item.ref for item in items),
        np.array([item.a for item in items]),
        np.array([item.b for item in items]),
        np.array([item.c for item in items]),
        tuple(item.topic for item in items),
    )
    lottery = None
    if spec.config.exposure == "sympson-hetter":
        lottery = [
            np.random.default_rng([seed, section_index, item.item_id]).random() for item in items
        ]
    index = next_item(
        spec.config,
        bank,
        list(range(len(given))),
        [1 if right else 0 for _, right in given],
        np.random.default_rng([seed, section_index, len(given)]),
        lottery=lottery,
    )
    return None if index is None else items[index]


def new_attempt_item(
    item: PoolItem,
    spec: AdaptiveSpec,
    section_code: str,
    position: int,
    rng: np.random.Generator | None,
) -> AttemptItem:
    """An attempt item for ``item`` (options shuffled when ``rng`` is given)."""
    order = list(item.option_ids)
    if rng is not None:
        rng.shuffle(order)
    return AttemptItem(
        ref=f"q{position}",
        position=position,
        section_code=section_code,
        score_as=spec.score_as,
        max_points=spec.points,
        item_version_id=item.version_id,
        option_order=order,
        response=Response(),
    )


def option_rng(
    blueprint: Blueprint, seed: int, section_index: int, step: int
) -> np.random.Generator | None:
    """The generator that shuffles an adaptive item's options (None: no shuffling)."""
    if not blueprint.shuffle_options:
        return None
    return np.random.default_rng([seed, section_index, step, 1])


def add_first_items(session: Session, attempt: Attempt, blueprint: Blueprint) -> None:
    """Append the first item of every adaptive section to a new (unflushed) attempt.

    Raise ``AssemblyError`` when a section's pool has fewer eligible items than the
    section's minimum length.
    """
    if all(section.adaptive is None for section in blueprint.sections):
        return  # a fixed form: no need to look up the items it took
    taken = items_in_attempt(session, (item.item_version_id for item in attempt.items))
    position = len(attempt.items)
    for index, section in enumerate(blueprint.sections):
        spec = section.adaptive
        if spec is None:
            continue
        pool = eligible_pool(session, spec, taken)
        if len(pool) < spec.config.min_items:
            filters = ", ".join(f"{k}={v}" for k, v in sorted(spec.filters.items()))
            raise AssemblyError(
                f"adaptive section {section.code} needs {spec.config.min_items} approved items "
                f"with IRT parameters ({filters}); the bank has {len(pool)}"
            )
        first = choose_next(spec, attempt.seed, index, [], pool)
        if first is None:  # pragma: no cover - min_items >= 1 items exist
            continue
        position += 1
        rng = option_rng(blueprint, attempt.seed, index, 0)
        attempt.items.append(new_attempt_item(first, spec, section.code, position, rng))
        taken.add(first.item_id)


# ---- saving ------------------------------------------------------------------------------


def gate(
    session: Session,
    attempt_id: str,
    attempt_item_id: int,
    section_code: str,
    definition: dict[str, Any] | None = None,
) -> Gate | None:
    """Return the rules for a save to this item if its section is adaptive (else None).

    ``definition`` is the attempt's template document when the caller has read it.
    """
    if definition is None:
        definition = session.scalar(
            select(ExamTemplate.definition)
            .join(Attempt, Attempt.template_id == ExamTemplate.id)
            .where(Attempt.id == attempt_id)
        )
    if not any("adaptive" in section for section in definition.get("sections", [])):
        return None  # a fixed form: no need to parse the blueprint on every save
    blueprint = parse_blueprint(definition)
    found = adaptive_spec(blueprint, section_code)
    if found is None:
        return None
    position = session.scalar(select(AttemptItem.position).where(AttemptItem.id == attempt_item_id))
    last = session.scalar(
        select(func.max(AttemptItem.position)).where(
            AttemptItem.attempt_id == attempt_id, AttemptItem.section_code == section_code
        )
    )
    return Gate(attempt_id, section_code, found[0], found[1], blueprint, position, position < last)


def answer_open(rules: Gate) -> ColumnElement[bool]:
    """SQL condition for a save's UPDATE: no later item of the adaptive section exists.

    Part of the statement itself, so a save racing the append of the next item cannot
    change the answer the next item was chosen on.
    """
    later = aliased(AttemptItem)
    return ~(
        select(later.id)
        .where(
            later.attempt_id == rules.attempt_id,
            later.section_code == rules.section_code,
            later.position > rules.position,
        )
        .exists()
    )


def section_answers(
    session: Session, attempt_id: str, section_code: str
) -> list[tuple[PoolItem, bool]]:
    """The section's items in order with whether each answer is right (unanswered: wrong).

    Items without usable parameters (or dropped by a correction) are left out: they
    do not count towards the ability, as in scoring.
    """
    rows = session.execute(
        select(
            AttemptItem.item_version_id,
            Response.value,
            ItemVersion.item_type,
            ItemVersion.answer_key,
            ItemVersion.details,
            Item.id,
            Item.ref,
            Item.topic,
        )
        .join(Response, Response.attempt_item_id == AttemptItem.id)
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(Item, Item.id == ItemVersion.item_id)
        .where(AttemptItem.attempt_id == attempt_id, AttemptItem.section_code == section_code)
        .order_by(AttemptItem.position)
    ).all()
    overrides = scoring_inputs(session, (row.item_version_id for row in rows))
    answers = []
    for version_id, value, item_type, key, details, item_id, ref, topic in rows:
        scoring = overrides.get(version_id)
        parameters = irt_parameters(details, scoring)
        if parameters is None or (scoring and scoring.dropped):
            continue
        if scoring and scoring.full_credit:
            credit = 1.0
        elif value is None:
            credit = 0.0
        else:
            credit = ITEM_TYPES[item_type].grade(scoring.answer_key if scoring else key, value)
        answers.append((PoolItem(item_id, ref, version_id, topic, *parameters), credit >= 0.5))
    return answers


def after_save(
    session: Session, rules: Gate, *, written: bool, accepted: bool, value: Any, now: dt.datetime
) -> Attempt | None:
    """Act on a save to an adaptive item; return the attempt if it must now be finished.

    A refused change to a final answer raises ``answer_final``; a written answer to the
    current item brings the next item, or closes the section when the test is over.
    """
    if rules.locked:
        if not accepted:
            raise answer_final()
        return None
    if not written or value is None:
        return None
    given = section_answers(session, rules.attempt_id, rules.section_code)
    version_ids = session.scalars(
        select(AttemptItem.item_version_id).where(AttemptItem.attempt_id == rules.attempt_id)
    )
    attempt = session.get(Attempt, rules.attempt_id)
    pool = eligible_pool(session, rules.spec, items_in_attempt(session, version_ids))
    chosen = choose_next(rules.spec, attempt.seed, rules.section_index, given, pool)
    if chosen is None:
        return stop_section(session, attempt, rules, now)
    position = 1 + session.scalar(
        select(func.max(AttemptItem.position)).where(AttemptItem.attempt_id == rules.attempt_id)
    )
    rng = option_rng(rules.blueprint, attempt.seed, rules.section_index, len(given))
    item = new_attempt_item(chosen, rules.spec, rules.section_code, position, rng)
    item.attempt_id = rules.attempt_id
    try:
        with session.begin_nested():
            session.add(item)
            if chosen.audio:
                session.add(
                    AttemptPlay(
                        attempt_id=rules.attempt_id,
                        source=item.ref,
                        media_sha256=chosen.audio["media"],
                        play_limit=chosen.audio["play_limit"],
                    )
                )
            session.flush()
    except IntegrityError:  # a concurrent save of the same answer appended it first
        logger.info("adaptive item %s of attempt %s already appended", position, attempt.id)
    return None


def stop_section(
    session: Session, attempt: Attempt, rules: Gate, now: dt.datetime
) -> Attempt | None:
    """Close the section whose stopping rule is met; return the attempt if all are closed."""
    section = session.scalar(
        select(AttemptSection).where(
            AttemptSection.attempt_id == attempt.id, AttemptSection.code == rules.section_code
        )
    )
    if section.finished_at is None:
        close(section, now, SECTION_COMPLETED)
        open_next(attempt, rules.blueprint, section, now)
    session.flush()
    return attempt if all_finished(attempt) else None
