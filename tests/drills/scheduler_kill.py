"""Drill: the scheduler process dies (SIGKILL) in the middle of its sweeps, more than
once, and is started again; a standby scheduler takes over from a killed one.

The world: a sitting that ended hours ago with every attempt still in progress past its
deadline, results due for release, and a later session whose candidates are due a
reminder. Kills land while attempts are being finished and while certificates are
being issued.

Checks: every due thing happened exactly once: each attempt finished once at its
deadline with the score of its saved answers, the session closed and released once,
one certificate per attempt, one results notice per candidate, one reminder per booking,
every notice sent; the heartbeat lists every sweep with no errors.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import Counter

import sqlalchemy as sa
from drillkit import (
    Process,
    Report,
    app_for,
    build_world,
    cli_command,
    migrate,
    process_env,
    scratch_folder,
    sit_exams,
    tail,
    temporary_database,
    utcnow,
)
from sqlalchemy.orm import Session

from testing_center.attempts.models import Attempt, AttemptStatus
from testing_center.attempts.services import rescore_attempts
from testing_center.certification.models import Certificate
from testing_center.config import database_uri
from testing_center.extensions import db
from testing_center.operations.models import (
    AuditEntry,
    ExamSession,
    Notification,
    SchedulerHeartbeat,
)
from testing_center.operations.scheduler import SWEEPS

CANDIDATES = 80
LATER_CANDIDATES = 10
WAIT_SECONDS = 60


def count(engine: sa.Engine, statement) -> int:
    with Session(engine) as session:
        return session.scalar(statement) or 0


def finished(engine: sa.Engine) -> int:
    return count(
        engine,
        sa.select(sa.func.count()).where(Attempt.status == AttemptStatus.FINISHED),
    )


def certificates(engine: sa.Engine) -> int:
    return count(engine, sa.select(sa.func.count()).select_from(Certificate))


def unsent(engine: sa.Engine) -> int:
    return count(engine, sa.select(sa.func.count()).where(Notification.sent_at.is_(None)))


def wait_for(test, what: str, seconds: float = WAIT_SECONDS, every: float = 0.01) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if test():
            return True
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def scheduler(env, folder, name: str) -> Process:
    return Process(name, cli_command("scheduler", "--interval", "1"), env, folder / f"{name}.log")


def active_one(processes: list[Process]) -> Process:
    """The scheduler that logged taking the lock (the other waits as a standby)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for process in processes:
            if re.search(r"scheduler: active", tail(process.log, 200)):
                return process
        time.sleep(0.05)
    raise RuntimeError("no scheduler took the lock")


def main() -> None:
    report = Report("scheduler killed mid-sweep (kill -9), restarted; a standby takes over")
    now = utcnow()
    starts_at = now - dt.timedelta(hours=3)
    with scratch_folder("sched") as folder, temporary_database("sched") as url:
        app = app_for(url, folder)
        migrate(app)
        world = build_world(
            app,
            candidates=CANDIDATES,
            starts_at=starts_at,
            results_release_at=starts_at + dt.timedelta(hours=2),
            later_session_at=now + dt.timedelta(hours=24),
            later_candidates=LATER_CANDIDATES,
        )
        sit_exams(app, world, starts_at + dt.timedelta(minutes=2))
        engine = sa.create_engine(database_uri(url))
        env = process_env(url, folder)
        processes: list[Process] = []
        try:
            first = scheduler(env, folder, "scheduler-1")
            processes.append(first)
            first.start()
            wait_for(lambda: finished(engine) >= 10, "ten finished attempts")
            first.kill9()
            done = finished(engine)
            report.check(
                0 < done < CANDIDATES,
                f"killed while finishing attempts ({done} of {CANDIDATES} finished)",
            )
            # restarted, with a second scheduler started beside it: one acts, one waits
            pair = [scheduler(env, folder, "scheduler-2a"), scheduler(env, folder, "scheduler-2b")]
            processes += pair
            for process in pair:
                process.start()
            wait_for(lambda: certificates(engine) >= 10, "ten certificates")
            active = active_one(pair)
            active.kill9()
            issued = certificates(engine)
            report.check(
                0 < issued < CANDIDATES,
                f"{active.name} killed while issuing certificates ({issued} of {CANDIDATES})",
            )
            standby = pair[1] if active is pair[0] else pair[0]
            wait_for(
                lambda: certificates(engine) == CANDIDATES and unsent(engine) == 0,
                "every certificate and notice",
            )
            report.check(
                "scheduler: active" in tail(standby.log, 200),
                f"{standby.name}, waiting as a standby, took over from the killed one",
            )
            time.sleep(2.5)  # two more cycles: nothing left must be done again
            failures = [
                line
                for process in processes
                for line in tail(process.log, 10_000).splitlines()
                if "ERROR" in line
            ]
            report.check(not failures, f"no sweep failed on any item in any cycle {failures[:3]}")
        except Exception:
            for process in processes:
                report.note(f"{process.name}:\n{tail(process.log)}")
            raise
        finally:
            for process in processes:
                process.stop()
        verify(report, app, engine, world, folder)
        engine.dispose()
    report.done()


def verify(report: Report, app, engine: sa.Engine, world, folder) -> None:
    with Session(engine) as session:
        attempts = session.scalars(sa.select(Attempt)).all()
        report.check(
            len(attempts) == CANDIDATES
            and all(a.status == AttemptStatus.FINISHED for a in attempts),
            f"all {CANDIDATES} attempts finished",
        )
        report.check(
            all(a.finish_reason == "deadline" and a.finished_at == a.deadline_at for a in attempts),
            "each finished at its deadline, by the deadline sweep",
        )
        report.check(
            all(a.result and a.result.get("total") is not None for a in attempts),
            "each has its score",
        )
    with app.app_context():
        checked, changes = rescore_attempts(db.session, reason="drill", now=utcnow(), apply=False)
        db.session.rollback()
        db.engine.dispose()
    report.check(
        checked == CANDIDATES and not changes,
        "each score is that of exactly the saved answers (a fresh re-scoring changes none)",
    )
    with Session(engine) as session:
        actions = Counter(
            (entry.action, entry.entity_id)
            for entry in session.scalars(
                sa.select(AuditEntry).where(AuditEntry.entity == "session")
            )
        )
        sitting = str(world.session_id)
        report.check(
            actions[("session.closed", sitting)] == 1
            and actions[("session.release_results", sitting)] == 1,
            "the sitting was closed once and its results released once (audit log)",
        )
        exam_session = session.get(ExamSession, world.session_id)
        later = session.get(ExamSession, world.later_session_id)
        report.check(
            exam_session.status == "closed" and exam_session.results_released_at is not None,
            "the sitting is closed and released",
        )
        certificates_by_attempt = Counter(session.scalars(sa.select(Certificate.attempt_id)).all())
        report.check(
            len(certificates_by_attempt) == CANDIDATES
            and set(certificates_by_attempt.values()) == {1},
            "exactly one certificate per attempt",
        )
        notices = session.scalars(sa.select(Notification)).all()
        results = Counter(n.user_id for n in notices if n.kind == "results_released")
        reminders = Counter(n.user_id for n in notices if n.kind == "session_reminder")
        report.check(
            len(results) == CANDIDATES and set(results.values()) == {1},
            f"one results notice per candidate ({sum(results.values())} notices)",
        )
        report.check(
            len(reminders) == LATER_CANDIDATES
            and set(reminders.values()) == {1}
            and later.reminder_sent_at is not None,
            f"one reminder per booking of the later session ({sum(reminders.values())} notices)",
        )
        mail = {path.stem for path in (folder / "mail").glob("*.eml")}
        report.check(
            all(n.sent_at is not None for n in notices) and mail == {str(n.id) for n in notices},
            f"every notice sent ({len(notices)} notices, {len(mail)} messages)",
        )
        heartbeat = session.get(SchedulerHeartbeat, "main")
        jobs = heartbeat.details if heartbeat else {}
        report.check(
            set(jobs) == set(SWEEPS) and all(job["errors"] == 0 for job in jobs.values()),
            f"the heartbeat lists every sweep, none with errors ({len(jobs)} sweeps)",
        )
        report.check(
            heartbeat is not None and utcnow() - heartbeat.beat_at < dt.timedelta(seconds=10),
            "the heartbeat is fresh",
        )


if __name__ == "__main__":
    main()
