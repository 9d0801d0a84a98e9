"""The audit log: every operator and proctor action, with the record before and after."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from testing_center.accounts.models import User
from testing_center.operations.models import AuditEntry


def snapshot(record: Any, fields: Iterable[str]) -> dict[str, Any]:
    """Return the named fields of a record as JSON-ready values (for before/after)."""
    return {name: plain(getattr(record, name)) for name in fields}


def plain(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def record(
    session: Session,
    *,
    actor: User | None,
    action: str,
    entity: str,
    entity_id: Any,
    now: dt.datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Add an audit entry in the caller's transaction (it commits or rolls back with it)."""
    entry = AuditEntry(
        at=now,
        actor_id=actor.id if actor else None,
        action=action,
        entity=entity,
        entity_id=str(entity_id),
        reason=reason[:500] if reason else None,
        before=before,
        after=after,
    )
    session.add(entry)
    return entry
