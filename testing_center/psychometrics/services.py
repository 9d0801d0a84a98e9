"""Psychometrics on an exam's finished attempts, and what scoring takes from it.

``exam_responses`` reads every finished attempt of an exam in one query into the
matrices of ``scoring.analysis`` and ``scoring.irt``; ``calibrate_exam`` keeps a
calibration as a ``ParameterSet`` for review, and ``store_parameters`` puts its
parameters onto the item versions the attempts presented. ``scoring_inputs`` is what
grading asks for: the parameters and the correction in force per item version.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from exam_templates.models import ExamTemplate
from item_bank.models import Item, ItemVersion
from item_bank.types import ITEM_TYPES
from scoring.analysis import ChoiceData, ItemAnalysis, analyze_items
from scoring.irt import ResponseData, calibrate, parameters_from_document
from testing_center.accounts.models import User
from testing_center.attempts.models import Attempt, AttemptItem, AttemptStatus, Response
from testing_center.errors import InvalidInput, NotFound
from testing_center.i18n import N_
from testing_center.psychometrics.models import (
    CorrectionAction,
    ItemVersionParameters,
    ParameterSet,
    ScoringCorrection,
)

CHOICE_TYPES = ("single_choice",)  # types whose response is one option: distractor analysis


@dataclass(frozen=True)
class ItemScoring:
    """How one item version is scored now: its key, or a correction, and its parameters."""

    answer_key: Any
    full_credit: bool = False
    dropped: bool = False
    irt: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class ExamResponses:
    """Finished attempts of an exam as matrices (rows: attempts, columns: item refs).

    ``scores`` holds credit of at least half as 1, less as 0, and NaN where the item was
    not presented; ``choices`` the chosen option of single-choice items (else None).
    No candidate identity is included.
    """

    refs: tuple[str, ...]
    scores: np.ndarray
    choices: ChoiceData

    @property
    def n_attempts(self) -> int:
        return self.scores.shape[0]

    def csv_rows(self) -> list[list[str]]:
        """Return the response CSV of ARCHITECTURE.md: a header of refs, 1/0/empty cells."""
        cells = {1.0: "1", 0.0: "0"}
        return [list(self.refs)] + [
            ["" if math.isnan(v) else cells[v] for v in row] for row in self.scores.tolist()
        ]


def template_or_404(session: Session, code: str) -> ExamTemplate:
    template = session.scalar(
        select(ExamTemplate)
        .where(ExamTemplate.code == code)
        .order_by(ExamTemplate.version.desc())
        .limit(1)
    )
    if template is None:
        raise NotFound(N_("There is no exam with this code."), code="exam_not_found")
    return template


def exam_responses(session: Session, code: str) -> ExamResponses:
    """Read the finished attempts at exam ``code`` (every version of its template).

    Corrections in force apply: a re-keyed item is graded against its corrected key,
    and items credited to all or dropped are left out (they no longer measure).
    """
    rows = session.execute(
        select(
            AttemptItem.attempt_id,
            Item.ref,
            AttemptItem.item_version_id,
            ItemVersion.item_type,
            ItemVersion.answer_key,
            ItemVersion.content,
            Response.value,
        )
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
        .join(Response, Response.attempt_item_id == AttemptItem.id)
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(Item, Item.id == ItemVersion.item_id)
        .where(ExamTemplate.code == code, Attempt.status == AttemptStatus.FINISHED)
        .order_by(Attempt.finished_at, Attempt.id)
    ).all()
    scoring = scoring_inputs(session, {row.item_version_id for row in rows})
    attempts: dict[str, dict[str, tuple[float, str | None]]] = {}
    options: dict[str, list[str] | None] = {}
    keys: dict[str, str | None] = {}
    for attempt_id, ref, version_id, item_type, key, content, value in rows:
        item = scoring.get(version_id) or ItemScoring(key)
        row = attempts.setdefault(attempt_id, {})
        if item.dropped or item.full_credit:
            continue
        credit = ITEM_TYPES[item_type].grade(item.answer_key, value) if value is not None else 0.0
        is_choice = item_type in CHOICE_TYPES
        row[ref] = (1.0 if credit >= 0.5 else 0.0, value if is_choice else None)
        if ref not in options:
            options[ref] = ITEM_TYPES[item_type].option_ids(content) if is_choice else None
            keys[ref] = item.answer_key if is_choice else None
    refs = tuple(sorted(options))
    scores = np.array(
        [[row.get(ref, (math.nan, None))[0] for ref in refs] for row in attempts.values()],
        dtype=float,
    ).reshape(len(attempts), len(refs))
    choices = ChoiceData(
        [[row.get(ref, (0, None))[1] for ref in refs] for row in attempts.values()],
        [options[ref] for ref in refs],
        [keys[ref] for ref in refs],
    )
    return ExamResponses(refs, scores, choices)


def analyze_exam(session: Session, code: str) -> tuple[ExamResponses, ItemAnalysis]:
    """Classical item analysis, with distractors, of an exam's finished attempts."""
    data = exam_responses(session, code)
    if data.n_attempts < 2 or not data.refs:
        raise InvalidInput(
            N_("Item analysis needs at least two finished attempts."), code="too_few_attempts"
        )
    return data, analyze_items(data.scores, item_ids=list(data.refs), choices=data.choices)


def calibrate_exam(
    session: Session, code: str, model: str, actor: User | None, now: dt.datetime
) -> ParameterSet:
    """Calibrate the exam's items on its finished attempts and keep the result for review.

    Items everyone got right (or wrong) carry no information about their slope and
    location; they are left out and named in the document's ``"excluded"``.
    """
    template = template_or_404(session, code)
    data = exam_responses(session, code)
    keep, excluded = informative_items(data)
    try:
        result = calibrate(
            ResponseData(data.scores[:, keep], item_ids=np.array(data.refs)[keep].tolist()),
            model,
        )
    except ValueError as error:
        raise InvalidInput(str(error), code="calibration_failed") from error
    parameter_set = ParameterSet(
        template_id=template.id,
        model=model,
        document={**result.as_dict(), "excluded": excluded},
        n_persons=data.n_attempts,
        created_by_id=actor.id if actor else None,
        created_at=now,
    )
    session.add(parameter_set)
    session.flush()
    return parameter_set


def informative_items(data: ExamResponses) -> tuple[np.ndarray, dict[str, str]]:
    """Return a mask of the items calibration can use, and why the others cannot be."""
    observed = ~np.isnan(data.scores)
    right = np.nansum(data.scores, axis=0)
    presented = observed.sum(axis=0)
    excluded = {}
    for ref, n, r in zip(data.refs, presented.tolist(), right.tolist(), strict=True):
        if n == 0:
            excluded[ref] = "never presented"
        elif r in (0, n):
            excluded[ref] = "everyone right" if r == n else "everyone wrong"
    return np.array([ref not in excluded for ref in data.refs], dtype=bool), excluded


def store_parameters(
    session: Session, parameter_set: ParameterSet, actor: User | None, now: dt.datetime
) -> int:
    """Put a calibration's parameters onto the item versions its attempts presented.

    From now on those versions are scored with these parameters (the newest stored set
    wins); results already stored change only by re-scoring. Returns how many item
    versions received parameters. Storing twice changes nothing.
    """
    if parameter_set.stored_at is not None:
        return 0
    if not parameter_set.document["converged"]:
        raise InvalidInput(
            N_("This calibration did not converge; its parameters cannot be used."),
            code="calibration_not_converged",
        )
    by_ref = {p.item_id: p for p in parameters_from_document(parameter_set.document)}
    versions = session.execute(
        select(Item.ref, AttemptItem.item_version_id)
        .distinct()
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
        .join(Item, Item.id == ItemVersion.item_id)
        .join(ExamTemplate, ExamTemplate.id == Attempt.template_id)
        .where(
            ExamTemplate.code == parameter_set.template.code,
            Attempt.status == AttemptStatus.FINISHED,
            Item.ref.in_(by_ref),
        )
    ).all()
    for ref, version_id in versions:
        item = by_ref[ref]
        session.add(
            ItemVersionParameters(
                item_version_id=version_id,
                parameter_set_id=parameter_set.id,
                a=item.a,
                b=item.b,
                c=item.c,
                stored_at=now,
            )
        )
    parameter_set.stored_at = now
    parameter_set.stored_by_id = actor.id if actor else None
    session.flush()
    return len(versions)


def scoring_inputs(session: Session, version_ids: Iterable[int]) -> dict[int, ItemScoring]:
    """Return, for item versions with stored parameters or a correction, how to score them.

    Versions absent from the answer are scored with their own key and the parameters
    their bundle carried (if any). Two queries, whatever the number of versions, and a
    third for the keys of those found: most finishes find none and skip it.
    """
    ids = list(set(version_ids))
    if not ids:
        return {}
    parameters: dict[int, dict[str, Any]] = {}
    for row in session.scalars(
        select(ItemVersionParameters)
        .where(ItemVersionParameters.item_version_id.in_(ids))
        .order_by(ItemVersionParameters.id)
    ):  # ascending: the newest stored set wins
        parameters[row.item_version_id] = {
            "a": row.a,
            "b": row.b,
            "c": row.c,
            "version": f"cal-{row.parameter_set_id}",
        }
    corrections: dict[int, ScoringCorrection] = {}
    for row in session.scalars(
        select(ScoringCorrection)
        .where(ScoringCorrection.item_version_id.in_(ids))
        .order_by(ScoringCorrection.id)
    ):
        corrections[row.item_version_id] = row
    scored_apart = set(parameters) | set(corrections)
    if not scored_apart:
        return {}
    keys = dict(
        session.execute(
            select(ItemVersion.id, ItemVersion.answer_key).where(ItemVersion.id.in_(scored_apart))
        ).all()
    )
    result = {}
    for version_id in scored_apart:
        correction = corrections.get(version_id)
        action = correction.action if correction else CorrectionAction.RESTORE
        result[version_id] = ItemScoring(
            answer_key=correction.answer_key
            if action == CorrectionAction.REKEY
            else keys[version_id],
            full_credit=action == CorrectionAction.CREDIT_ALL,
            dropped=action == CorrectionAction.DROP,
            irt=parameters.get(version_id),
        )
    return result


def correct_item(
    session: Session,
    *,
    ref: str,
    version: int | None,
    action: str,
    answer_key: Any,
    reason: str,
    actor: User | None,
    now: dt.datetime,
) -> ScoringCorrection:
    """Record how an item version is to be scored from now on (then re-score to apply).

    ``version`` defaults to the item's newest version. A corrected key is checked by the
    item type like an authored one.
    """
    if action not in set(CorrectionAction):
        raise InvalidInput(
            N_("The correction must be rekey, credit_all, drop or restore."),
            code="invalid_correction",
        )
    if not reason.strip():
        raise InvalidInput(N_("Say why the item is corrected."), code="reason_required")
    query = select(ItemVersion).join(Item).where(Item.ref == ref)
    query = query.where(ItemVersion.version_no == version) if version else query
    item_version = session.scalar(query.order_by(ItemVersion.version_no.desc()).limit(1))
    if item_version is None:
        raise NotFound(N_("There is no such item version."), code="item_not_found")
    if action == CorrectionAction.REKEY:
        item_type = ITEM_TYPES[item_version.item_type]
        document = item_type.to_document(item_version.content, answer_key)
        _, cleaned_key, problems = item_type.clean(document)
        if problems:
            raise InvalidInput(
                "; ".join(problems), code="invalid_key", details={"problems": problems}
            )
        answer_key = cleaned_key
    correction = ScoringCorrection(
        item_version_id=item_version.id,
        action=action,
        answer_key=answer_key if action == CorrectionAction.REKEY else None,
        reason=reason.strip()[:500],
        created_by_id=actor.id if actor else None,
        created_at=now,
    )
    session.add(correction)
    session.flush()
    return correction
