"""Persistent items and their versions.

An ``Item`` is the stable identity an author works on; an ``ItemVersion`` is one frozen
state of its content and key. Versions are never edited: a change makes a new version,
and attempts point at the version they showed, so an item never changes under a
candidate. The key lives in its own column so that code building candidate views never
has to touch it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from item_bank.db import Base

ITEM_STATUSES = ("draft", "in_review", "approved", "retired")


class Item(Base):
    """An item's identity and classification (exam family, section, level, topic)."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    item_type: Mapped[str] = mapped_column(String(32))
    exam_family: Mapped[str] = mapped_column(String(32), index=True)
    section: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[dt.datetime]

    versions: Mapped[list[ItemVersion]] = relationship(
        back_populates="item", order_by="ItemVersion.version_no"
    )


class ItemVersion(Base):
    """One immutable state of an item: content shown to candidates, key, explanation."""

    __tablename__ = "item_versions"
    __table_args__ = (UniqueConstraint("item_id", "version_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    version_no: Mapped[int]
    content: Mapped[dict[str, Any]]
    answer_key: Mapped[Any] = mapped_column(JSON)
    explanation: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]

    item: Mapped[Item] = relationship(back_populates="versions")
