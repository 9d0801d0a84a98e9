"""Exposure counts kept per process follow the database (``attempts.exposure``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from item_bank.models import Item, ItemVersion
from testing_center.attempts.exposure import (
    FULL_RECOUNT_SECONDS,
    ExposureCache,
    exposure_counts,
)
from testing_center.attempts.models import AttemptItem
from testing_center.extensions import db

EXAM = "jft-basic-practice"


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def start_attempt(client, make_candidate, auth_headers, seeded):
    """Start a practice attempt as a new candidate."""

    def start() -> None:
        headers = auth_headers(make_candidate())
        response = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers)
        assert response.status_code == 201

    return start


def all_items() -> list[int]:
    return list(db.session.scalars(select(Item.id)))


def test_kept_counts_follow_later_starts(app, start_attempt):
    """Counts kept since an earlier start add every attempt item written since then."""
    cache = ExposureCache()
    start_attempt()
    with app.app_context():
        assert cache.counts(db.session, all_items()) == {
            i: exposure_counts(db.session, all_items()).get(i, 0) for i in all_items()
        }
        db.session.commit()
    start_attempt()
    start_attempt()
    with app.app_context():
        counted = exposure_counts(db.session, all_items())
        assert sum(counted.values()) == 3 * 16
        assert cache.counts(db.session, all_items()) == {i: counted.get(i, 0) for i in all_items()}


def test_rows_behind_the_mark_are_counted_at_the_full_recount(app, start_attempt):
    """A row the mark passed over (it committed late) counts at the next full recount."""
    ticks = Ticks()
    cache = ExposureCache(clock=ticks)
    start_attempt()
    with app.app_context():
        shown = db.session.scalar(select(AttemptItem).limit(1))
        other = db.session.scalar(
            select(ItemVersion)
            .where(ItemVersion.id.not_in(select(AttemptItem.item_version_id)))
            .limit(1)
        )
        ids = [other.item_id]
        assert cache.counts(db.session, ids) == {other.item_id: 0}
        db.session.execute(
            update(AttemptItem).where(AttemptItem.id == shown.id).values(item_version_id=other.id)
        )
        db.session.commit()
        assert cache.counts(db.session, ids) == {other.item_id: 0}
        ticks.now += FULL_RECOUNT_SECONDS
        assert cache.counts(db.session, ids) == {other.item_id: 1}
