"""The review workflow: draft -> in review -> approved, and retirement.

An approved version is what exams show, so approval needs a second person: whoever
wrote a version cannot approve it. Every step is recorded as an ``ItemEvent`` with who
and when; the web layer checks roles, this module checks the rules of the items.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from item_bank.errors import WorkflowError
from item_bank.models import Item, ItemEvent, ItemVersion


def item_by_ref(session: Session, ref: str) -> Item:
    item = session.scalar(select(Item).where(Item.ref == ref))
    if item is None:
        raise WorkflowError(f"there is no item {ref!r}")
    return item


def latest_version(item: Item) -> ItemVersion:
    return item.versions[-1]


def record(
    session: Session,
    item: Item,
    action: str,
    actor_id: int | None,
    now: dt.datetime,
    note: str | None = None,
) -> None:
    session.add(
        ItemEvent(
            item_id=item.id,
            version_no=latest_version(item).version_no,
            action=action,
            actor_id=actor_id,
            note=note,
            at=now,
        )
    )


def submit_for_review(session: Session, item: Item, actor_id: int, now: dt.datetime) -> None:
    """Send the draft version to review."""
    version = latest_version(item)
    if version.status != "draft":
        raise WorkflowError(f"{item.ref}: only a draft can be submitted (it is {version.status})")
    version.status = "in_review"
    record(session, item, "submitted", actor_id, now)
    session.flush()


def approve(session: Session, item: Item, reviewer_id: int, now: dt.datetime) -> None:
    """Approve the version in review: it becomes the one exams show, and is frozen."""
    version = latest_version(item)
    if version.status != "in_review":
        raise WorkflowError(f"{item.ref}: only a version in review can be approved")
    if version.created_by_id is not None and version.created_by_id == reviewer_id:
        raise WorkflowError(
            f"{item.ref}: review requires a second person; the author of "
            "a version cannot approve it"
        )
    version.status = "approved"
    version.approved_at, version.approved_by_id = now, reviewer_id
    record(session, item, "approved", reviewer_id, now)
    session.flush()


def return_to_author(
    session: Session, item: Item, reviewer_id: int, note: str, now: dt.datetime
) -> None:
    """Send the version in review back to draft with the reviewer's note."""
    version = latest_version(item)
    if version.status != "in_review":
        raise WorkflowError(f"{item.ref}: only a version in review can be returned")
    if not note.strip():
        raise WorkflowError(f"{item.ref}: say what should change")
    version.status = "draft"
    record(session, item, "returned", reviewer_id, now, note.strip()[:500])
    session.flush()


def retire(session: Session, item: Item, actor_id: int, now: dt.datetime) -> None:
    """Take an item out of assembly for good; attempts keep the versions they showed."""
    if item.retired_at is not None:
        raise WorkflowError(f"{item.ref}: is retired already")
    item.retired_at = now
    record(session, item, "retired", actor_id, now)
    session.flush()


def history(session: Session, item: Item) -> list[ItemEvent]:
    """Return the item's events, oldest first."""
    return list(
        session.scalars(
            select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id)
        )
    )
