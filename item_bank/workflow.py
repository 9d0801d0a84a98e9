"""The review workflow: draft -> in review -> approved, and retirement.

An approved version is what exams show, so approval needs a second person: whoever
wrote or edited a version cannot approve it. Review steps name the version the person
looked at, so nothing is approved unseen. Every step is recorded as an ``ItemEvent``
with who and when; the web layer checks roles, this module checks the items' rules.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from item_bank.errors import WorkflowError
from item_bank.models import Item, ItemEvent, ItemVersion
from item_bank.services import publish, record_event


def item_by_ref(session: Session, ref: str) -> Item:
    item = session.scalar(select(Item).where(Item.ref == ref))
    if item is None:
        raise WorkflowError(f"there is no item {ref!r}")
    return item


def latest_version(item: Item) -> ItemVersion:
    return item.versions[-1]


def expect_version(item: Item, version_no: int | None) -> ItemVersion:
    """The latest version, provided it is the one the person acted on (when named)."""
    version = latest_version(item)
    if version_no is not None and version.version_no != version_no:
        raise WorkflowError(
            f"{item.ref}: version {version_no} is no longer the latest "
            f"(it is {version.version_no}); look at it again"
        )
    return version


def writers_of(session: Session, item: Item, version_no: int) -> set[int]:
    """Everyone who wrote or edited this version (none of them may approve it)."""
    return set(
        session.scalars(
            select(ItemEvent.actor_id).where(
                ItemEvent.item_id == item.id,
                ItemEvent.version_no == version_no,
                ItemEvent.action.in_(("imported", "edited")),
                ItemEvent.actor_id.is_not(None),
            )
        )
    )


def submit_for_review(
    session: Session, item: Item, actor_id: int, now: dt.datetime, version_no: int | None = None
) -> None:
    """Send the draft version to review."""
    version = expect_version(item, version_no)
    if version.status != "draft":
        raise WorkflowError(f"{item.ref}: only a draft can be submitted (it is {version.status})")
    version.status = "in_review"
    record_event(session, item, version.version_no, "submitted", actor_id, now)
    session.flush()


def approve(
    session: Session, item: Item, reviewer_id: int, now: dt.datetime, version_no: int | None = None
) -> None:
    """Approve the version in review: it becomes the one exams show, and is frozen."""
    version = expect_version(item, version_no)
    if version.status != "in_review":
        raise WorkflowError(f"{item.ref}: only a version in review can be approved")
    if reviewer_id == version.created_by_id or reviewer_id in writers_of(
        session, item, version.version_no
    ):
        raise WorkflowError(
            f"{item.ref}: review requires a second person; whoever wrote or "
            "edited a version cannot approve it"
        )
    version.status = "approved"
    version.approved_at, version.approved_by_id = now, reviewer_id
    record_event(session, item, version.version_no, "approved", reviewer_id, now)
    publish(session, item, version)


def return_to_author(
    session: Session,
    item: Item,
    reviewer_id: int,
    note: str,
    now: dt.datetime,
    version_no: int | None = None,
) -> None:
    """Send the version in review back to draft with the reviewer's note."""
    version = expect_version(item, version_no)
    if version.status != "in_review":
        raise WorkflowError(f"{item.ref}: only a version in review can be returned")
    if not note.strip():
        raise WorkflowError(f"{item.ref}: say what should change")
    version.status = "draft"
    record_event(
        session, item, version.version_no, "returned", reviewer_id, now, note.strip()[:500]
    )
    session.flush()


def retire(session: Session, item: Item, actor_id: int, now: dt.datetime) -> None:
    """Take an item out of assembly for good; attempts keep the versions they showed."""
    if item.retired_at is not None:
        raise WorkflowError(f"{item.ref}: is retired already")
    item.retired_at = now
    record_event(session, item, latest_version(item).version_no, "retired", actor_id, now)
    session.flush()


def history(session: Session, item: Item) -> list[ItemEvent]:
    """Return the item's events, oldest first."""
    return list(
        session.scalars(
            select(ItemEvent).where(ItemEvent.item_id == item.id).order_by(ItemEvent.id)
        )
    )
