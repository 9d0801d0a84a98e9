"""The scheduler: the jobs that keep exam days running, in a process of their own.

``testing-center scheduler`` runs them with APScheduler (``--once``: a single cycle, for
cron and tests); web workers never do. Every job is an idempotent sweep
``(session, now) -> int`` that finds what is due, acts, commits and returns how much it
did, so a second run right after finds nothing. Within a sweep each item (a session, an
attempt) is its own transaction: a failing item is rolled back, logged by id and
skipped, and the sweep and the other jobs go on; it is tried again next cycle.

One cycle runs the sweeps in the order of ``SWEEPS`` (attempts are finished before
sessions close and results are released, and mail goes last, so what a cycle queues
leaves in the same cycle), then writes the heartbeat the operator dashboard reads
through ``heartbeat_status``. ``SchedulerLock`` keeps a second scheduler, started by
mistake, from acting.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from exam_templates.blueprint import parse_blueprint
from testing_center.accounts.models import User
from testing_center.attempts.models import Attempt, AttemptStatus
from testing_center.attempts.sections import attempt_duration
from testing_center.attempts.services import expired_attempt_ids, finish_if_expired
from testing_center.certification import services as certification
from testing_center.operations import audit, services
from testing_center.operations.models import (
    Booking,
    ExamSession,
    SchedulerHeartbeat,
    SessionStatus,
)
from testing_center.operations.notify import configured_sender, queue_notification, send_pending
from testing_center.privacy import retention
from testing_center.ratelimit import prune

logger = logging.getLogger(__name__)

Sweep = Callable[[Session, dt.datetime], int]

HEARTBEAT_NAME = "main"
DEFAULT_INTERVAL_SECONDS = 60
STALE_AFTER_INTERVALS = 3
CLOSE_GRACE = dt.timedelta(minutes=30)
LOCK_FILENAME = "scheduler.lock"
# pg_try_advisory_lock key: the bytes b"tc-sched" read as one big-endian bigint.
ADVISORY_LOCK_KEY = 0x74632D7363686564
ERRORS_KEY = "scheduler_errors"  # failures of the current sweep, kept in Session.info


# ---- items --------------------------------------------------------------------------------


def log_failure(job: str, item_id: Any, error: BaseException) -> None:
    """Log a failure by job, item id, error class and place: never the message, which may
    carry names, addresses or answers."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    logger.error("scheduler: %s failed on %s: %s at %s", job, item_id, type(error).__name__, where)


def each_item(
    session: Session, job: str, item_ids: Iterable[Any], act: Callable[[Any], bool]
) -> int:
    """Run ``act`` on every id, each in its own transaction; return how many it did.

    A failure rolls back that item only, is logged and counted, and the sweep goes on.
    """
    ids = list(item_ids)
    session.rollback()  # end the transaction that listed them (a snapshot on PostgreSQL)
    done = 0
    for item_id in ids:
        try:
            did = act(item_id)
            session.commit()
        except Exception as error:  # one broken item must not stop the sweep
            session.rollback()
            log_failure(job, item_id, error)
            session.info[ERRORS_KEY] = session.info.get(ERRORS_KEY, 0) + 1
            continue
        done += bool(did)
    return done


def locked_session(session: Session, session_id: int) -> ExamSession | None:
    """Return the exam session with its row locked (PostgreSQL), read afresh."""
    return session.get(ExamSession, session_id, with_for_update=True, populate_existing=True)


# ---- sweeps -------------------------------------------------------------------------------


def open_sessions(session: Session, now: dt.datetime) -> int:
    """Open published sessions whose start has come (the audit log shows the system)."""

    def act(session_id: int) -> bool:
        exam_session = locked_session(session, session_id)
        if (
            exam_session is None
            or exam_session.status != SessionStatus.PUBLISHED
            or exam_session.starts_at > now
        ):
            return False
        services.open_session(session, exam_session, None, now)
        return True

    due = session.scalars(
        select(ExamSession.id)
        .where(ExamSession.status == SessionStatus.PUBLISHED, ExamSession.starts_at <= now)
        .order_by(ExamSession.starts_at, ExamSession.id)
    )
    return each_item(session, "open_sessions", due, act)


def closing_time(exam_session: ExamSession) -> dt.datetime:
    """When an open session closes: its start, the late cut-off, the exam's longest
    duration and a grace of 30 minutes (attempts under way still run to their deadlines)."""
    duration = attempt_duration(parse_blueprint(exam_session.template.definition))
    late = dt.timedelta(minutes=exam_session.late_minutes)
    return exam_session.starts_at + late + duration + CLOSE_GRACE


def close_sessions(session: Session, now: dt.datetime) -> int:
    """Close open sessions once their closing time has passed."""

    def act(session_id: int) -> bool:
        exam_session = locked_session(session, session_id)
        if (
            exam_session is None
            or exam_session.status != SessionStatus.OPEN
            or closing_time(exam_session) > now
        ):
            return False
        services.close_session(session, exam_session, None, now)
        return True

    open_now = session.scalars(
        select(ExamSession)
        .where(ExamSession.status == SessionStatus.OPEN, ExamSession.starts_at <= now)
        .order_by(ExamSession.starts_at, ExamSession.id)
    )
    due = [s.id for s in open_now if closing_time(s) <= now]
    return each_item(session, "close_sessions", due, act)


def finish_attempts(session: Session, now: dt.datetime) -> int:
    """Finish and score attempts whose time is up, with exactly their saved answers;
    paused attempts are left alone. One transaction per attempt.

    Two sweeps at once finish each attempt once: the first statement on an attempt is
    an UPDATE that matches it only while it is still due, which takes its row lock on
    PostgreSQL and the write lock on SQLite; the other sweep waits, then matches nothing.
    """

    def act(attempt_id: str) -> bool:
        claimed = session.execute(
            update(Attempt)
            .where(
                Attempt.id == attempt_id,
                Attempt.status == AttemptStatus.IN_PROGRESS,
                Attempt.paused_at.is_(None),
                Attempt.deadline_at <= now,
            )
            .values(status=Attempt.status)
            .execution_options(synchronize_session=False)
        ).rowcount
        return bool(claimed) and finish_if_expired(session, attempt_id, now)

    return each_item(session, "finish_attempts", expired_attempt_ids(session, now), act)


def release_results(session: Session, now: dt.datetime) -> int:
    """Release the results of closed sessions whose release time has come, and tell each
    candidate with a finished attempt there. A session still open waits for its close."""

    def act(session_id: int) -> bool:
        exam_session = locked_session(session, session_id)
        if (
            exam_session is None
            or exam_session.status != SessionStatus.CLOSED
            or exam_session.results_released_at is not None
        ):
            return False
        exam_session.results_released_at = now
        finished = (
            select(Attempt.user_id)
            .join(Booking, Booking.id == Attempt.booking_id)
            .where(Booking.session_id == session_id, Attempt.status == AttemptStatus.FINISHED)
        )
        candidates = session.scalars(
            select(User).where(User.id.in_(finished)).order_by(User.id)
        ).all()
        for user in candidates:
            queue_notification(
                session, user, "results_released", now, exam=exam_session.template.code
            )
        audit.record(
            session,
            actor=None,
            action="session.release_results",
            entity="session",
            entity_id=session_id,
            now=now,
            after={"results_released_at": now.isoformat(), "notified": len(candidates)},
        )
        session.flush()
        return True

    due = session.scalars(
        select(ExamSession.id)
        .where(
            ExamSession.status == SessionStatus.CLOSED,
            ExamSession.results_release_at <= now,
            ExamSession.results_released_at.is_(None),
        )
        .order_by(ExamSession.results_release_at, ExamSession.id)
    )
    return each_item(session, "release_results", due, act)


def send_reminders(session: Session, now: dt.datetime) -> int:
    """Remind every candidate with a live booking of a session starting within
    ``REMINDER_HOURS_BEFORE`` hours, once per session."""
    ahead = now + dt.timedelta(hours=current_app.config["REMINDER_HOURS_BEFORE"])

    def act(session_id: int) -> bool:
        exam_session = locked_session(session, session_id)
        if (
            exam_session is None
            or exam_session.status != SessionStatus.PUBLISHED
            or exam_session.reminder_sent_at is not None
            or exam_session.starts_at <= now
        ):
            return False
        for booking in services.live_bookings(session, session_id):
            queue_notification(
                session,
                booking.user,
                "session_reminder",
                now,
                exam=exam_session.template.code,
                starts=services.local_time(exam_session),
                centre=f"{exam_session.centre.name}, {exam_session.centre.address}",
                admission_number=booking.admission_number,
            )
        exam_session.reminder_sent_at = now
        session.flush()
        return True

    due = session.scalars(
        select(ExamSession.id)
        .where(
            ExamSession.status == SessionStatus.PUBLISHED,
            ExamSession.reminder_sent_at.is_(None),
            ExamSession.starts_at > now,
            ExamSession.starts_at <= ahead,
        )
        .order_by(ExamSession.starts_at, ExamSession.id)
    )
    return each_item(session, "send_reminders", due, act)


def expire_holds(session: Session, now: dt.datetime) -> int:
    """Release the seats of holds not confirmed in time."""
    expired = services.expire_holds(session, now)
    session.commit()
    return expired


def send_mail(session: Session, now: dt.datetime) -> int:
    """Send due e-mail; a failing message is retried with backoff, the others go."""
    sent = send_pending(session, now, configured_sender())
    session.commit()
    return sent


def issue_certificates(session: Session, now: dt.datetime) -> int:
    """Certificates for released results, one attempt per transaction."""
    return each_item(
        session,
        "issue_certificates",
        certification.eligible_attempts(session),
        lambda attempt_id: certification.issue_certificate(
            session, session.get(Attempt, attempt_id), now
        ),
    )


def reissue_certificates(session: Session, now: dt.datetime) -> int:
    """New certificates for re-scored results; the old ones marked superseded."""
    return certification.reissue_pending(session, now)


def prune_rate_counters(session: Session, now: dt.datetime) -> int:
    """Forget rate-limit counters of windows long past."""
    return prune(session, now)


def apply_retention(session: Session, now: dt.datetime) -> int:
    """Erase practice answers, photos and verification-log rows past their retention
    periods (``RETENTION_*_DAYS``), one item per transaction."""
    return retention.apply_retention(session, now, each_item)


SWEEPS: dict[str, Sweep] = {
    "open_sessions": open_sessions,
    "finish_attempts": finish_attempts,
    "close_sessions": close_sessions,
    "release_results": release_results,
    "issue_certificates": issue_certificates,
    "reissue_certificates": reissue_certificates,
    "send_reminders": send_reminders,
    "expire_holds": expire_holds,
    "prune_rate_counters": prune_rate_counters,
    "apply_retention": apply_retention,
    "send_mail": send_mail,
}


# ---- cycle and heartbeat -----------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did in a cycle."""

    name: str
    ran_at: dt.datetime
    count: int
    errors: int


def run_sweep(session: Session, name: str, sweep: Sweep, now: dt.datetime) -> SweepReport:
    """Run one sweep; a sweep that fails as a whole is rolled back and logged."""
    session.info[ERRORS_KEY] = 0
    try:
        count = sweep(session, now)
        session.commit()
    except Exception as error:  # one broken job must not stop the others
        session.rollback()
        log_failure(name, "-", error)
        session.info[ERRORS_KEY] += 1
        count = 0
    return SweepReport(name, now, count, session.info.pop(ERRORS_KEY))


def run_cycle(
    session: Session,
    clock: Callable[[], dt.datetime],
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS,
    sweeps: dict[str, Sweep] | None = None,
) -> list[SweepReport]:
    """Run every sweep once, in order, each at the clock's time; then beat."""
    reports = [
        run_sweep(session, name, sweep, clock()) for name, sweep in (sweeps or SWEEPS).items()
    ]
    try:
        beat(session, clock(), reports, interval_seconds)
        session.commit()
    except Exception as error:  # the database may be away: the next cycle tries again
        session.rollback()
        log_failure("heartbeat", HEARTBEAT_NAME, error)
    return reports


def beat(
    session: Session, now: dt.datetime, reports: list[SweepReport], interval_seconds: int
) -> SchedulerHeartbeat:
    """Write the heartbeat: host, pid, time, and per job its last run, count and errors
    (with ``every_seconds``, the interval the staleness check compares against)."""
    heartbeat = session.get(SchedulerHeartbeat, HEARTBEAT_NAME)
    if heartbeat is None:
        heartbeat = SchedulerHeartbeat(name=HEARTBEAT_NAME)
        session.add(heartbeat)
    heartbeat.host = socket.gethostname()[:255]
    heartbeat.pid = os.getpid()
    heartbeat.beat_at = now
    heartbeat.details = {
        report.name: {
            "last_run": report.ran_at.isoformat(),
            "count": report.count,
            "errors": report.errors,
            "every_seconds": interval_seconds,
        }
        for report in reports
    }
    session.flush()
    return heartbeat


class HeartbeatStatus(NamedTuple):
    heartbeat: SchedulerHeartbeat | None
    is_stale: bool


def heartbeat_status(
    session: Session, now: dt.datetime, interval_seconds: int | None = None
) -> HeartbeatStatus:
    """Return the scheduler's heartbeat and whether it is stale: missing, or older than
    three intervals (by default the interval the scheduler recorded with it)."""
    heartbeat = session.get(SchedulerHeartbeat, HEARTBEAT_NAME)
    if heartbeat is None:
        return HeartbeatStatus(None, True)
    if interval_seconds is None:
        recorded = [
            job.get("every_seconds")
            for job in (heartbeat.details or {}).values()
            if isinstance(job, dict)
        ]
        interval_seconds = max(
            (s for s in recorded if isinstance(s, int)), default=DEFAULT_INTERVAL_SECONDS
        )
    limit = dt.timedelta(seconds=STALE_AFTER_INTERVALS * interval_seconds)
    return HeartbeatStatus(heartbeat, now - heartbeat.beat_at > limit)


# ---- one scheduler at a time -------------------------------------------------------------


class SchedulerLock:
    """Let one scheduler act at a time, however many were started.

    On PostgreSQL: ``pg_try_advisory_lock(ADVISORY_LOCK_KEY)`` on a connection of its own,
    in autocommit (no transaction is held open), kept for the life of the process. The
    lock belongs to that database session, so it works across machines, and the server
    drops it when the connection ends: a killed scheduler never leaves it behind.
    Elsewhere (SQLite, one machine): an exclusive ``fcntl.flock`` on
    ``instance/scheduler.lock``, which the kernel drops when the process ends.

    ``acquire`` never waits: it returns False while another holder has the lock.
    ``is_held`` tells whether the lock is still ours (the PostgreSQL connection may be
    lost); a scheduler that loses it stops acting. Two objects conflict even in one
    process.
    """

    def __init__(self, engine: sa.Engine, lock_path: Path) -> None:
        self.engine = engine
        self.lock_path = lock_path
        self.uses_database = engine.dialect.name == "postgresql"
        self._connection: sa.Connection | None = None
        self._file: Any = None

    @classmethod
    def for_app(cls, app: Flask) -> SchedulerLock:
        from testing_center.extensions import db

        with app.app_context():
            engine = db.engine
        return cls(engine, Path(app.instance_path) / LOCK_FILENAME)

    def acquire(self) -> bool:
        """Take the lock if it is free; return whether this object holds it now."""
        if self._connection is not None or self._file is not None:
            return True
        if self.uses_database:
            return self._acquire_advisory()
        return self._acquire_file()

    def _acquire_advisory(self) -> bool:
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = connection.scalar(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
            )
        except Exception:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def _acquire_file(self) -> bool:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        file = self.lock_path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: another process (or object) holds it
            file.close()
            return False
        file.seek(0)
        file.truncate()
        file.write(f"{socket.gethostname()} {os.getpid()}\n")
        file.flush()
        self._file = file
        return True

    def is_held(self) -> bool:
        """Whether the lock is still ours (checks the PostgreSQL connection is alive)."""
        if self._file is not None:
            return True
        if self._connection is None:
            return False
        try:
            return bool(
                self._connection.scalar(
                    sa.text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
                        "AND granted AND pid = pg_backend_pid() "
                        "AND ((classid::bigint << 32) | objid::bigint) = :key)"
                    ),
                    {"key": ADVISORY_LOCK_KEY},
                )
            )
        except sa.exc.SQLAlchemyError:
            return False

    def release(self) -> None:
        """Give the lock back (closing the connection or file releases it too)."""
        if self._connection is not None:
            try:
                self._connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
            except sa.exc.SQLAlchemyError:
                pass  # the connection is gone, and the lock with it
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> SchedulerLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


# ---- running ------------------------------------------------------------------------------


def run_once(
    app: Flask, interval_seconds: int = DEFAULT_INTERVAL_SECONDS
) -> list[SweepReport] | None:
    """Run one cycle under the lock; None when another scheduler holds it."""
    from testing_center.clock import now
    from testing_center.extensions import db

    with SchedulerLock.for_app(app) as lock:
        if not lock.acquire():
            return None
        with app.app_context():
            return run_cycle(db.session, now, interval_seconds)


def build_scheduler(
    app: Flask, interval_seconds: int, lock: SchedulerLock, lost_lock: threading.Event
) -> Any:
    """An APScheduler ``BlockingScheduler`` with one job: a cycle every interval, the
    first at once; a cycle never overlaps the previous one, and missed ones collapse
    into one. If the lock is lost, the job sets ``lost_lock`` and stops the scheduler."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.blocking import BlockingScheduler

    from testing_center.clock import now
    from testing_center.extensions import db

    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        timezone=dt.UTC,
    )

    def cycle() -> None:
        if not lock.is_held():
            logger.error("scheduler: lost the scheduler lock; stopping")
            lost_lock.set()
            scheduler.shutdown(wait=False)
            return
        with app.app_context():
            reports = run_cycle(db.session, now, interval_seconds)
        logger.info(
            "scheduler: cycle done: %s",
            ", ".join(
                f"{r.name} {r.count}" + (f" ({r.errors} failed)" if r.errors else "")
                for r in reports
            ),
        )

    scheduler.add_job(
        cycle,
        "interval",
        seconds=interval_seconds,
        id="cycle",
        next_run_time=dt.datetime.now(dt.UTC),
    )
    return scheduler


def run_forever(app: Flask, interval_seconds: int = DEFAULT_INTERVAL_SECONDS) -> bool:
    """Run cycles until stopped (SIGTERM, Ctrl-C). While another scheduler is active,
    wait as a standby and retry every interval, taking over when it goes away.

    Returns False if the lock was lost (the caller exits non-zero, to be restarted).
    """
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # not a line per run
    lock = SchedulerLock.for_app(app)
    waiting = False
    while not lock.acquire():
        if not waiting:
            logger.warning("scheduler: another scheduler is active; waiting to take over")
            waiting = True
        time.sleep(interval_seconds)
    logger.info(
        "scheduler: active (pid %s, every %s s, lock: %s)",
        os.getpid(),
        interval_seconds,
        "PostgreSQL advisory lock" if lock.uses_database else lock.lock_path,
    )
    try:
        lost_lock = threading.Event()
        scheduler = build_scheduler(app, interval_seconds, lock, lost_lock)
        signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown())
        try:
            scheduler.start()
        except KeyboardInterrupt:
            scheduler.shutdown()
        return not lost_lock.is_set()
    finally:
        lock.release()
