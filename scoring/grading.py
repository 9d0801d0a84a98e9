"""Grading of single responses through the item bank's type registry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from item_bank.types import ITEM_TYPES


@dataclass(frozen=True)
class ResponseToGrade:
    """One presented item with its key and the candidate's saved response (None if unanswered)."""

    section: str
    item_type: str
    answer_key: Any
    response: Any
    max_points: float = 1.0
    irt: Mapping[str, Any] | None = None  # calibrated parameters (a, b, c, version), if any
    full_credit: bool = False  # a correction credits everyone presented the item


@dataclass(frozen=True)
class GradedResponse:
    """The points one response earned, out of ``max_points``."""

    section: str
    points: float
    max_points: float
    irt: Mapping[str, Any] | None = None


def grade_responses(responses: Iterable[ResponseToGrade]) -> list[GradedResponse]:
    """Grade each response with its item type's rule; an unanswered item earns nothing,
    unless a correction gives everyone full credit."""
    graded = []
    for response in responses:
        credit = 1.0 if response.full_credit else 0.0
        if response.response is not None and not response.full_credit:
            credit = ITEM_TYPES[response.item_type].grade(response.answer_key, response.response)
        graded.append(
            GradedResponse(
                response.section, credit * response.max_points, response.max_points, response.irt
            )
        )
    return graded
