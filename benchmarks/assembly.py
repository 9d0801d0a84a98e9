"""Form assembly: time to assemble a JLPT-style form from a 20,000-item bank (issue 8).

Run from the repository root, after ``pip install -e ".[postgres,bench]"``::

    python -m benchmarks.assembly --items 20000 --template jlpt-n3 --repeats 31

The bank is generated to fit the shipped JLPT N5-N1-style templates: every part of
every ``jlpt-*`` full template (``exam_templates/blueprints``) gets items matching its
selection filters (exam family, level, section, topic), in proportion to the items the
part draws, ``--items`` in all; single-choice items with four options and a recorded
facility, imported as approved through ``item_bank.services.import_bundles`` in batches
of ``--batch``. The database is a fresh PostgreSQL one (``--server``), migrated with
``testing-center db upgrade``, or ``--sqlite`` for a file.

Measured (``--repeats`` times each, medians and 90th percentiles, wall and CPU):

- ``build_form``: what starting an attempt runs (without the exposure counts, which
  depend on the attempts so far): the bank's revision token, the template's pools and
  enemy pairs from the per-process cache (``exam_templates.services.FORM_POOLS``,
  filled by the warm-up call, valid while the token is unchanged), and the draw;
- ``build_form_uncached``: the same with the cache emptied before each call: the
  pools' queries (the newest approved version of each matching item), the enemy pairs
  and the draw, what the first start after a change of the bank runs;
- ``assemble_form``: the draw alone, on pools already read (pure code);
- ``pools_for``: the pools' queries alone;
- with ``--shown N`` (PostgreSQL only): N finished attempts of the template are then
  written straight into the database, each showing ``form_items`` of the pool's item
  versions (a sliding window, so every item is shown about equally often), and timed:
  ``exposure_counts`` (counting the pool's showings afresh, what a start ran before
  the counts were kept), ``exposure_kept`` (``testing_center.attempts.exposure``'s
  kept counts after their first full count: what a start runs, here with no attempt
  items written since) and ``build_form_with_exposure`` (``build_form`` with them).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks import stack

DEFAULT_OUT = Path(__file__).parent / "results" / "assembly.json"


def simulated(seed: Any) -> random.Random:
    """A seeded generator for the generated bank (not secrets)."""
    return random.Random(seed)  # noqa: S311


def jlpt_parts() -> list[tuple[dict[str, str], int]]:
    """(filters, count) of every part of the full JLPT-style templates."""
    from exam_templates.blueprint import parse_blueprint
    from exam_templates.services import BLUEPRINTS_DIR, read_template_documents

    parts = []
    paths = [p for p in sorted(BLUEPRINTS_DIR.glob("jlpt_n?.yaml"))]
    for document in read_template_documents(paths):
        blueprint = parse_blueprint(document)
        for section in blueprint.sections:
            parts.extend((dict(part.filters), part.count) for part in section.parts)
    return parts


def generated_items(total: int, seed: int) -> list[dict[str, Any]]:
    """``total`` single-choice items spread over the JLPT parts by their counts."""
    rng = simulated(seed)
    parts = jlpt_parts()
    drawn = sum(count for _, count in parts)
    items = []
    for index, (filters, count) in enumerate(parts):
        share = total * count // drawn if index < len(parts) - 1 else total - len(items)
        for n in range(share):
            fields = {"topic": "general", **filters}
            items.append(
                {
                    "ref": f"gen-{fields['level']}-{fields['section']}-{index}-{n}",
                    "type": "single_choice",
                    **fields,
                    "language": "ja",
                    "source": "original",
                    "licence": "CC0-1.0",
                    "stem": f"<p>問題 {index}-{n}：ただしい ものを えらんで ください。</p>",
                    "options": [{"id": k, "html": f"せんたくし {k}"} for k in "ABCD"],
                    "key": rng.choice("ABCD"),
                    "difficulty": {"p": round(rng.uniform(0.25, 0.9), 2)},
                }
            )
    return items


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="assembly-") as folder:
            yield f"sqlite:///{folder}/bank.sqlite3"
    else:
        with stack.fresh_database(args.server, keep=args.keep_database) as url:
            if args.keep_database:
                print(f"database kept: {url}", flush=True)
            yield url


def timed(function, repeats: int) -> dict[str, Any]:
    walls, cpus = [], []
    function()  # warm: statement caches, imports
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {
        "repeats": repeats,
        "median_ms": round(stack.median(walls) * 1000, 2),
        "p90_ms": round(stack.percentile(walls, 90) * 1000, 2),
        "min_ms": round(min(walls) * 1000, 2),
        "median_cpu_ms": round(stack.median(cpus) * 1000, 2),
    }


def write_shown_attempts(
    session: Any, template_id: int, versions: list[int], per_form: int, args: argparse.Namespace
) -> None:
    """Write ``args.shown`` finished attempts showing ``per_form`` of ``versions`` each,
    with plain SQL (generating them through starts would take hours)."""
    from sqlalchemy import text

    from testing_center.accounts.models import Role
    from testing_center.accounts.services import create_user

    now = dt.datetime.now(dt.UTC)
    user = create_user(
        session, email="shown@bench.test", password="x" * 20, role=Role.CANDIDATE, now=now
    )
    session.execute(
        text(
            "INSERT INTO attempts (id, user_id, template_id, mode, status, seed, started_at,"
            " deadline_at, paused_seconds, extra_seconds)"
            " SELECT md5(a::text), :user_id, :template_id, 'practice', 'finished', a, :now, :now,"
            " 0, 0 FROM generate_series(1, :shown) a"
        ),
        {"user_id": user.id, "template_id": template_id, "now": now, "shown": args.shown},
    )
    session.execute(
        text(
            "INSERT INTO attempt_items (attempt_id, ref, position, section_code, score_as,"
            " max_points, item_version_id, option_order)"
            " SELECT md5(a::text), 'q' || k, k, 's', 's', 1,"
            " (CAST(:versions AS integer[]))[1 + (a * :per_form + k) % :count], '[]'"
            " FROM generate_series(1, :shown) a, generate_series(1, :per_form) k"
        ),
        {"versions": versions, "per_form": per_form, "count": len(versions), "shown": args.shown},
    )
    session.commit()
    session.execute(text("ANALYZE attempts"))
    session.execute(text("ANALYZE attempt_items"))
    session.commit()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--template", default="jlpt-n3")
    parser.add_argument("--repeats", type=int, default=31)
    parser.add_argument("--batch", type=int, default=1000, help="items per import")
    parser.add_argument("--server", default=stack.DEFAULT_SERVER_URL)
    parser.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    parser.add_argument("--keep-database", action="store_true", help="do not drop it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--shown", type=int, default=0, help="attempts shown (exposure counts)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from sqlalchemy import func, select

    from exam_templates.assembly import assemble_form
    from exam_templates.blueprint import parse_blueprint
    from exam_templates.services import (
        BLUEPRINTS_DIR,
        FORM_POOLS,
        build_form,
        current_templates,
        load_templates,
        pools_for,
        read_template_documents,
    )
    from item_bank.bundle import Bundle
    from item_bank.models import Item
    from item_bank.services import enemy_pairs, import_bundles
    from testing_center import create_app
    from testing_center.attempts.exposure import EXPOSURE, exposure_counts
    from testing_center.extensions import db

    report: dict[str, Any] = stack.record_header("assembly", args)
    with tempfile.TemporaryDirectory(prefix="assembly-") as folder, database(args) as url:
        env = stack.app_environment(url, Path(folder))
        stack.cli(["db", "upgrade"], env)
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "assembly-" + "x" * 40})
        now = dt.datetime.now(dt.UTC)
        with app.app_context():
            session = db.session
            load_templates(
                session, read_template_documents(sorted(BLUEPRINTS_DIR.glob("*.yaml"))), now=now
            )
            items = generated_items(args.items, args.seed)
            began = time.perf_counter()
            for first in range(0, len(items), args.batch):
                import_bundles(
                    session,
                    [Bundle(items=items[first : first + args.batch], origin="generated")],
                    status="approved",
                    now=now,
                )
                session.commit()
            report["import_seconds"] = round(time.perf_counter() - began, 1)
            report["bank_items"] = session.scalar(select(func.count()).select_from(Item))
            print(f"bank: {report['bank_items']} items in {report['import_seconds']} s")
            template = next(t for t in current_templates(session) if t.code == args.template)
            blueprint = parse_blueprint(template.definition)
            pools = pools_for(session, blueprint)
            ids = {entry.item_id for pool in pools.values() for entry in pool}
            enemies = enemy_pairs(session, ids)
            report["form_items"] = sum(p.count for s in blueprint.sections for p in s.parts)
            report["pool_items"] = len(ids)
            seeds = iter(range(10**6))
            report["build_form"] = timed(
                lambda: build_form(session, template, seed=next(seeds)), args.repeats
            )

            def uncached() -> None:
                FORM_POOLS.entries.clear()
                build_form(session, template, seed=next(seeds))

            report["build_form_uncached"] = timed(uncached, args.repeats)
            report["assemble_form"] = timed(
                lambda: assemble_form(blueprint, pools, next(seeds), enemies=enemies),
                args.repeats,
            )
            report["pools_for"] = timed(lambda: pools_for(session, blueprint), args.repeats)
            session.rollback()
            if args.shown:
                versions = sorted(e.version_id for pool in pools.values() for e in pool)
                began = time.perf_counter()
                write_shown_attempts(session, template.id, versions, report["form_items"], args)
                report["shown_attempts"] = args.shown
                report["shown_seconds"] = round(time.perf_counter() - began, 1)
                report["exposure_counts"] = timed(
                    lambda: exposure_counts(session, ids), args.repeats
                )
                report["exposure_kept"] = timed(lambda: EXPOSURE.counts(session, ids), args.repeats)
                report["build_form_with_exposure"] = timed(
                    lambda: build_form(
                        session,
                        template,
                        seed=next(seeds),
                        exposure=lambda pool_ids: EXPOSURE.counts(session, pool_ids),
                    ),
                    args.repeats,
                )
                session.rollback()
            db.engine.dispose()
    stack.write_record(args.out, report)
    print(
        f"{args.template}: {report['form_items']} items drawn from pools of "
        f"{report['pool_items']} (bank {report['bank_items']})"
    )
    for name in (
        "build_form",
        "build_form_uncached",
        "assemble_form",
        "pools_for",
        "exposure_counts",
        "exposure_kept",
        "build_form_with_exposure",
    ):
        if name in report:
            print(f"  {name:24} {report[name]}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
