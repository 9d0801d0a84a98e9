"""Stored templates: each (code, version) is frozen once loaded, since attempts point at it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from item_bank.db import Base


class ExamTemplate(Base):
    """One version of a blueprint, stored as the document it was loaded from."""

    __tablename__ = "exam_templates"
    __table_args__ = (UniqueConstraint("code", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int]
    definition: Mapped[dict[str, Any]]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime]
