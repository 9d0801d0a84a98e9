"""Drill: PostgreSQL restarts in the middle of a proctored exam while candidates save.

Checks: saves during the outage fail visibly (a 5xx JSON error, never an acknowledgement
of something not stored, never an HTML page); ``/healthz`` reports the database down,
then up; the app recovers by itself (pool pre-ping: no restart of the app server); the
candidates' retries land and every acknowledged answer is stored exactly.

Restarts the local cluster (``pg_ctlcluster``) for about a second: other test runs on
the same server see that outage too.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import threading
import time
from pathlib import Path

from drillkit import (
    AppServer,
    Candidate,
    Report,
    Unreachable,
    app_for,
    build_world,
    call,
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


def restart_postgres() -> None:
    version = os.environ.get("DRILL_PG_VERSION") or sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],  # noqa: S607
        check=True,
        capture_output=True,
        timeout=60,
    )


def watch_health(server: AppServer, stop: threading.Event, seen: list[tuple[float, int]]) -> None:
    while not stop.is_set():
        try:
            status, _, _ = call(server.base_url, "GET", "/healthz", timeout=3)
        except Unreachable:
            status = 0
        seen.append((time.monotonic(), status))
        time.sleep(0.05)


def main() -> None:
    report = Report("PostgreSQL restarted mid-exam")
    if not Path("/etc/postgresql").is_dir() and not os.environ.get("DRILL_PG_VERSION"):
        report.note("no local PostgreSQL cluster to restart; skipped")
        return
    with scratch_folder("pg") as folder, temporary_database("pg") as url:
        app = app_for(url, folder)
        migrate(app)
        world = build_world(
            app, candidates=CANDIDATES, starts_at=utcnow() - dt.timedelta(minutes=5)
        )
        server = AppServer(process_env(url, folder), folder / "gunicorn.log")
        server.start()
        stop, stop_health = threading.Event(), threading.Event()
        health: list[tuple[float, int]] = []
        candidates = [Candidate(seat, server, stop) for seat in world.seats]
        watcher = threading.Thread(target=watch_health, args=(server, stop_health, health))
        try:
            for candidate in candidates:
                candidate.begin()
                candidate.start()
            watcher.start()
            pid_before = server.popen.pid
            time.sleep(LOAD_SECONDS)
            before = sum(c.acks for c in candidates)
            began = time.monotonic()
            restart_postgres()
            ended = time.monotonic()
            report.note(
                f"PostgreSQL restarted in {ended - began:.1f} s; {before} saves acknowledged before"
            )
            time.sleep(LOAD_SECONDS)
            stop.set()
            for candidate in candidates:
                candidate.join(timeout=90)
            stop_health.set()
            watcher.join()
            report.check(
                server.running and server.popen.pid == pid_before,
                "the app server was not restarted (no manual action)",
            )
            errors = [e for c in candidates for e in c.server_errors]
            report.check(
                len(errors) > 0,
                f"saves during the outage failed visibly: {len(errors)} answers "
                f"with status {sorted({e[0] for e in errors})}",
            )
            report.check(
                all(
                    kind == "application/json" and isinstance(body, dict) and "error" in body
                    for _, body, kind in errors
                ),
                "each failure is a JSON error body, not a page or a stack trace",
            )
            codes = sorted({body["error"]["code"] for _, body, _ in errors if body})
            report.note(f"error codes seen: {codes}")
            report.check(
                all(status == 503 for status, _, _ in errors),
                "each failure says 503 (the database is unavailable; try again)",
            )
            down = [status for at, status in health if began <= at <= ended + 0.5]
            after = [status for at, status in health if at > ended + 1.0]
            report.check(503 in down, f"/healthz said 503 during the outage ({sorted(set(down))})")
            report.check(
                bool(after) and all(s == 200 for s in after),
                "/healthz said 200 again after it, without any restart",
            )
            resumed = [sum(1 for at in c.acks_at if at > ended) for c in candidates]
            report.check(
                all(n > 0 for n in resumed),
                f"every candidate saved again after the outage ({resumed} saves each)",
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
            stop_health.set()
            server.stop()
    report.done()


if __name__ == "__main__":
    main()
