"""Loading items into the bank and finding the approved ones for form assembly.

Services take a SQLAlchemy session and flush; the caller owns the transaction, so an
import either lands whole or, on any invalid item, raises before anything is flushed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from item_bank.errors import InvalidItem
from item_bank.models import ITEM_STATUSES, Item, ItemVersion
from item_bank.types import ITEM_TYPES

SAMPLES_DIR = Path(__file__).parent / "samples"
CLASSIFICATION_FIELDS = ("exam_family", "section", "level", "topic")


@dataclass(frozen=True)
class ImportReport:
    """What an import did: items created, new versions added, unchanged items skipped."""

    created: int
    versioned: int
    unchanged: int


@dataclass(frozen=True)
class ValidItem:
    """An item document that passed validation, with its content sanitised."""

    ref: str
    item_type: str
    classification: dict[str, str]
    content: dict[str, Any]
    answer_key: Any
    explanation: dict[str, str]


@dataclass(frozen=True)
class PoolEntry:
    """An approved item's current version, as form assembly sees it."""

    item_id: int
    item_ref: str
    version_id: int
    item_type: str
    topic: str
    option_ids: tuple[str, ...]


def read_item_documents(paths: Iterable[Path]) -> list[Mapping[str, Any]]:
    """Return the item documents listed under ``items:`` in the given YAML files."""
    documents: list[Mapping[str, Any]] = []
    for path in paths:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise InvalidItem([f"{path}: cannot be read as YAML ({error})"]) from error
        if not isinstance(data, dict) or not isinstance(data.get("items"), list):
            raise InvalidItem([f"{path}: expected a mapping with an 'items' list"])
        documents.extend(data["items"])
    return documents


def validate_item(document: Any) -> tuple[ValidItem | None, list[str]]:
    """Return the validated item, or None and every problem found in ``document``."""
    if not isinstance(document, Mapping):
        return None, ["an item must be a mapping"]
    ref = document.get("ref")
    label = ref if isinstance(ref, str) and ref else "<item without ref>"
    problems: list[str] = []
    if not isinstance(ref, str) or not ref.strip() or len(ref) > 64:
        problems.append("ref must be a non-empty string of at most 64 characters")
    item_type = ITEM_TYPES.get(str(document.get("type")))
    if item_type is None:
        problems.append(f"unknown item type {document.get('type')!r}")
    classification = {}
    for field in CLASSIFICATION_FIELDS:
        value = document.get(field)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{field} is required")
        classification[field] = str(value or "").strip()
    explanation = document.get("explanation") or {}
    if not isinstance(explanation, Mapping):
        problems.append("explanation must map language codes to text")
        explanation = {}
    content: dict[str, Any] = {}
    if item_type is not None:
        raw_content = {"stem": document.get("stem"), "options": document.get("options")}
        content, type_problems = item_type.clean_content(raw_content, document.get("key"))
        problems.extend(type_problems)
    if problems:
        return None, [f"{label}: {problem}" for problem in problems]
    return ValidItem(
        ref=ref.strip(),
        item_type=item_type.code,
        classification=classification,
        content=content,
        answer_key=document.get("key"),
        explanation={str(k): str(v) for k, v in explanation.items()},
    ), []


def import_items(
    session: Session, documents: Iterable[Any], *, status: str, now: dt.datetime
) -> ImportReport:
    """Add the documents to the bank, all or nothing.

    Every document is validated before anything is written. An item whose ref exists
    gets a new version only when its content, key or explanation changed, so importing
    the same file twice changes nothing.
    """
    if status not in ITEM_STATUSES:
        raise InvalidItem([f"unknown status {status!r}"])
    valid, problems = [], []
    for document in documents:
        item, item_problems = validate_item(document)
        problems.extend(item_problems)
        if item is not None:
            valid.append(item)
    refs = [item.ref for item in valid]
    duplicates = sorted({ref for ref in refs if refs.count(ref) > 1})
    problems.extend(f"{ref}: appears more than once" for ref in duplicates)
    if problems:
        raise InvalidItem(problems)

    existing = {item.ref: item for item in session.scalars(select(Item).where(Item.ref.in_(refs)))}
    created = versioned = unchanged = 0
    for valid_item in valid:
        item = existing.get(valid_item.ref)
        if item is None:
            item = Item(
                ref=valid_item.ref,
                item_type=valid_item.item_type,
                status=status,
                created_at=now,
                **valid_item.classification,
            )
            session.add(item)
            created += 1
        elif _same_as_latest(item, valid_item):
            unchanged += 1
            continue
        else:
            for field, value in valid_item.classification.items():
                setattr(item, field, value)
            versioned += 1
        item.versions.append(
            ItemVersion(
                version_no=len(item.versions) + 1,
                content=valid_item.content,
                answer_key=valid_item.answer_key,
                explanation=valid_item.explanation,
                created_at=now,
            )
        )
    session.flush()
    return ImportReport(created=created, versioned=versioned, unchanged=unchanged)


def _same_as_latest(item: Item, valid_item: ValidItem) -> bool:
    latest = item.versions[-1] if item.versions else None
    return (
        latest is not None
        and item.item_type == valid_item.item_type
        and latest.content == valid_item.content
        and latest.answer_key == valid_item.answer_key
        and latest.explanation == valid_item.explanation
    )


def approved_pool(session: Session, filters: Mapping[str, str]) -> list[PoolEntry]:
    """Return the current version of every approved item matching the classification filters."""
    latest = (
        select(ItemVersion.item_id, func.max(ItemVersion.version_no).label("version_no"))
        .group_by(ItemVersion.item_id)
        .subquery()
    )
    query = (
        select(Item, ItemVersion)
        .join(latest, latest.c.item_id == Item.id)
        .join(
            ItemVersion,
            (ItemVersion.item_id == Item.id) & (ItemVersion.version_no == latest.c.version_no),
        )
        .where(Item.status == "approved")
        .order_by(Item.ref)
    )
    for field, value in filters.items():
        if field not in CLASSIFICATION_FIELDS:
            raise InvalidItem([f"cannot filter items on {field!r}"])
        query = query.where(getattr(Item, field) == value)
    return [
        PoolEntry(
            item_id=item.id,
            item_ref=item.ref,
            version_id=version.id,
            item_type=item.item_type,
            topic=item.topic,
            option_ids=tuple(ITEM_TYPES[item.item_type].option_ids(version.content)),
        )
        for item, version in session.execute(query)
    ]
