"""Scoring rules: how graded responses become section scores, a total and a pass decision.

A rule is built from a template's ``scoring:`` mapping through ``SCORING_RULES``, so the
template names the rule and its parameters and the rule itself stays pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scoring.errors import InvalidScoringRule
from scoring.grading import GradedResponse

SCORING_VERSION = "1"


@dataclass(frozen=True)
class SectionScore:
    """Points earned in one scoring section."""

    code: str
    points: float
    max_points: float

    @property
    def percent(self) -> float:
        return round(100 * self.points / self.max_points, 1) if self.max_points else 0.0


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring an attempt under one rule."""

    rule: str
    scoring_version: str
    sections: tuple[SectionScore, ...]
    total: float
    total_max: float
    percent: float
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data (what an attempt stores)."""
        return {
            "rule": self.rule,
            "scoring_version": self.scoring_version,
            "sections": [
                {
                    "code": s.code,
                    "points": s.points,
                    "max_points": s.max_points,
                    "percent": s.percent,
                }
                for s in self.sections
            ],
            "total": self.total,
            "total_max": self.total_max,
            "percent": self.percent,
            "passed": self.passed,
        }


class ScoringRule(Protocol):
    """Turns graded responses into a ``ScoreResult``."""

    name: str

    def score(self, graded: Sequence[GradedResponse], section_order: Sequence[str]) -> ScoreResult:
        """Score ``graded``, reporting sections in ``section_order``."""
        ...

    def describe(self) -> dict[str, Any]:
        """Return the rule's public description (scale and pass mark) for catalogues."""
        ...


@dataclass(frozen=True)
class PercentCorrect:
    """Percent of points earned, pass at or above a threshold (SSW skills tests: 60 or 65)."""

    pass_percent: float
    name: str = "percent"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PercentCorrect:
        threshold = config.get("pass_percent")
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not (0 < threshold <= 100)
        ):
            raise InvalidScoringRule("percent rule needs pass_percent between 0 and 100")
        return cls(pass_percent=float(threshold))

    def score(self, graded: Sequence[GradedResponse], section_order: Sequence[str]) -> ScoreResult:
        sections = []
        for code in section_order:
            in_section = [g for g in graded if g.section == code]
            sections.append(
                SectionScore(
                    code, sum(g.points for g in in_section), sum(g.max_points for g in in_section)
                )
            )
        total = sum(s.points for s in sections)
        total_max = sum(s.max_points for s in sections)
        percent = round(100 * total / total_max, 1) if total_max else 0.0
        return ScoreResult(
            self.name,
            SCORING_VERSION,
            tuple(sections),
            total,
            total_max,
            percent,
            passed=total_max > 0 and 100 * total >= self.pass_percent * total_max,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "rule": self.name,
            "scale": {"min": 0, "max": 100, "unit": "percent"},
            "pass_rule": {"min_percent": self.pass_percent},
        }


SCORING_RULES: dict[str, Callable[[Mapping[str, Any]], ScoringRule]] = {
    "percent": PercentCorrect.from_config,
}


def build_rule(config: Any) -> ScoringRule:
    """Return the scoring rule a template's ``scoring:`` mapping names."""
    if not isinstance(config, Mapping) or config.get("rule") not in SCORING_RULES:
        raise InvalidScoringRule(f"scoring.rule must be one of {sorted(SCORING_RULES)}")
    return SCORING_RULES[config["rule"]](config)
