"""Retention periods, applied by the scheduler's ``apply_retention`` sweep.

- ``RETENTION_PRACTICE_DAYS``: answers of practice attempts finished longer ago are
  blanked (the attempt and its result stay, so the candidate's history is whole).
- ``RETENTION_PHOTOS_DAYS``: check-in photos taken longer ago are deleted unless a
  certificate shows them or a finished attempt of that check-in still awaits one.
- ``RETENTION_VERIFICATION_LOG_DAYS``: certificate lookups older than this are deleted
  (employers' batch histories included).

Each practice attempt and each photo is its own transaction, and the verification log
goes in chunks, like every sweep: what is done stays done, a failure is retried next
cycle, and a second run finds nothing left to do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from testing_center.attempts.models import Attempt, AttemptItem, AttemptStatus, Response
from testing_center.attempts.services import PRACTICE
from testing_center.certification.models import Verification
from testing_center.operations.models import CandidatePhoto
from testing_center.privacy.services import erase_practice_answers, photo_is_kept

BATCH = 500  # items listed per cycle and per kind; the rest come next cycle
LOG_CHUNK = 1000  # verification rows deleted per transaction

EachItem = Callable[[Session, str, Iterable[Any], Callable[[Any], bool]], int]


def cutoff(now: dt.datetime, setting: str) -> dt.datetime:
    return now - dt.timedelta(days=current_app.config[setting])


def expired_practice_attempts(session: Session, before: dt.datetime) -> list[str]:
    """Practice attempts finished before ``before`` that still hold an answer."""
    return list(
        session.scalars(
            select(Attempt.id)
            .where(
                Attempt.mode == PRACTICE,
                Attempt.status == AttemptStatus.FINISHED,
                Attempt.finished_at < before,
                select(Response.id)
                .join(AttemptItem, AttemptItem.id == Response.attempt_item_id)
                .where(AttemptItem.attempt_id == Attempt.id, Response.value.is_not(None))
                .exists(),
            )
            .order_by(Attempt.finished_at)
            .limit(BATCH)
        )
    )


def expired_photos(session: Session, before: dt.datetime) -> list[int]:
    """Photos taken before ``before`` that no certificate shows or awaits."""
    return list(
        session.scalars(
            select(CandidatePhoto.id)
            .where(CandidatePhoto.taken_at < before, ~photo_is_kept())
            .order_by(CandidatePhoto.id)
            .limit(BATCH)
        )
    )


def apply_retention(session: Session, now: dt.datetime, each_item: EachItem) -> int:
    """Erase what has outlived its period; return how many records were erased
    (practice attempts blanked, photos deleted, verification rows deleted)."""
    practice_before = cutoff(now, "RETENTION_PRACTICE_DAYS")
    photos_before = cutoff(now, "RETENTION_PHOTOS_DAYS")
    log_before = cutoff(now, "RETENTION_VERIFICATION_LOG_DAYS")

    def blank_practice(attempt_id: str) -> bool:
        condition = (Attempt.id == attempt_id) & (Attempt.finished_at < practice_before)
        return erase_practice_answers(session, condition) > 0

    def delete_photo(photo_id: int) -> bool:
        return bool(
            session.execute(
                delete(CandidatePhoto)
                .where(
                    CandidatePhoto.id == photo_id,
                    CandidatePhoto.taken_at < photos_before,
                    ~photo_is_kept(),
                )
                .execution_options(synchronize_session=False)
            ).rowcount
        )

    log_deleted = 0

    def delete_log_chunk(ids: tuple[int, ...]) -> bool:
        nonlocal log_deleted
        log_deleted += session.execute(
            delete(Verification).where(Verification.id.in_(ids), Verification.at < log_before)
        ).rowcount
        return True

    done = each_item(
        session,
        "retention_practice",
        expired_practice_attempts(session, practice_before),
        blank_practice,
    )
    done += each_item(
        session, "retention_photos", expired_photos(session, photos_before), delete_photo
    )
    old = list(
        session.scalars(
            select(Verification.id)
            .where(Verification.at < log_before)
            .order_by(Verification.id)
            .limit(BATCH * LOG_CHUNK // 10)
        )
    )
    chunks = [tuple(old[n : n + LOG_CHUNK]) for n in range(0, len(old), LOG_CHUNK)]
    each_item(session, "retention_verification_log", chunks, delete_log_chunk)
    return done + log_deleted
