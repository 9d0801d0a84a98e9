"""Calibrations of live data, the item parameters scoring uses, and scoring corrections.

A calibration is kept whole (its document) so it can be reviewed and plotted before
anyone relies on it; only when an operator stores it do its parameters reach the item
versions, as rows of their own: item versions stay immutable, and a result names the
parameter set it was scored with. Corrections are append-only: the latest row for an
item version is in force, so the history of a key error and its fix stays on record.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exam_templates.models import ExamTemplate
from item_bank.db import Base


class ParameterSet(Base):
    """One calibration of an exam's items from its finished attempts."""

    __tablename__ = "parameter_sets"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("exam_templates.id"), index=True)
    model: Mapped[str] = mapped_column(String(8))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)  # the calibration document, D = 1
    n_persons: Mapped[int]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime]
    stored_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    stored_at: Mapped[dt.datetime | None]

    template: Mapped[ExamTemplate] = relationship()

    @property
    def label(self) -> str:
        """The parameter version a result records ("cal-12")."""
        return f"cal-{self.id}"


class ItemVersionParameters(Base):
    """IRT parameters of one item version from a stored parameter set."""

    __tablename__ = "item_version_parameters"
    __table_args__ = (UniqueConstraint("item_version_id", "parameter_set_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    parameter_set_id: Mapped[int] = mapped_column(ForeignKey("parameter_sets.id"))
    a: Mapped[float]
    b: Mapped[float]
    c: Mapped[float] = mapped_column(default=0.0)
    stored_at: Mapped[dt.datetime]


class CorrectionAction(enum.StrEnum):
    """What a scoring correction does to an item version's responses."""

    REKEY = "rekey"  # grade against a corrected key
    CREDIT_ALL = "credit_all"  # full credit to everyone presented the item, answered or not
    DROP = "drop"  # the item no longer counts (nor in the maximum)
    RESTORE = "restore"  # back to the item version's own key


class ScoringCorrection(Base):
    """A decision about how an item version is scored from now on, with who and why."""

    __tablename__ = "scoring_corrections"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_version_id: Mapped[int] = mapped_column(ForeignKey("item_versions.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    answer_key: Mapped[Any | None] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime]
