"""What authors work with: item listings, editable documents, skeletons, version diffs.

Editing happens on the item document (the YAML authoring format of README.md): the
same validation as imports applies, so an edit in the browser and an imported file can
never disagree about what a valid item is.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from item_bank.models import Item, ItemVersion
from item_bank.services import CLASSIFICATION_FIELDS, Exporter
from item_bank.types import ITEM_TYPES

SKELETON_FIELDS = {
    "single_choice": {"options": [{"id": k, "html": "<p>…</p>"} for k in "ABCD"], "key": "A"},
    "multiple_response": {
        "options": [{"id": k, "html": "<p>…</p>"} for k in "ABCDE"],
        "key": ["A", "C"],
        "scoring": {"partial_credit": True},
    },
    "ordering": {
        "options": [{"id": k, "html": "…"} for k in "ABCD"],
        "key": ["C", "A", "D", "B"],
        "scoring": {"star_position": 3},
    },
    "text_entry": {
        "max_length": 20,
        "key": {"answers": [{"value": "…", "credit": 1.0}], "normalize": {"kana": False}},
    },
    "matching": {
        "prompts": [{"id": "1", "html": "…"}, {"id": "2", "html": "…"}],
        "choices": [{"id": "a", "html": "…"}, {"id": "b", "html": "…"}, {"id": "c", "html": "…"}],
        "key": {"1": "a", "2": "c"},
        "scoring": {"partial_credit": False},
    },
    "true_false": {"key": True},
}


@dataclass(frozen=True)
class ItemRow:
    """One line of the author's item list."""

    item: Item
    latest: ItemVersion
    approved_no: int | None


def skeleton(item_type: str) -> dict:
    """Return a starting document for a new item of ``item_type``."""
    return {
        "ref": "",
        "type": item_type,
        "exam_family": "",
        "level": "",
        "section": "",
        "topic": "",
        "language": "ja",
        "stem": "<p>…</p>",
        **SKELETON_FIELDS[item_type],
        "explanation": {"ja": "", "en": ""},
    }


def to_yaml(document: Mapping) -> str:
    return yaml.safe_dump(dict(document), allow_unicode=True, sort_keys=False, width=100)


def search_items(
    session: Session,
    text: str = "",
    filters: Mapping[str, str] | None = None,
    status: str = "",
    limit: int = 200,
) -> list[ItemRow]:
    """Items whose ref or current stem contains ``text``, filtered by classification."""
    query = select(Item).options(selectinload(Item.versions)).order_by(Item.ref)
    for name, value in (filters or {}).items():
        if name in CLASSIFICATION_FIELDS and value:
            query = query.where(getattr(Item, name) == value)
    if text:
        pattern = f"%{text}%"
        stems = select(ItemVersion.item_id).where(
            ItemVersion.content["stem"].as_string().like(pattern)
        )
        query = query.where(or_(Item.ref.like(pattern), Item.id.in_(stems)))
    rows = []
    for item in session.scalars(query):
        approved = [v.version_no for v in item.versions if v.status == "approved"]
        row = ItemRow(item, item.versions[-1], max(approved) if approved else None)
        if status == "retired" and not item.is_retired:
            continue
        if status and status != "retired" and row.latest.status != status:
            continue
        rows.append(row)
        if len(rows) == limit:  # the limit counts matches, after the status filter
            break
    return rows


def version_document(session: Session, item: Item, version: ItemVersion) -> dict:
    """Return the editable document of one version (media as package paths)."""
    return Exporter(session, with_media=False).item(item, version)


def version_diff(session: Session, item: Item, old: ItemVersion, new: ItemVersion) -> list[str]:
    """Return the unified diff between two versions' documents, line by line."""
    before = to_yaml(version_document(session, item, old)).splitlines()
    after = to_yaml(version_document(session, item, new)).splitlines()
    return list(
        difflib.unified_diff(
            before, after, f"version {old.version_no}", f"version {new.version_no}", lineterm=""
        )
    )


def known_types() -> list[str]:
    return list(ITEM_TYPES)
