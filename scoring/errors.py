"""Errors raised by scoring.

ScoringError            base; ``code`` is the stable machine-readable code
└── InvalidScoringRule  a template's scoring section cannot be understood
"""

from __future__ import annotations


class ScoringError(Exception):
    """Base of scoring errors."""

    code = "scoring_error"


class InvalidScoringRule(ScoringError):
    """The scoring configuration of a template is invalid."""

    code = "invalid_scoring_rule"
