"""Persistent items, their versions, shared stimuli, media and the review trail.

An ``Item`` is the stable identity an author works on; an ``ItemVersion`` is one state
of its content and key. Only draft versions may change; an approved version is frozen,
and attempts point at the version they showed, so an item never changes under a
candidate. The key lives in its own column so code building candidate views never
reads it. A version's content carries a copy of its stimulus (passage, conversation),
so editing a stimulus cannot alter a published version either.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, deferred, mapped_column, relationship

from item_bank.db import Base

VERSION_STATUSES = ("draft", "in_review", "approved")


class Item(Base):
    """An item's identity; its type and classification columns follow its newest approved
    version (what exams draw on), while each version holds its own."""

    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    item_type: Mapped[str] = mapped_column(String(32))
    exam_family: Mapped[str] = mapped_column(String(32), index=True)
    section: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(16))
    topic: Mapped[str] = mapped_column(String(64))
    group_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[dt.datetime]
    retired_at: Mapped[dt.datetime | None]

    versions: Mapped[list[ItemVersion]] = relationship(
        back_populates="item", order_by="ItemVersion.version_no"
    )

    @property
    def is_retired(self) -> bool:
        return self.retired_at is not None


class ItemVersion(Base):
    """One state of an item: content shown to candidates, key, explanation, metadata."""

    __tablename__ = "item_versions"
    __table_args__ = (
        UniqueConstraint("item_id", "version_no"),
        CheckConstraint("status IN ('draft', 'in_review', 'approved')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    version_no: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    item_type: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict[str, Any]]
    answer_key: Mapped[Any] = mapped_column(JSON)
    explanation: Mapped[dict[str, Any]]
    # classification, group, enemies, language, can-do, tags, provenance, difficulty
    details: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[dt.datetime | None]
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    item: Mapped[Item] = relationship(back_populates="versions")


class ItemEnemy(Base):
    """An item's approved version names another that must not share a form with it.

    The relation is symmetric for assembly; the row records which item named it, so an
    item's own list can be replaced without touching what other items say.
    """

    __tablename__ = "item_enemies"

    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)
    enemy_id: Mapped[int] = mapped_column(ForeignKey("items.id"), primary_key=True)


class Stimulus(Base):
    """A passage or conversation shared by several items (the authoring copy)."""

    __tablename__ = "stimuli"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(64), unique=True)
    content: Mapped[dict[str, Any]]  # kind, html, language, audio
    updated_at: Mapped[dt.datetime]


class Media(Base):
    """An audio clip or image, stored once by content hash so any host can serve it."""

    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    mime_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary))
    size_bytes: Mapped[int]
    duration_ms: Mapped[int | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    created_at: Mapped[dt.datetime]


class ItemEvent(Base):
    """One step in an item's life (created, submitted, approved, returned, retired...)."""

    __tablename__ = "item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"), index=True)
    version_no: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))
    at: Mapped[dt.datetime]


class BankRevision(Base):
    """One row whose token changes in every transaction that changes what form assembly
    reads (items, their versions, enemy pairs); see ``item_bank.revision``."""

    __tablename__ = "bank_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(32))
