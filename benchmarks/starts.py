"""The cost of starting a proctored attempt, in process (issue 8).

Run from the repository root, after ``pip install -e ".[postgres,bench]"``::

    python -m benchmarks.starts --starts 20

On a fresh PostgreSQL database (``--server``, migrated with ``testing-center db
upgrade``), ``benchmarks.world.build_exam_day`` seeds the shipped bank and checks in
3 x (``--starts`` + 1) candidates of the JFT-Basic-style exam in an open session; check-in
prepares each candidate's form. For a third of them the prepared form is deleted, so
their start assembles and writes the form, as every start did before forms were
prepared. Through Flask's test client (no HTTP server, so the figures are the
application's own work):

- ``statements``: SQL statements of a start of a prepared form (``POST
  /api/v1/attempts {booking_id}``), of a start that assembles its form (``assembled``)
  and of the state read after a start, counted with a ``before_cursor_execute``
  listener (COMMIT is not counted);
- ``start``: wall and CPU time (``time.process_time``) of each of ``--starts`` starts of
  prepared forms by different candidates, medians; ``start_assembled`` the same for
  starts that assemble, taken alternately with them, and ``cpu_ratio`` the prepared
  starts' median CPU over the assembling ones';
- ``state``: CPU time of reading the state of each attempt started (``GET``), median
  (``--profile-state FILE`` profiles them once more); ``clock`` the same for reading
  each one's clock (``GET .../clock``, the player's resync every minute);
- ``save``: CPU time of saving five answers in each of them, median (``--profile-save
  FILE`` profiles the same saves again, with newer sequence numbers);
- ``finish``: SQL statements and CPU time of finishing each of them (``POST
  .../finish``: closing and scoring), median;
- then ``--starts`` more starts under cProfile, kept apart from the timed ones so the
  profiler's overhead is not in the times (``--profile FILE`` writes the statistics;
  the top functions by cumulative time are printed); ``--profile-finish FILE`` saves
  five answers in each of these attempts too and profiles finishing them.

PostgreSQL's own CPU is not in these figures; the exam-day benchmark measures it.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import stack
from benchmarks.exam_day import answer_for, form_items, simulated

DEFAULT_OUT = Path(__file__).parent / "results" / "starts.json"
SAVES_EACH = 5  # answers saved per started attempt


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--server", default=stack.DEFAULT_SERVER_URL)
    parser.add_argument("--profile", type=Path, help="write the starts' cProfile statistics here")
    parser.add_argument(
        "--profile-state", type=Path, help="write the state reads' cProfile statistics here"
    )
    parser.add_argument(
        "--profile-save", type=Path, help="write the saves' cProfile statistics here"
    )
    parser.add_argument(
        "--profile-finish", type=Path, help="write the finishes' cProfile statistics here"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def profile_calls(path: Path | None, calls: Callable[[], object]) -> cProfile.Profile:
    """Run ``calls`` under cProfile; write the statistics to ``path`` if one is given."""
    profile = cProfile.Profile()
    profile.enable()
    calls()
    profile.disable()
    if path:
        profile.dump_stats(path)
    return profile


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from sqlalchemy import event

    from benchmarks.world import build_exam_day, migrated_app
    from testing_center.attempts.services import discard_prepared
    from testing_center.extensions import db

    report: dict[str, Any] = stack.record_header("starts", args)
    with migrated_app(args.server, "starts-") as (app, _url, _folder):
        now = dt.datetime.now(dt.UTC)
        candidates, _ = build_exam_day(
            app, 3 * args.starts + 3, login_sample=0, now=now, progress=lambda _: None
        )
        assembling = range(2 * args.starts + 2, 3 * args.starts + 3)
        tokens = [c.token for c in candidates]  # login_sample=0: each has one
        with app.app_context():
            discard_prepared(db.session, [candidates[n].booking_id for n in assembling])
            db.session.commit()
            engine = db.engine
        client = app.test_client()

        def start(number: int) -> dict[str, Any]:
            response = client.post(
                "/api/v1/attempts",
                json={"booking_id": candidates[number].booking_id},
                headers={"Authorization": f"Bearer {tokens[number]}"},
            )
            assert response.status_code == 201, response.json
            return response.json

        def read_state(number: int, attempt_id: str, suffix: str = "") -> None:
            response = client.get(
                f"/api/v1/attempts/{attempt_id}{suffix}",
                headers={"Authorization": f"Bearer {tokens[number]}"},
            )
            assert response.status_code == 200, response.json

        rng = simulated(1)

        def save(number: int, attempt_id: str, item: dict[str, Any], sequence: int) -> None:
            response = client.put(
                f"/api/v1/attempts/{attempt_id}/responses/{item['ref']}",
                json={"response": answer_for(item, rng), "client_seq": sequence},
                headers={"Authorization": f"Bearer {tokens[number]}"},
            )
            assert response.status_code == 200, response.json

        def finish(number: int, attempt: dict[str, Any]) -> None:
            response = client.post(
                f"/api/v1/attempts/{attempt['id']}/finish",
                headers={"Authorization": f"Bearer {tokens[number]}"},
            )
            assert response.status_code == 200, response.json

        counted = {"n": 0}
        seen: list[str] = []

        def count(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            counted["n"] += 1
            seen.append(" ".join(statement.split())[:120])

        event.listen(engine, "before_cursor_execute", count)
        start(0)
        report["statements"] = {"first_start": counted["n"]}
        counted["n"], seen[:] = 0, []
        state = start(1)
        report["statements"]["start"] = counted["n"]
        report["start_statements"] = list(seen)
        counted["n"] = 0
        read_state(1, state["id"])
        report["statements"]["state"] = counted["n"]
        counted["n"] = 0
        read_state(1, state["id"], "/clock")
        report["statements"]["clock"] = counted["n"]
        counted["n"], seen[:] = 0, []
        start(assembling[0])
        report["statements"]["assembled"] = counted["n"]
        report["assembled_statements"] = list(seen)
        event.remove(engine, "before_cursor_execute", count)
        report["form_items"] = state["item_count"]

        walls, cpus, assembled_walls, assembled_cpus = [], [], [], []
        collecting = stack.GarbageCollectorClock()
        started = []
        for number, other in zip(range(2, args.starts + 2), assembling[1:], strict=True):
            wall, cpu = time.perf_counter(), time.process_time()
            started.append((number, start(number)))
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            wall, cpu = time.perf_counter(), time.process_time()
            start(other)
            assembled_walls.append(time.perf_counter() - wall)
            assembled_cpus.append(time.process_time() - cpu)
        collecting.stop()
        state_cpus = []
        for number, attempt in started:
            cpu = time.process_time()
            read_state(number, attempt["id"])
            state_cpus.append(time.process_time() - cpu)
        report["state"] = {
            "reads": len(state_cpus),
            "median_cpu_ms": round(stack.median(state_cpus) * 1000, 1),
        }
        clock_cpus = []
        for number, attempt in started:
            cpu = time.process_time()
            read_state(number, attempt["id"], "/clock")
            clock_cpus.append(time.process_time() - cpu)
        report["clock"] = {
            "reads": len(clock_cpus),
            "median_cpu_ms": round(stack.median(clock_cpus) * 1000, 2),
        }
        if args.profile_state:
            profile_calls(args.profile_state, lambda: [read_state(n, a["id"]) for n, a in started])
        saves = [(n, a["id"], item) for n, a in started for item in form_items(a)[:SAVES_EACH]]
        save_cpus = []
        for sequence, (number, attempt_id, item) in enumerate(saves, start=1):
            cpu = time.process_time()
            save(number, attempt_id, item, sequence)
            save_cpus.append(time.process_time() - cpu)
        report["save"] = {
            "saves": len(save_cpus),
            "median_cpu_ms": round(stack.median(save_cpus) * 1000, 2),
        }
        if args.profile_save:
            profile_calls(
                args.profile_save,
                lambda: [save(*s, len(saves) + n) for n, s in enumerate(saves, start=1)],
            )
        counted["n"], seen[:] = 0, []
        event.listen(engine, "before_cursor_execute", count)
        finish(*started[0])
        event.remove(engine, "before_cursor_execute", count)
        report["statements"]["finish"] = counted["n"]
        report["finish_statements"] = list(seen)
        finish_cpus = []
        for number, attempt in started[1:]:
            cpu = time.process_time()
            finish(number, attempt)
            finish_cpus.append(time.process_time() - cpu)
        report["finish"] = {
            "finishes": len(finish_cpus),
            "median_cpu_ms": round(stack.median(finish_cpus) * 1000, 1),
        }
        profiled: list[tuple[int, dict[str, Any]]] = []
        profile = profile_calls(
            args.profile,
            lambda: profiled.extend(
                (n, start(n)) for n in range(args.starts + 2, 2 * args.starts + 2)
            ),
        )
        if args.profile_finish:
            for number, attempt in profiled:
                for sequence, item in enumerate(form_items(attempt)[:SAVES_EACH], start=1):
                    save(number, attempt["id"], item, sequence)
            profile_calls(args.profile_finish, lambda: [finish(*each) for each in profiled])
        report["start"] = {
            "starts": args.starts,
            "median_ms": round(stack.median(walls) * 1000, 1),
            "median_cpu_ms": round(stack.median(cpus) * 1000, 1),
            "mean_cpu_ms": round(sum(cpus) / len(cpus) * 1000, 1),
            "garbage_collection_ms": round(collecting.seconds / (2 * args.starts) * 1000, 1),
            "full_collections": collecting.full,
            "tracked_objects": collecting.tracked,
        }
        report["start_assembled"] = {
            "starts": args.starts,
            "median_ms": round(stack.median(assembled_walls) * 1000, 1),
            "median_cpu_ms": round(stack.median(assembled_cpus) * 1000, 1),
        }
        report["cpu_ratio"] = round(stack.median(cpus) / stack.median(assembled_cpus), 3)
        text = io.StringIO()
        stats = pstats.Stats(profile, stream=text)
        report["start"]["profiled_ms_per_start"] = round(stats.total_tt / args.starts * 1000, 1)
        stats.sort_stats("cumulative").print_stats(25)
        report["profile_top"] = text.getvalue().splitlines()[:60]
        with app.app_context():
            db.engine.dispose()
    stack.write_record(args.out, report)
    print("\n".join(report["profile_top"]))
    print(f"statements: {report['statements']} (form of {report['form_items']} items)")
    print(f"start: {report['start']}")
    print(f"start, form assembled at the start: {report['start_assembled']}")
    print(f"CPU ratio, prepared / assembled: {report['cpu_ratio']}")
    print(f"state: {report['state']}")
    print(f"clock: {report['clock']}")
    print(f"save: {report['save']}")
    print(f"finish: {report['finish']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
