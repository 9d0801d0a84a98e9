"""Certificate PDFs rendered per CPU second on one core, without a database or a server
(issue 8): the rendering half of ``benchmarks.certificates``, for comparing renderers.

Run from the repository root::

    git show 682d25c:certificates/document.py > /tmp/document_before.py
    python -m benchmarks.certificate_rendering --compare /tmp/document_before.py

``--certificates`` distinct JFT-style certificates (names, numbers, dates of birth,
scores, with and without a level; each with a 600 x 800 check-in photo, a signed token
and a link signature, made beforehand) are rendered by ``render_certificate``, pinned
to one CPU (``os.sched_setaffinity``), in ``--repeats`` rounds of ``--renders``, each
certificate at most once (nothing cached between renders of one certificate counts);
PDFs per CPU second (``time.process_time``) and per wall second, medians of the rounds,
as ``benchmarks.certificates`` measures them. ``--compare FILE`` loads another
``document.py`` (an earlier version) and measures both in turns, ``--pairs`` times, so
each pair runs under the same load.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import stack
from benchmarks.certificates import TARGET_PDFS_PER_CPU_SECOND, simulated
from benchmarks.world import portrait_jpeg
from certificates import claims, codes, document, links, signing
from certificates.facts import CertificateFacts, ScoreLine

DEFAULT_OUT = Path(__file__).parent / "results" / "certificate_rendering.json"
BASE_URL = "https://testing-center.example"
FIRST_NAMES = ("Dilnoza", "Aziz", "Gʻulom", "Oʻgʻiloy", "Sardor", "Madina", "Jasur", "Nodira")
FAMILY_NAMES = ("Karimova", "Rashidov", "Yusupova", "Tursunov", "Abdurakhmonova", "Ismoilov")
PASS_RULE = ("200 or more of 250 (A2)", "250点中200点以上（A2）")
SECTIONS = (
    ("script_vocabulary", "Script and Vocabulary", "文字と語彙"),
    ("conversation", "Conversation and Expression", "会話と表現"),
    ("listening", "Listening Comprehension", "聴解"),
    ("reading", "Reading Comprehension", "読解"),
)


def make_certificates(count: int, seed: int, now: dt.datetime) -> list[tuple[Any, str, str]]:
    """``count`` distinct certificates: facts, token and link signature of each."""
    rng = simulated(seed)
    key = signing.generate_key(now - dt.timedelta(days=30))
    photo = portrait_jpeg()
    prepared = []
    for index in range(count):
        scores = [round(rng.uniform(40, 100), 1) for _ in SECTIONS]
        total = round(sum(scores) * 250 / 400)
        facts = CertificateFacts(
            number=codes.new_certificate_number(),
            issuing_centre="Uzbekistan–Japan Testing Centre",
            exam_code="jft-basic",
            exam_title_en="JFT-Basic style test",
            exam_title_ja="JFT-Basic形式テスト",
            full_name=" ".join(
                (rng.choice(FAMILY_NAMES), rng.choice(FIRST_NAMES), rng.choice(FIRST_NAMES))
            ),
            date_of_birth=dt.date(1990 + index % 15, 1 + index % 12, 1 + index % 28),
            nationality="Uzbekistan (UZ)",
            exam_date=now.date() - dt.timedelta(days=7),
            test_centre="Tashkent Testing Centre",
            sections=tuple(
                ScoreLine(code, title_en, title_ja, score, 100)
                for (code, title_en, title_ja), score in zip(SECTIONS, scores, strict=True)
            ),
            total=total,
            scale_min=10,
            scale_max=250,
            passed=total >= 200,
            pass_rule_en=PASS_RULE[0],
            pass_rule_ja=PASS_RULE[1],
            issued_at=now,
            level="A2.2" if index % 2 else None,
            photo=photo,
        )
        prepared.append(
            (facts, claims.sign_certificate(facts, key), links.sign_link(facts.number, key))
        )
    return prepared


def load_renderer(path: Path | None) -> ModuleType:
    """``certificates.document``, or the ``document.py`` at ``path``."""
    if path is None:
        return document
    spec = importlib.util.spec_from_file_location("document_compared", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(renderer: ModuleType, prepared: list, renders: int, repeats: int) -> dict:
    """Rounds of ``renders`` distinct certificates on the current (pinned) CPU."""
    facts, token, signature = prepared[-1]  # registers the fonts; not measured
    renderer.render_certificate(facts, token, BASE_URL, signature)
    rounds, sizes = [], []
    for round_index in range(repeats):
        batch = prepared[round_index * renders : (round_index + 1) * renders]
        wall, cpu_time = time.perf_counter(), time.process_time()
        for facts, token, signature in batch:
            sizes.append(len(renderer.render_certificate(facts, token, BASE_URL, signature)))
        wall = time.perf_counter() - wall
        cpu_time = time.process_time() - cpu_time
        rounds.append(
            {
                "per_cpu_second": round(len(batch) / cpu_time, 1),
                "per_wall_second": round(len(batch) / wall, 1),
            }
        )
    return {
        "load_average": [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]],
        "rounds": rounds,
        "median_per_cpu_second": statistics.median(r["per_cpu_second"] for r in rounds),
        "median_per_wall_second": statistics.median(r["per_wall_second"] for r in rounds),
        "median_pdf_bytes": statistics.median(sizes),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--renders", type=int, default=100, help="renders per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="another document.py to measure in turns")
    parser.add_argument("--pairs", type=int, default=3, help="turns of each with --compare")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    prepared = make_certificates(args.renders * args.repeats + 1, args.seed, now)
    current = load_renderer(None)
    compared = load_renderer(args.compare) if args.compare else None
    cpu = sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {cpu})
    runs: list[dict[str, Any]] = []
    for _pair in range(args.pairs if compared else 1):
        for name, renderer in (("compared", compared), ("current", current)):
            if renderer is None:
                continue
            run = {"renderer": name, **measure(renderer, prepared, args.renders, args.repeats)}
            print(json.dumps(run), flush=True)
            runs.append(run)
    summary = {
        name: round(
            statistics.median(r["median_per_cpu_second"] for r in runs if r["renderer"] == name), 1
        )
        for name in ("compared", "current")
        if any(r["renderer"] == name for r in runs)
    }
    met = summary["current"] >= TARGET_PDFS_PER_CPU_SECOND
    report = {
        **stack.record_header("certificate_rendering", args, now),
        "pinned_cpu": cpu,
        "runs": runs,
        "median_per_cpu_second": summary,
        "target": f">= {TARGET_PDFS_PER_CPU_SECOND} PDFs per CPU second: "
        + ("met" if met else "missed"),
    }
    stack.write_record(args.out, report)
    print(f"PDFs per CPU second on one core, medians of the runs: {summary}")
    print(report["target"])
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
