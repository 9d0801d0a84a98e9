"""Drill: the app server is killed (SIGKILL, every gunicorn process) during a proctored
exam while candidates save answers, then started again.

Checks: every answer the server acknowledged is stored exactly (value and client_seq);
each deadline is unchanged and the remaining time is the server's deadline minus the
server's time; every candidate carries on saving after the restart.
"""

from __future__ import annotations

import datetime as dt
import threading
import time

from drillkit import (
    AppServer,
    Candidate,
    Report,
    app_for,
    build_world,
    check_answers_kept,
    check_clock,
    migrate,
    process_env,
    scratch_folder,
    tail,
    temporary_database,
    utcnow,
)

CANDIDATES = 4
LOAD_SECONDS = 1.5
DOWN_SECONDS = 1.0


def main() -> None:
    report = Report("app server killed mid-exam (kill -9 gunicorn), restarted")
    with scratch_folder("kill") as folder, temporary_database("kill") as url:
        app = app_for(url, folder)
        migrate(app)
        world = build_world(
            app, candidates=CANDIDATES, starts_at=utcnow() - dt.timedelta(minutes=5)
        )
        server = AppServer(process_env(url, folder), folder / "gunicorn.log")
        server.start()
        stop = threading.Event()
        candidates = [Candidate(seat, server, stop) for seat in world.seats]
        try:
            for candidate in candidates:
                candidate.begin()
                candidate.start()
            time.sleep(LOAD_SECONDS)
            before = sum(c.acks for c in candidates)
            report.note(f"{CANDIDATES} candidates saving; {before} saves acknowledged so far")
            server.kill9()
            killed_at = time.monotonic()
            report.note("gunicorn master and workers killed with SIGKILL")
            time.sleep(DOWN_SECONDS)
            during = sum(c.acks for c in candidates) - before
            report.check(
                during <= CANDIDATES, f"no saves acknowledged while down ({during} in flight)"
            )
            server.start()
            report.note(f"gunicorn restarted after {time.monotonic() - killed_at:.1f} s")
            time.sleep(LOAD_SECONDS)
            stop.set()
            for candidate in candidates:
                candidate.join(timeout=90)
            report.check(
                all(not c.is_alive() for c in candidates), "every candidate's page settled"
            )
            report.check(
                sum(c.retries for c in candidates) > 0,
                f"saves failed while the server was down and were retried "
                f"({sum(c.retries for c in candidates)} retries)",
            )
            resumed = [
                sum(1 for at in c.acks_at if at > killed_at + DOWN_SECONDS) for c in candidates
            ]
            report.check(
                all(n > 0 for n in resumed),
                f"every candidate saved again after the restart ({resumed} saves each)",
            )
            refused = [r for c in candidates for r in c.refusals]
            report.check(not refused, f"no save was refused ({refused[:3]})")
            check_answers_kept(report, candidates)
            check_clock(report, candidates)
        except Exception:
            report.note(tail(server.log))
            raise
        finally:
            stop.set()
            server.stop()
    report.done()


if __name__ == "__main__":
    main()
