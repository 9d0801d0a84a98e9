"""What a certificate or a practice report prints: plain data, no ORM objects.

The app layer gathers these from its models (attempt, template, candidate profile,
centre) and passes them to ``document.render_certificate`` / ``document.practice_report``;
``claims.CertificateClaims.from_facts`` derives the signed claims from the same object, so
what is printed and what is signed cannot drift apart. The formatting functions here are
shared by the renderer and by the verifier, which compares printed text with signed
claims.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class ScoreLine:
    """One scoring section: its score on its own scale, and the minimum where one applies."""

    code: str  # stable id from the template (``script_vocabulary``), signed
    title_en: str
    title_ja: str | None
    score: float
    maximum: float
    minimum: float | None = None  # JLPT sectional pass mark


@dataclass(frozen=True)
class CertificateFacts:
    """Everything a certificate prints; ``number`` and ``issued_at`` come from issuing.

    Times are UTC-aware; ``issued_at`` is signed to the second. ``nationality`` is the
    printed text (``Uzbekistan (UZ)``); ``photo`` is JPEG or PNG bytes (downscaled when
    larger than the print needs). ``level`` is the band or CEFR label when the template
    defines one (``A2.2``, ``B1``), else ``None``.
    """

    number: str
    issuing_centre: str
    exam_code: str
    exam_title_en: str
    exam_title_ja: str | None
    full_name: str
    date_of_birth: dt.date
    nationality: str
    exam_date: dt.date
    test_centre: str
    sections: tuple[ScoreLine, ...]
    total: float
    scale_min: float
    scale_max: float
    passed: bool
    pass_rule_en: str
    pass_rule_ja: str | None
    issued_at: dt.datetime
    level: str | None = None
    photo: bytes | None = None


@dataclass(frozen=True)
class PracticeFacts:
    """What a practice report prints: the result of a practice attempt, never certified."""

    exam_code: str
    exam_title_en: str
    exam_title_ja: str | None
    full_name: str
    taken_on: dt.date
    sections: tuple[ScoreLine, ...]
    total: float
    scale_min: float
    scale_max: float
    passed: bool
    pass_rule_en: str
    pass_rule_ja: str | None
    generated_at: dt.datetime
    level: str | None = None


# ---- formatting shared by the renderer and the verifier ------------------------------


def plain_number(value: float) -> int | float:
    """``45.0`` -> ``45``; other values rounded to one decimal (what is printed and signed)."""
    number = float(value)
    if number.is_integer():
        return int(number)
    return round(number, 1)


def format_value(value: float) -> str:
    number = plain_number(value)
    return str(number) if isinstance(number, int) else f"{number:.1f}"


def format_score(score: float, maximum: float) -> str:
    """``45 / 60``: a section score, or the total, on its scale."""
    return f"{format_value(score)} / {format_value(maximum)}"


def format_scale(low: float, high: float) -> str:
    return f"{format_value(low)}–{format_value(high)}"


def format_date(value: dt.date) -> str:
    """ISO 8601 (``1999-01-31``): unambiguous to Japanese and to English readers."""
    return value.isoformat()


RESULT_TEXT = {True: ("合格", "PASS"), False: ("不合格", "FAIL")}


def format_result(passed: bool) -> str:
    japanese, english = RESULT_TEXT[passed]
    return f"{japanese} {english}"
