"""Errors raised by exam templates.

TemplateError        base; ``code`` is the stable machine-readable code
├── InvalidTemplate  a blueprint file breaks the schema (``problems`` lists each)
└── AssemblyError    the bank cannot satisfy the blueprint (the message says what is short)
"""

from __future__ import annotations


class TemplateError(Exception):
    """Base of template errors."""

    code = "template_error"


class InvalidTemplate(TemplateError):
    """A blueprint is invalid."""

    code = "invalid_template"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class AssemblyError(TemplateError):
    """A form cannot be assembled from the bank as it is."""

    code = "exam_unavailable"
