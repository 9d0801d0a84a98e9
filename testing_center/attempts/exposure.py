"""How often each item was shown: the exposure counts every start's assembly ranks by.

Counting them afresh on every start scans every attempt item of the pool: 300 to 500 ms
after 10,000 attempts of a JLPT-style form (1,020,000 rows; benchmarks/README.md,
assembly), growing with every attempt. Each process therefore keeps the counts of all items and,
on each start, adds only the attempt items written since it last looked (``id`` above
its mark: a range read of the primary key, a few hundred rows during a start rush).

The counts are recounted in full when the bank's revision token changes (items
imported, approved or retired; also a test's fresh bank), and every
``FULL_RECOUNT_SECONDS`` as well: ids commit out of order, so a row of a transaction
that commits after a later one was read stays uncounted until then. Exposure control
only prefers less-shown items, with ties within 2 broken at random, so an item shown
a few times more than counted for a few minutes changes nothing that matters; every
process reads the same rows, so no host's counts drift apart from the database's.
Without a token row (a schema made without migrations) nothing is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from item_bank.models import ItemVersion
from item_bank.revision import current_revision
from item_bank.services import among
from testing_center.attempts.models import AttemptItem

FULL_RECOUNT_SECONDS = 300.0


def exposure_counts(session: Session, item_ids: Iterable[int]) -> dict[int, int]:
    """How many attempts showed each item (any version), counted in the database."""
    rows = session.execute(
        select(ItemVersion.item_id, func.count())
        .join(AttemptItem, AttemptItem.item_version_id == ItemVersion.id)
        .where(among(session, ItemVersion.item_id, list(item_ids)))
        .group_by(ItemVersion.item_id)
    )
    return dict(rows.all())


class ExposureCounts:
    """One database's counts in one process: per item, with the newest attempt item
    counted (the mark) and the bank revision and time of the last full count."""

    def __init__(self, revision: str) -> None:
        self.revision = revision
        self.counted_at = float("-inf")
        self.mark = 0
        self.by_item: dict[int, int] = {}

    def recount(self, session: Session, now: float) -> None:
        """Count every item's attempt items up to the newest id (read first)."""
        self.mark = session.scalar(select(func.max(AttemptItem.id))) or 0
        rows = session.execute(
            select(ItemVersion.item_id, func.count())
            .join(AttemptItem, AttemptItem.item_version_id == ItemVersion.id)
            .where(AttemptItem.id <= self.mark)
            .group_by(ItemVersion.item_id)
        )
        self.by_item = dict(rows.all())
        self.counted_at = now

    def catch_up(self, session: Session) -> None:
        """Add the attempt items written since the mark."""
        rows = session.execute(
            select(AttemptItem.id, ItemVersion.item_id)
            .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
            .where(AttemptItem.id > self.mark)
        ).all()
        for row_id, item_id in rows:
            self.by_item[item_id] = self.by_item.get(item_id, 0) + 1
            self.mark = max(self.mark, row_id)


class ExposureCache:
    """``ExposureCounts`` per database for this process (thread-safe)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        self.by_database: dict[str, ExposureCounts] = {}

    def counts(self, session: Session, item_ids: Iterable[int]) -> Mapping[int, int]:
        """How often each of ``item_ids`` was shown, as of this start."""
        revision = current_revision(session)
        if revision is None:
            return exposure_counts(session, item_ids)
        key = str(session.get_bind().url)
        now = self.clock()
        with self.lock:
            held = self.by_database.get(key)
            if held is None or held.revision != revision:
                held = self.by_database[key] = ExposureCounts(revision)
            if now - held.counted_at >= FULL_RECOUNT_SECONDS:
                held.recount(session, now)
            else:
                held.catch_up(session)
            return {item_id: held.by_item.get(item_id, 0) for item_id in item_ids}


EXPOSURE = ExposureCache()  # per process: filled on the first start, caught up on each
