"""The blueprint schema: parse and validate one template document (see README.md).

Parsing is pure and reports every problem at once, so an author fixing a file sees the
whole list rather than one error per attempt. Timed sections (what the clock and the
candidate see) and scoring sections (what results report) are distinct: each selection
rule ("part") of a timed section names the scoring section its items count towards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from exam_templates.errors import InvalidTemplate
from item_bank.services import CLASSIFICATION_FIELDS
from scoring.cat import CatConfig
from scoring.errors import InvalidCatConfig, InvalidScoringRule
from scoring.rules import ScoringRule, build_rule

MODES = ("practice", "proctored")
CLOCKS = ("shared", "per_section")
NAVIGATION = ("free", "sequential")
BALANCE = ("topic",)
MAX_DURATION_SECONDS = 6 * 3600


@dataclass(frozen=True)
class PartSpec:
    """One selection rule: which items, how many, and where they are scored."""

    filters: Mapping[str, str]
    count: int
    score_as: str
    balance: str | None = None  # "topic": spread the count evenly over topics
    points: float = 1.0  # what one item of this part is worth (weighted parts)
    p_range: tuple[float, float] | None = None  # classical difficulty (facility) window


@dataclass(frozen=True)
class AdaptiveSpec:
    """An adaptive section: the pool it draws from, where it is scored, and its CAT rules."""

    filters: Mapping[str, str]
    config: CatConfig
    score_as: str
    points: float = 1.0


@dataclass(frozen=True)
class SectionSpec:
    """A timed section: its title, its own clock (per-section templates) and its parts.

    An adaptive section has no parts: its items are chosen one by one while it runs.
    """

    code: str
    title: Mapping[str, str]
    parts: tuple[PartSpec, ...]
    duration_seconds: int | None = None
    adaptive: AdaptiveSpec | None = None

    @property
    def count(self) -> int:
        """Items in the section (an adaptive section: at most)."""
        if self.adaptive is not None:
            return self.adaptive.config.max_items
        return sum(part.count for part in self.parts)


@dataclass(frozen=True)
class Blueprint:
    """A validated template."""

    code: str
    version: int
    title: Mapping[str, str]
    modes: tuple[str, ...]
    clock: str
    duration_seconds: int  # the whole test: the shared clock, or the sum of the sections
    sections: tuple[SectionSpec, ...]
    shuffle_items: bool
    shuffle_options: bool
    scoring: ScoringRule
    description: Mapping[str, str] = field(default_factory=dict)
    review: bool = False  # practice only: after finishing, show keys and explanations
    navigation: str = "free"  # "sequential": sections in order, no going back
    break_seconds: int = 0  # per-section clocks: the pause offered between sections

    @property
    def item_count(self) -> int:
        return sum(section.count for section in self.sections)

    @property
    def scoring_sections(self) -> list[str]:
        return scoring_order(self.sections)


def scoring_order(sections: Iterable[SectionSpec]) -> list[str]:
    """Scoring section codes in the order the parts first name them."""
    codes: list[str] = []
    for section in sections:
        named = [part.score_as for part in section.parts]
        if section.adaptive is not None:
            named.append(section.adaptive.score_as)
        codes.extend(code for code in named if code not in codes)
    return codes


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


def _parse_p_range(value: Any, label: str, problems: list[str]) -> tuple[float, float] | None:
    if value is None:
        return None
    low = value.get("p_min", 0.0) if isinstance(value, Mapping) else None
    high = value.get("p_max", 1.0) if isinstance(value, Mapping) else None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)) or not (
        0 <= low <= high <= 1
    ):
        problems.append(f"{label}.difficulty needs 0 <= p_min <= p_max <= 1")
        return None
    return float(low), float(high)


def _parse_part(label: str, raw: Any, section_code: str, problems: list[str]) -> PartSpec | None:
    """Parse one selection rule: ``select`` filters, ``count`` and the optional extras."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("select"), Mapping):
        problems.append(f"{label} needs a 'select' mapping of filters")
        return None
    select = raw["select"]
    count = raw.get("count", select.get("count"))
    filters = {k: v for k, v in select.items() if k != "count"}
    for name, value in filters.items():
        if name not in CLASSIFICATION_FIELDS or not isinstance(value, str):
            problems.append(
                f"{label}.select.{name}: filters are text values on {list(CLASSIFICATION_FIELDS)}"
            )
    score_as = raw.get("score_as", section_code)
    if not isinstance(score_as, str) or not score_as.isidentifier():
        problems.append(f"{label}.score_as must be a scoring section code")
    balance = raw.get("balance")
    if balance is not None and balance not in BALANCE:
        problems.append(f"{label}.balance must be one of {list(BALANCE)}")
    points = raw.get("points", 1)
    if isinstance(points, bool) or not isinstance(points, int | float) or not 0 < points <= 100:
        problems.append(f"{label}.points must be a number above 0 and at most 100")
        points = 1
    return PartSpec(
        points=float(points),
        filters=filters,
        count=_positive_int(count, f"{label}.count", problems, 500),
        score_as=str(score_as),
        balance=balance,
        p_range=_parse_p_range(raw.get("difficulty"), label, problems),
    )


def _parse_section(index: int, raw: Any, clock: str, problems: list[str]) -> SectionSpec | None:
    label = f"sections[{index}]"
    if not isinstance(raw, Mapping):
        problems.append(f"{label} must be a mapping")
        return None
    code = raw.get("code")
    if not isinstance(code, str) or not code.isidentifier():
        problems.append(f"{label}.code must be an identifier such as 'reading'")
        code = f"s{index}"
    adaptive = None
    if "adaptive" in raw:
        if "parts" in raw or "select" in raw:
            problems.append(f"{label} is adaptive: it takes no 'parts' or 'select'")
        adaptive = _parse_adaptive(f"{label}.adaptive", raw["adaptive"], code, problems)
    raw_parts = [] if "adaptive" in raw else raw.get("parts")
    if raw_parts is None and "select" in raw:  # the short form: one part
        raw_parts = [{"select": raw["select"], "score_as": raw.get("score_as", code)}]
    if "adaptive" not in raw and (not isinstance(raw_parts, list) or not raw_parts):
        problems.append(f"{label} needs 'parts' (or one 'select', or 'adaptive')")
        raw_parts = []
    parts = [_parse_part(f"{label}.parts[{i}]", p, code, problems) for i, p in enumerate(raw_parts)]
    duration = None
    if clock == "per_section":
        duration = _positive_int(
            raw.get("duration_seconds"),
            f"{label}.duration_seconds",
            problems,
            MAX_DURATION_SECONDS,
        )
    elif "duration_seconds" in raw:
        problems.append(f"{label}.duration_seconds belongs to per_section clocks only")
    return SectionSpec(
        code=code,
        title=_texts(raw.get("title"), f"{label}.title", problems),
        parts=tuple(p for p in parts if p is not None),
        duration_seconds=duration,
        adaptive=adaptive,
    )


def _parse_adaptive(
    label: str, raw: Any, section_code: str, problems: list[str]
) -> AdaptiveSpec | None:
    """Parse an adaptive section: ``pool`` filters, ``score_as``, ``points``, CAT rules."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("pool"), Mapping):
        problems.append(f"{label} needs a 'pool' mapping of filters")
        return None
    filters = dict(raw["pool"])
    for name, value in filters.items():
        if name not in CLASSIFICATION_FIELDS or not isinstance(value, str):
            problems.append(
                f"{label}.pool.{name}: filters are text values on {list(CLASSIFICATION_FIELDS)}"
            )
    score_as = raw.get("score_as", section_code)
    if not isinstance(score_as, str) or not score_as.isidentifier():
        problems.append(f"{label}.score_as must be a scoring section code")
    points = raw.get("points", 1)
    if isinstance(points, bool) or not isinstance(points, int | float) or not 0 < points <= 100:
        problems.append(f"{label}.points must be a number above 0 and at most 100")
        points = 1
    rules = {k: v for k, v in raw.items() if k not in ("pool", "score_as", "points")}
    try:
        config = CatConfig.from_mapping(rules)
    except InvalidCatConfig as error:
        problems.extend(f"{label}: {problem}" for problem in error.problems)
        return None
    return AdaptiveSpec(filters, config, str(score_as), float(points))


def _parse_clock(document: Mapping[str, Any], problems: list[str]) -> tuple[str, int, int]:
    """Return (kind, shared duration or 0, break seconds)."""
    clock = document.get("clock")
    if not isinstance(clock, Mapping) or clock.get("kind") not in CLOCKS:
        problems.append(f"clock.kind must be one of {list(CLOCKS)}")
        return "shared", 0, 0
    kind = clock["kind"]
    duration = 0
    if kind == "shared":
        duration = _positive_int(
            clock.get("duration_seconds"), "clock.duration_seconds", problems, MAX_DURATION_SECONDS
        )
    breaks = clock.get("break_seconds", 0)
    if isinstance(breaks, bool) or not isinstance(breaks, int) or not 0 <= breaks <= 3600:
        problems.append("clock.break_seconds must be a whole number from 0 to 3600")
        breaks = 0
    if breaks and kind != "per_section":
        problems.append("clock.break_seconds belongs to per_section clocks only")
        breaks = 0
    return kind, duration, breaks


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
    clock, duration, break_seconds = _parse_clock(document, problems)
    navigation = document.get("navigation", "sequential" if clock == "per_section" else "free")
    if navigation not in NAVIGATION:
        problems.append(f"navigation must be one of {list(NAVIGATION)}")
    elif clock == "per_section" and navigation != "sequential":
        problems.append("sections with their own clocks are taken in order: navigation sequential")
    elif navigation != "sequential" and any(
        isinstance(s, Mapping) and "adaptive" in s for s in document.get("sections") or []
    ):
        problems.append("adaptive sections are taken in order: navigation sequential")
    raw_sections = document.get("sections")
    sections: list[SectionSpec] = []
    if not isinstance(raw_sections, list) or not raw_sections:
        problems.append("sections must be a non-empty list")
    else:
        sections = [
            s
            for i, raw in enumerate(raw_sections)
            if (s := _parse_section(i, raw, clock, problems)) is not None
        ]
        codes = [section.code for section in sections]
        if len(set(codes)) != len(codes):
            problems.append("section codes must be unique")
    if clock == "per_section":
        duration = sum(section.duration_seconds or 0 for section in sections)
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
        rule = build_rule(document.get("scoring"), scoring_order(sections))
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
        clock=clock,
        duration_seconds=duration,
        sections=tuple(sections),
        shuffle_items=shuffle.get("items", False),
        shuffle_options=shuffle.get("options", False),
        scoring=rule,
        review=review is True,
        navigation=navigation,
        break_seconds=break_seconds,
    )
