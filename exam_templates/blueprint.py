"""The blueprint schema: parse and validate one template document (see README.md).

Parsing is pure and reports every problem at once, so an author fixing a file sees the
whole list rather than one error per attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from exam_templates.errors import InvalidTemplate
from item_bank.services import CLASSIFICATION_FIELDS
from scoring.errors import InvalidScoringRule
from scoring.rules import ScoringRule, build_rule

MODES = ("practice", "proctored")
CLOCKS = ("shared",)
MAX_DURATION_SECONDS = 6 * 3600


@dataclass(frozen=True)
class SectionSpec:
    """One section: which items to draw and how many."""

    code: str
    title: Mapping[str, str]
    filters: Mapping[str, str]
    count: int


@dataclass(frozen=True)
class Blueprint:
    """A validated template."""

    code: str
    version: int
    title: Mapping[str, str]
    modes: tuple[str, ...]
    clock: str
    duration_seconds: int
    sections: tuple[SectionSpec, ...]
    shuffle_items: bool
    shuffle_options: bool
    scoring: ScoringRule
    description: Mapping[str, str] = field(default_factory=dict)
    review: bool = False  # practice only: after finishing, show keys and explanations

    @property
    def item_count(self) -> int:
        return sum(section.count for section in self.sections)


def _texts(value: Any, name: str, problems: list[str], *, required: bool = True) -> dict[str, str]:
    """Validate a mapping of language code to text; English is required as the fallback."""
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping) or not isinstance(value.get("en"), str):
        problems.append(f"{name} must map language codes to text and include 'en'")
        return {}
    return {str(lang): str(text) for lang, text in value.items()}


def _positive_int(value: Any, name: str, problems: list[str], maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= maximum:
        problems.append(f"{name} must be a whole number from 1 to {maximum}")
        return 0
    return value


def _parse_section(index: int, raw: Any, problems: list[str]) -> SectionSpec | None:
    label = f"sections[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{label} must be a mapping")
        return None
    code = raw.get("code")
    if not isinstance(code, str) or not code.isidentifier():
        problems.append(f"{label}.code must be an identifier such as 'reading'")
        code = f"<{index}>"
    select = raw.get("select")
    if not isinstance(select, Mapping):
        problems.append(f"{label}.select must be a mapping with filters and count")
        return None
    filters = {k: v for k, v in select.items() if k != "count"}
    for name, value in filters.items():
        if name not in CLASSIFICATION_FIELDS or not isinstance(value, str):
            problems.append(
                f"{label}.select.{name}: filters are text values on {list(CLASSIFICATION_FIELDS)}"
            )
    count = _positive_int(select.get("count"), f"{label}.select.count", problems, 500)
    title = _texts(raw.get("title"), f"{label}.title", problems)
    return SectionSpec(code=code, title=title, filters=filters, count=count)


def parse_blueprint(document: Any) -> Blueprint:
    """Return the validated ``Blueprint`` or raise ``InvalidTemplate`` listing every problem."""
    if not isinstance(document, Mapping):
        raise InvalidTemplate(["a template must be a mapping"])
    problems: list[str] = []
    code = document.get("code")
    if not isinstance(code, str) or not code or len(code) > 64:
        problems.append("code must be a non-empty string of at most 64 characters")
    version = _positive_int(document.get("version"), "version", problems, 10_000)
    title = _texts(document.get("title"), "title", problems)
    description = _texts(document.get("description"), "description", problems, required=False)
    modes = document.get("modes")
    if not isinstance(modes, list) or not modes or any(mode not in MODES for mode in modes):
        problems.append(f"modes must be a non-empty list drawn from {list(MODES)}")
        modes = []
    clock = document.get("clock", {})
    clock_kind = clock.get("kind") if isinstance(clock, Mapping) else None
    if clock_kind not in CLOCKS:
        problems.append(f"clock.kind must be one of {list(CLOCKS)}")
    duration = _positive_int(
        clock.get("duration_seconds") if isinstance(clock, Mapping) else None,
        "clock.duration_seconds",
        problems,
        MAX_DURATION_SECONDS,
    )
    raw_sections = document.get("sections")
    sections: list[SectionSpec] = []
    if not isinstance(raw_sections, list) or not raw_sections:
        problems.append("sections must be a non-empty list")
    else:
        for index, raw in enumerate(raw_sections):
            section = _parse_section(index, raw, problems)
            if section is not None:
                sections.append(section)
        codes = [section.code for section in sections]
        if len(set(codes)) != len(codes):
            problems.append("section codes must be unique")
    shuffle = document.get("shuffle", {})
    if not isinstance(shuffle, Mapping) or any(
        not isinstance(shuffle.get(key, False), bool) for key in ("items", "options")
    ):
        problems.append("shuffle must map 'items' and 'options' to true or false")
        shuffle = {}
    review = document.get("review", False)
    if not isinstance(review, bool):
        problems.append("review must be true or false")
    elif review and modes != ["practice"]:
        problems.append("review shows keys, so only practice-only templates may have it")
    rule = None
    try:
        rule = build_rule(document.get("scoring"))
    except InvalidScoringRule as error:
        problems.append(f"scoring: {error}")
    if problems:
        raise InvalidTemplate([f"{code or '<template>'}: {problem}" for problem in problems])
    return Blueprint(
        code=code,
        version=version,
        title=title,
        description=description,
        modes=tuple(modes),
        clock=clock_kind,
        duration_seconds=duration,
        sections=tuple(sections),
        shuffle_items=shuffle.get("items", False),
        shuffle_options=shuffle.get("options", False),
        review=review is True,
        scoring=rule,
    )
