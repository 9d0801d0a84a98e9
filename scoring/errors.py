"""Errors raised by scoring.

ScoringError            base; ``code`` is the stable machine-readable code
├── InvalidScoringRule  a template's scoring section cannot be understood
└── InvalidCatConfig    an adaptive-test configuration or bank is unusable (``problems``)
"""

from __future__ import annotations


class ScoringError(Exception):
    """Base of scoring errors."""

    code = "scoring_error"


class InvalidScoringRule(ScoringError):
    """The scoring configuration of a template is invalid."""

    code = "invalid_scoring_rule"


class InvalidCatConfig(ScoringError):
    """An adaptive-test (CAT) configuration, or the bank it is used with, is invalid."""

    code = "invalid_cat_config"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
