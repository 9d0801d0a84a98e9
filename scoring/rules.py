"""Scoring rules: how graded responses become section scores, a total and a pass decision.

A rule is built from a template's ``scoring:`` mapping through ``SCORING_RULES``, so the
template names the rule and its parameters and the rule itself stays pure. Responses are
graded into scoring sections (which may differ from the timed sections).

``percent``: percent of points, pass at a threshold (SSW skills tests).
``scaled``: each scoring section's raw proportion mapped linearly onto its scale (JLPT
style: 0-60 or 0-120 per section), or the whole onto one scale (JFT style: 10-250); pass
needs the total pass mark AND every section minimum; optional bands (A1, A2.1, ...).
The linear map is a raw-to-scale conversion for fixed forms.
``irt``: pattern scoring from calibrated item parameters, either on the whole test (JFT
style) or per scoring section (JLPT style: each section its own ability and scale, the
total their sum, pass = total pass mark AND every section minimum).

``ScoreResult.as_dict`` is what an attempt stores and what re-scoring compares: a key
added for one rule must not appear in another rule's results (every stored result would
then differ from a fresh one). IRT-only keys are therefore written only when set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from scoring.errors import InvalidScoringRule
from scoring.grading import GradedResponse

SCORING_VERSION = "3"


@dataclass(frozen=True)
class SectionScore:
    """Points earned in one scoring section, and the scaled score where the rule scales.

    Per-section IRT scoring adds the section's ability, its standard error, the standard
    error on the section scale and the number of calibrated items it rests on.
    """

    code: str
    points: float
    max_points: float
    scaled: float | None = None
    scale_max: float | None = None
    minimum: float | None = None
    theta: float | None = None
    theta_se: float | None = None
    conditional_sem: float | None = None
    calibrated_items: int | None = None

    @property
    def percent(self) -> float:
        return round(100 * self.points / self.max_points, 1) if self.max_points else 0.0

    @property
    def meets_minimum(self) -> bool:
        return self.minimum is None or (self.scaled or 0) >= self.minimum

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "points": self.points,
            "max_points": self.max_points,
            "percent": self.percent,
            "scaled": self.scaled,
            "scale_max": self.scale_max,
            "minimum": self.minimum,
            "meets_minimum": self.meets_minimum,
        }
        if self.calibrated_items is not None:  # per-section IRT only
            data.update(
                theta=self.theta,
                theta_se=self.theta_se,
                conditional_sem=self.conditional_sem,
                calibrated_items=self.calibrated_items,
            )
        return data


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring an attempt under one rule."""

    rule: str
    scoring_version: str
    sections: tuple[SectionScore, ...]
    raw_points: float
    raw_max: float
    total: float
    total_max: float
    passed: bool
    band: str | None = None
    theta: float | None = None  # IRT rules: ability, its standard error, items it rests on
    theta_se: float | None = None
    calibrated_items: int | None = None
    conditional_sem: float | None = None  # the standard error on the reported scale
    # IRT rules: the distinct labels of the item parameter sets used, when items carry one
    item_parameters: tuple[str, ...] = ()

    @property
    def percent(self) -> float:
        return round(100 * self.raw_points / self.raw_max, 1) if self.raw_max else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (what an attempt stores)."""
        data = {
            "rule": self.rule,
            "scoring_version": self.scoring_version,
            "sections": [s.as_dict() for s in self.sections],
            "raw_points": self.raw_points,
            "raw_max": self.raw_max,
            "total": self.total,
            "total_max": self.total_max,
            "percent": self.percent,
            "passed": self.passed,
            "band": self.band,
            "theta": self.theta,
            "theta_se": self.theta_se,
            "conditional_sem": self.conditional_sem,
            "calibrated_items": self.calibrated_items,
        }
        if self.item_parameters:
            data["item_parameters"] = list(self.item_parameters)
        return data


class ScoringRule(Protocol):
    """Turns graded responses into a ``ScoreResult``."""

    name: str

    def score(self, graded: Sequence[GradedResponse], section_order: Sequence[str]) -> ScoreResult:
        """Score ``graded``, reporting scoring sections in ``section_order``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Return the rule's public description (scale, pass rule, bands) for catalogues."""
        ...

    def section_titles(self) -> Mapping[str, Mapping[str, str]]:
        """Return titles (per language) the rule gives its scoring sections."""
        ...


def raw_sections(graded: Sequence[GradedResponse], codes: Sequence[str]) -> list[SectionScore]:
    return [
        SectionScore(
            code,
            sum(g.points for g in graded if g.section == code),
            sum(g.max_points for g in graded if g.section == code),
        )
        for code in codes
    ]


def scaled_share(scale: float, points: float, maximum: float) -> int:
    """``scale * points / maximum`` rounded half up, computed exactly.

    Python's ``round`` sends halves to the even neighbour; a candidate exactly half a point
    from a pass mark or a sectional minimum must get it, the same on every run.
    """
    if not maximum:
        return 0
    value = Fraction(scale) * Fraction(points) / Fraction(maximum)
    return math.floor(value + Fraction(1, 2))


def number(
    config: Mapping[str, Any], name: str, low: float, high: float, default: float | None = None
) -> float:
    value = config.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidScoringRule(f"{name} must be a number from {low} to {high}")
    return float(value)


@dataclass(frozen=True)
class PercentCorrect:
    """Percent of points earned, pass at or above a threshold (SSW skills tests: 60 or 65)."""

    pass_percent: float
    name: str = "percent"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], codes: Sequence[str]) -> PercentCorrect:
        threshold = config.get("pass_percent")
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not (0 < threshold <= 100)
        ):
            raise InvalidScoringRule("percent rule needs pass_percent between 0 and 100")
        return cls(pass_percent=float(threshold))

    def score(self, graded: Sequence[GradedResponse], section_order: Sequence[str]) -> ScoreResult:
        sections = raw_sections(graded, section_order)
        points = sum(s.points for s in sections)
        maximum = sum(s.max_points for s in sections)
        passed = maximum > 0 and 100 * points >= self.pass_percent * maximum
        return ScoreResult(
            self.name, SCORING_VERSION, tuple(sections), points, maximum, points, maximum, passed
        )

    def describe(self) -> dict[str, Any]:
        return {
            "rule": self.name,
            "scale": {"min": 0, "max": 100, "unit": "percent"},
            "pass_rule": {"min_percent": self.pass_percent},
        }

    def section_titles(self) -> Mapping[str, Mapping[str, str]]:
        return {}


@dataclass(frozen=True)
class ScaledSection:
    code: str
    title: Mapping[str, str]
    scale_max: float
    minimum: float | None
    # A fixed form's raw-to-scale conversion: (lowest raw points, scaled score) steps.
    table: tuple[tuple[float, float], ...] = ()

    def scaled(self, points: float, max_points: float) -> float:
        """The section's scaled score: from the conversion table, else linear."""
        if self.table:
            return max((score for raw, score in self.table if points >= raw), default=0.0)
        return scaled_share(self.scale_max, points, max_points)


@dataclass(frozen=True)
class Band:
    minimum: float
    label: str


def points_description(rule: Any) -> dict[str, Any]:
    """The public description of a rule on a points scale with a total pass mark,
    sectional minimums and bands (the scaled rule and the per-section IRT rule)."""
    return {
        "rule": rule.name,
        "scale": {"min": rule.scale_min, "max": rule.scale_max, "unit": "points"},
        "pass_rule": {
            "total_min": rule.pass_mark,
            "section_minimums": {s.code: s.minimum for s in rule.sections if s.minimum is not None},
        },
        "bands": [{"min": b.minimum, "label": b.label} for b in rule.bands],
    }


def band_label(bands: Sequence[Band], below: str | None, total: float) -> str | None:
    """The label of the highest band reached; ``below`` under the lowest (if bands exist)."""
    reached = [band.label for band in bands if total >= band.minimum]
    return reached[-1] if reached else (below if bands else None)


@dataclass(frozen=True)
class Scaled:
    """Linear raw-to-scale conversion with a total pass mark, section minimums and bands."""

    sections: tuple[ScaledSection, ...]
    scale_min: float
    scale_max: float
    pass_mark: float
    bands: tuple[Band, ...] = ()
    bands_for_passed_only: bool = False
    below_bands: str | None = None
    sum_sections: bool = False  # no total scale given: the total is the sections' sum
    name: str = "scaled"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], codes: Sequence[str]) -> Scaled:
        raw_sections_config = config.get("sections") or []
        if not isinstance(raw_sections_config, list):
            raise InvalidScoringRule("sections must be a list")
        sections = tuple(cls.parse_section(s) for s in raw_sections_config)
        if sections and [s.code for s in sections] != list(codes):
            raise InvalidScoringRule(
                f"sections {[s.code for s in sections]} must be the scoring sections the parts "
                f"name, in order: {list(codes)}"
            )
        scale = config.get("scale")
        if scale is None and not sections:
            raise InvalidScoringRule("a scaled rule needs a total 'scale' or scaled 'sections'")
        if scale is not None:
            if not isinstance(scale, Mapping):
                raise InvalidScoringRule("scale must map min and max")
            low, high = number(scale, "min", 0, 10_000), number(scale, "max", 1, 10_000)
        else:
            low, high = 0.0, sum(s.scale_max for s in sections)
        if low >= high:
            raise InvalidScoringRule("scale min must be below max")
        raw_bands = config.get("bands") or []
        if not isinstance(raw_bands, list):
            raise InvalidScoringRule("bands must be a list of {min, label}")
        bands = tuple(sorted((cls.parse_band(b) for b in raw_bands), key=lambda b: b.minimum))
        return cls(
            sections=sections,
            scale_min=low,
            scale_max=high,
            pass_mark=number(config, "pass_mark", low, high),
            bands=bands,
            bands_for_passed_only=config.get("bands_for") == "passed",
            below_bands=config.get("below_bands"),
            sum_sections=scale is None,
        )

    @staticmethod
    def parse_section(raw: Any) -> ScaledSection:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("code"), str):
            raise InvalidScoringRule("each scoring section needs a code")
        maximum = number(raw, "scale_max", 1, 10_000)
        minimum = raw.get("min")
        if minimum is not None:
            minimum = number(raw, "min", 0, maximum)
        title = raw.get("title") or {"en": raw["code"]}
        if not isinstance(title, Mapping):
            raise InvalidScoringRule("a scoring section title maps languages to text")
        return ScaledSection(
            raw["code"],
            dict(title),
            maximum,
            minimum,
            Scaled.parse_table(raw.get("table"), maximum),
        )

    @staticmethod
    def parse_table(raw: Any, maximum: float) -> tuple[tuple[float, float], ...]:
        """A conversion table: [raw points, scaled] pairs, both rising, within the scale."""
        if raw is None:
            return ()
        if not isinstance(raw, list) or not all(
            isinstance(row, list)
            and len(row) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in row)
            for row in raw
        ):
            raise InvalidScoringRule("table must be a list of [raw points, scaled score] pairs")
        rows = [(float(a), float(b)) for a, b in raw]
        raws, scores = [r for r, _ in rows], [v for _, v in rows]
        if (
            raws != sorted(set(raws))
            or scores != sorted(scores)
            or not all(0 <= v <= maximum for v in scores)
        ):
            raise InvalidScoringRule(
                "table rows must rise in raw points and scores, within the section's scale"
            )
        return tuple(rows)

    @staticmethod
    def parse_band(raw: Any) -> Band:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("label"), str):
            raise InvalidScoringRule("each band needs min and label")
        return Band(number(raw, "min", 0, 10_000), raw["label"])

    def score(self, graded: Sequence[GradedResponse], section_order: Sequence[str]) -> ScoreResult:
        order = [s.code for s in self.sections] or list(section_order)
        limits = {s.code: s for s in self.sections}
        sections = []
        for raw in raw_sections(graded, order):
            spec = limits.get(raw.code)
            if spec is None:
                sections.append(raw)
                continue
            sections.append(
                SectionScore(
                    raw.code,
                    raw.points,
                    raw.max_points,
                    spec.scaled(raw.points, raw.max_points),
                    spec.scale_max,
                    spec.minimum,
                )
            )
        points = sum(s.points for s in sections)
        maximum = sum(s.max_points for s in sections)
        if self.sum_sections:
            total = float(sum(s.scaled or 0 for s in sections))
        else:
            total = float(
                self.scale_min + scaled_share(self.scale_max - self.scale_min, points, maximum)
            )
        passed = maximum > 0 and total >= self.pass_mark and all(s.meets_minimum for s in sections)
        return ScoreResult(
            self.name,
            SCORING_VERSION,
            tuple(sections),
            points,
            maximum,
            total,
            self.scale_max,
            passed,
            self.band_for(total, passed),
        )

    def band_for(self, total: float, passed: bool) -> str | None:
        if self.bands_for_passed_only and not passed:
            return None
        return band_label(self.bands, self.below_bands, total)

    def describe(self) -> dict[str, Any]:
        return points_description(self)

    def section_titles(self) -> Mapping[str, Mapping[str, str]]:
        return {s.code: s.title for s in self.sections}


@dataclass(frozen=True)
class ThetaScale:
    """A linear map of ability onto a reported scale, rounded half up and clipped.

    scaled = intercept + slope * theta, rounded half up and clipped to [low, high]; the
    conditional standard error on the scale is slope * SE(theta).
    """

    slope: float
    intercept: float
    low: float
    high: float

    @classmethod
    def parse(cls, mapping: Any, low: float, high: float) -> ThetaScale:
        if not isinstance(mapping, Mapping):
            raise InvalidScoringRule("theta_to_scale must map slope and intercept")
        return cls(
            number(mapping, "slope", 0.001, 10_000),
            number(mapping, "intercept", -10_000, 10_000),
            low,
            high,
        )

    def score(self, theta: float) -> float:
        """The scaled score of ``theta`` (beyond the scale's ends it gets the end)."""
        scaled = self.intercept + self.slope * theta
        return float(min(self.high, max(self.low, math.floor(scaled + 0.5))))

    def sem(self, theta_se: float) -> float | None:
        """The standard error on the scale to one decimal; None where SE(theta) is infinite."""
        return round(self.slope * theta_se, 1) if math.isfinite(theta_se) else None


@dataclass(frozen=True)
class PatternAbility:
    theta: float
    se: float  # inf where the MLE does not exist
    items: int  # calibrated items the ability rests on


def pattern_ability(graded: Sequence[GradedResponse], method: str) -> PatternAbility:
    """Estimate the ability from the right/wrong pattern on the calibrated items of ``graded``.

    Credit of at least half counts as right. With no calibrated item the ability is the
    prior's (theta 0, SE 1). An all-right (all-wrong) pattern has no MLE: theta is then
    taken as +20 (-20), far beyond any scale's end, with an infinite SE.
    """
    from scoring.irt import ItemParameters, estimate_ability

    calibrated = [g for g in graded if g.irt]
    if not calibrated:
        return PatternAbility(0.0, 1.0, 0)
    params = [
        ItemParameters(
            item_id=str(n),
            a=float(g.irt.get("a", 1.0)),
            b=float(g.irt.get("b", 0.0)),
            c=float(g.irt.get("c", 0.0)),
        )
        for n, g in enumerate(calibrated)
    ]
    pattern = [
        [1.0 if g.max_points and g.points / g.max_points >= 0.5 else 0.0 for g in calibrated]
    ]
    estimate = estimate_ability(pattern, params, method)
    theta, se = float(estimate.theta[0]), float(estimate.se[0])
    if not math.isfinite(theta):
        theta = math.copysign(20.0, theta) if not math.isnan(theta) else 0.0
    return PatternAbility(theta, se, len(params))


def parameter_versions(graded: Sequence[GradedResponse]) -> tuple[str, ...]:
    """Return the distinct ``version`` labels of the calibrated items' parameters, sorted."""
    return tuple(
        sorted(
            {str(g.irt["version"]) for g in graded if g.irt and g.irt.get("version") is not None}
        )
    )


def finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class IrtSection:
    code: str
    title: Mapping[str, str]
    scale: ThetaScale  # from 0 to the section's scale_max
    minimum: float | None


@dataclass(frozen=True)
class IrtPattern:
    """Pattern scoring: ability from the calibrated items, mapped onto a scale.

    theta is the EAP ability (N(0, 1) prior; or MAP, MLE) from the right/wrong pattern on
    items with IRT parameters (credit of at least half counts as right), and the scaled
    score is ``ThetaScale.score(theta)``. Items without parameters count in the raw
    section scores only. Two forms:

    - whole test (``scale`` and ``theta_to_scale``; JFT style, 10-250): one ability from
      every calibrated item, one scaled total; pass = total >= pass_mark;
    - per scoring section (``sections``, each with ``scale_max``, ``theta_to_scale`` and
      an optional ``min``; JLPT style, 0-60 or 0-120): each section's ability from its
      own calibrated items onto its own scale; the total is the sum (0-180) and pass =
      total >= pass_mark AND every section at or above its minimum. The total's standard
      error is the root of the sum of the sections' squared errors (each section's
      ability rests on other items, so their errors are independent given the abilities).

    An ability with no calibrated item behind it (the whole test, or any one section)
    rests on the prior alone, and the result does not pass. Results record the distinct
    ``version`` labels of the item parameters used (``item_parameters``).
    """

    scale_min: float
    scale_max: float
    pass_mark: float
    scale: ThetaScale | None = None  # the whole-test form
    sections: tuple[IrtSection, ...] = ()  # the per-section form
    bands: tuple[Band, ...] = ()
    below_bands: str | None = None
    bands_for_passed_only: bool = False  # per-section form only
    ability: str = "eap"  # or "map", "mle" (an all-right or all-wrong MLE sits at the scale end)
    name: str = "irt"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], codes: Sequence[str]) -> IrtPattern:
        if config.get("sections") is not None:
            return cls.per_section_from_config(config, codes)
        scale, mapping = config.get("scale"), config.get("theta_to_scale")
        if not isinstance(scale, Mapping) or not isinstance(mapping, Mapping):
            raise InvalidScoringRule(
                "an irt rule needs scale {min, max} and theta_to_scale {slope, intercept}, "
                "or scoring sections each with scale_max and theta_to_scale"
            )
        low, high = number(scale, "min", -10_000, 10_000), number(scale, "max", -10_000, 10_000)
        if low >= high:
            raise InvalidScoringRule("scale min must be below max")
        return cls(
            scale_min=low,
            scale_max=high,
            pass_mark=number(config, "pass_mark", low, high),
            scale=ThetaScale.parse(mapping, low, high),
            bands=cls.parse_bands(config),
            below_bands=config.get("below_bands"),
            ability=cls.parse_ability(config.get("ability", "eap")),
        )

    @classmethod
    def per_section_from_config(cls, config: Mapping[str, Any], codes: Sequence[str]) -> IrtPattern:
        raw_sections_config = config["sections"]
        if not isinstance(raw_sections_config, list) or not raw_sections_config:
            raise InvalidScoringRule("sections must be a list of scoring sections")
        if "scale" in config or "theta_to_scale" in config:
            raise InvalidScoringRule(
                "a per-section irt rule gives scale_max and theta_to_scale in each section and "
                "sums them for the total: no top-level scale or theta_to_scale"
            )
        sections = tuple(cls.parse_section(s) for s in raw_sections_config)
        if [s.code for s in sections] != list(codes):
            raise InvalidScoringRule(
                f"sections {[s.code for s in sections]} must be the scoring sections the parts "
                f"name, in order: {list(codes)}"
            )
        high = sum(s.scale.high for s in sections)
        return cls(
            scale_min=0.0,
            scale_max=high,
            pass_mark=number(config, "pass_mark", 0, high),
            sections=sections,
            bands=cls.parse_bands(config),
            below_bands=config.get("below_bands"),
            bands_for_passed_only=config.get("bands_for") == "passed",
            ability=cls.parse_ability(config.get("ability", "eap")),
        )

    @staticmethod
    def parse_section(raw: Any) -> IrtSection:
        if not isinstance(raw, Mapping) or not isinstance(raw.get("code"), str):
            raise InvalidScoringRule("each scoring section needs a code")
        maximum = number(raw, "scale_max", 1, 10_000)
        minimum = raw.get("min")
        if minimum is not None:
            minimum = number(raw, "min", 0, maximum)
        title = raw.get("title") or {"en": raw["code"]}
        if not isinstance(title, Mapping):
            raise InvalidScoringRule("a scoring section title maps languages to text")
        if not isinstance(raw.get("theta_to_scale"), Mapping):
            raise InvalidScoringRule(
                f"scoring section {raw['code']} needs theta_to_scale {{slope, intercept}}"
            )
        return IrtSection(
            raw["code"], dict(title), ThetaScale.parse(raw["theta_to_scale"], 0.0, maximum), minimum
        )

    @staticmethod
    def parse_bands(config: Mapping[str, Any]) -> tuple[Band, ...]:
        raw_bands = config.get("bands") or []
        if not isinstance(raw_bands, list):
            raise InvalidScoringRule("bands must be a list of {min, label}")
        return tuple(sorted((Scaled.parse_band(b) for b in raw_bands), key=lambda b: b.minimum))

    @staticmethod
    def parse_ability(value: Any) -> str:
        if value not in ("eap", "map", "mle"):
            raise InvalidScoringRule("ability must be eap, map or mle")
        return value

    def score(self, graded: Sequence[GradedResponse], section_order: Sequence[str]) -> ScoreResult:
        if self.scale is None:  # the per-section form
            return self.score_sections(graded)
        sections = raw_sections(graded, section_order)
        ability = pattern_ability(graded, self.ability)
        total = self.scale.score(ability.theta)
        passed = ability.items > 0 and total >= self.pass_mark
        band = band_label(self.bands, self.below_bands, total)
        points = sum(s.points for s in sections)
        maximum = sum(s.max_points for s in sections)
        return ScoreResult(
            self.name,
            SCORING_VERSION,
            tuple(sections),
            points,
            maximum,
            total,
            self.scale_max,
            passed,
            band,
            theta=ability.theta,
            theta_se=finite_or_none(ability.se),
            calibrated_items=ability.items,
            conditional_sem=self.scale.sem(ability.se),
            item_parameters=parameter_versions(graded),
        )

    def score_sections(self, graded: Sequence[GradedResponse]) -> ScoreResult:
        """Score each section on its own ability and scale; the total is their sum."""
        codes = [s.code for s in self.sections]
        scored, variances = [], []
        for spec, raw in zip(self.sections, raw_sections(graded, codes), strict=True):
            ability = pattern_ability([g for g in graded if g.section == spec.code], self.ability)
            variances.append((spec.scale.slope * ability.se) ** 2)
            scored.append(
                SectionScore(
                    raw.code,
                    raw.points,
                    raw.max_points,
                    spec.scale.score(ability.theta),
                    spec.scale.high,
                    spec.minimum,
                    theta=ability.theta,
                    theta_se=finite_or_none(ability.se),
                    conditional_sem=spec.scale.sem(ability.se),
                    calibrated_items=ability.items,
                )
            )
        total = float(sum(s.scaled or 0 for s in scored))
        passed = (
            all(s.calibrated_items for s in scored)
            and total >= self.pass_mark
            and all(s.meets_minimum for s in scored)
        )
        band = (
            None
            if self.bands_for_passed_only and not passed
            else band_label(self.bands, self.below_bands, total)
        )
        total_sem = math.sqrt(sum(variances))
        return ScoreResult(
            self.name,
            SCORING_VERSION,
            tuple(scored),
            sum(s.points for s in scored),
            sum(s.max_points for s in scored),
            total,
            self.scale_max,
            passed,
            band,
            calibrated_items=sum(s.calibrated_items or 0 for s in scored),
            conditional_sem=round(total_sem, 1) if math.isfinite(total_sem) else None,
            item_parameters=parameter_versions(graded),
        )

    def describe(self) -> dict[str, Any]:
        return points_description(self)

    def section_titles(self) -> Mapping[str, Mapping[str, str]]:
        return {s.code: s.title for s in self.sections}


SCORING_RULES: dict[str, Callable[[Mapping[str, Any], Sequence[str]], ScoringRule]] = {
    "percent": PercentCorrect.from_config,
    "scaled": Scaled.from_config,
    "irt": IrtPattern.from_config,
}


def build_rule(config: Any, codes: Sequence[str] = ()) -> ScoringRule:
    """Return the scoring rule a template's ``scoring:`` mapping names."""
    if not isinstance(config, Mapping) or config.get("rule") not in SCORING_RULES:
        raise InvalidScoringRule(f"scoring.rule must be one of {sorted(SCORING_RULES)}")
    return SCORING_RULES[config["rule"]](config, codes)
