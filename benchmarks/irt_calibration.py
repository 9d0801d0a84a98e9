"""Benchmark 2PL calibration and EAP scoring against the ``girth`` package (issue 5).

Run from the repository root, after ``pip install -e ".[bench]"``::

    python -m benchmarks.irt_calibration --items 100 --persons 20000 \\
        --score-persons 100000 --seed 1 --repeats 3 [--threads 1] [--out FILE.json]

Data: 2PL responses from known parameters, drawn with a seeded ``numpy.random.Generator``:
a ~ lognormal(0, 0.3), b ~ N(0, 1), theta ~ N(0, 1) and
P(right) = 1 / (1 + exp(-a (theta - b))), the logistic metric with D = 1.

Metric: both packages estimate in that metric, so estimates are compared with the
generating values as they come, with no 1.702 rescaling. Ours: the module docstring of
``scoring.irt``. girth 0.8.0: ``twopl_mml`` is ``grm_mml`` with two categories, whose
``_graded_partial_integral`` is ``expit(a (theta - b))`` under a standard normal latent
density (``estimate_distribution`` is off by default), the model stated in the docstring
of ``girth.synthetic.create_synthetic_irt_dichotomous``.

Measurement: every timed call runs in a fresh subprocess of this module (``--worker``)
that loads the same data file and converts it to its package's layout without timing it
(ours: persons x items floats; girth: items x persons integers), then makes one call.
The ``repeats`` rounds are interleaved (each round runs every contender once) and the
medians of wall-clock and CPU time (``time.process_time``: all threads of the process)
are reported. Peak memory is the peak resident set size during the call: ``VmHWM`` of
/proc/self/status after resetting it through /proc/self/clear_refs just before the call
(Linux; the largest over the rounds). ``ru_maxrss`` is not used: a child process
inherits its parent's high-water mark across fork and exec. ``above_baseline``
subtracts the resident set size just before the call (interpreter, imports
and input data). RMSEs are against the generating a, b and theta; scoring uses the
generating item parameters for both, so it measures scoring alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

A_LOG_SD = 0.3  # a ~ lognormal(0, A_LOG_SD): median 1, 95% within [0.56, 1.80]
DEFAULT_OUT = Path(__file__).parent / "results" / "irt_calibration.json"
REPOSITORY = Path(__file__).resolve().parents[1]
# what --threads sets in each worker's environment (BLAS and OpenMP pools)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

RATIO_KEYS = ("median_seconds", "median_cpu_seconds", "peak_rss_mib", "above_baseline_mib")

Estimates = dict[str, np.ndarray]
Prepared = Callable[[], Estimates]

# (task, contender, the call that is timed), in the order they run
CONTENDERS: tuple[tuple[str, str, str], ...] = (
    ("calibration", "ours", 'scoring.irt.calibrate(ResponseData(x), "2pl")'),
    ("calibration", "ours-em", 'scoring.irt.calibrate(ResponseData(x), "2pl", polish=False)'),
    ("calibration", "girth", "girth.twopl_mml(x.T)"),
    ("scoring", "ours", 'scoring.irt.estimate_ability(x, true_params, "eap")'),
    ("scoring", "girth", "girth.ability_eap(x.T, true_b, true_a)"),
)


# --------------------------------------------------------------------------- data


def generate(items: int, persons: int, score_persons: int, seed: int) -> dict[str, np.ndarray]:
    """Draw item parameters, abilities and 0/1 responses (persons x items, int8)."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, A_LOG_SD, items)
    b = rng.normal(0.0, 1.0, items)
    theta_calibration = rng.normal(0.0, 1.0, persons)
    theta_scoring = rng.normal(0.0, 1.0, score_persons)
    return {
        "a": a,
        "b": b,
        "theta_calibration": theta_calibration,
        "theta_scoring": theta_scoring,
        "calibration": _responses(rng, a, b, theta_calibration),
        "scoring": _responses(rng, a, b, theta_scoring),
    }


def _responses(
    rng: np.random.Generator, a: np.ndarray, b: np.ndarray, theta: np.ndarray
) -> np.ndarray:
    probability = special.expit(a * (theta[:, None] - b))
    return (rng.random(probability.shape) < probability).astype(np.int8)


def rmse(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Return the root mean squared error of an estimate against the true values."""
    return float(np.sqrt(np.mean((np.asarray(estimate, dtype=float) - truth) ** 2)))


# --------------------------------------------------------------------------- contenders
# Each prepares its package's input outside the timing and returns the call to time.
# Packages are imported here, in the worker, so each process holds only its own.


def _calibration_ours(data: Mapping[str, np.ndarray], *, polish: bool = True) -> Prepared:
    from scoring.irt import ResponseData, calibrate

    responses = data["calibration"].astype(float)

    def run() -> Estimates:
        result = calibrate(ResponseData(responses), "2pl", polish=polish)
        return {"a": result.a, "b": result.b}

    return run


def _calibration_ours_em(data: Mapping[str, np.ndarray]) -> Prepared:
    return _calibration_ours(data, polish=False)


def _calibration_girth(data: Mapping[str, np.ndarray]) -> Prepared:
    from girth import twopl_mml

    responses = np.ascontiguousarray(data["calibration"].T, dtype=int)

    def run() -> Estimates:
        result = twopl_mml(responses)
        return {"a": result["Discrimination"], "b": result["Difficulty"]}

    return run


def _scoring_ours(data: Mapping[str, np.ndarray]) -> Prepared:
    from scoring.irt import ItemParameters, estimate_ability

    params = [
        ItemParameters(f"item{j + 1}", float(a), float(b))
        for j, (a, b) in enumerate(zip(data["a"], data["b"], strict=True))
    ]
    responses = data["scoring"].astype(float)

    def run() -> Estimates:
        return {"theta": estimate_ability(responses, params, "eap").theta}

    return run


def _scoring_girth(data: Mapping[str, np.ndarray]) -> Prepared:
    from girth import ability_eap

    responses = np.ascontiguousarray(data["scoring"].T, dtype=int)
    a, b = data["a"], data["b"]

    def run() -> Estimates:
        return {"theta": ability_eap(responses, b, a)}

    return run


PREPARE: dict[tuple[str, str], Callable[[Mapping[str, np.ndarray]], Prepared]] = {
    ("calibration", "ours"): _calibration_ours,
    ("calibration", "ours-em"): _calibration_ours_em,
    ("calibration", "girth"): _calibration_girth,
    ("scoring", "ours"): _scoring_ours,
    ("scoring", "girth"): _scoring_girth,
}


# --------------------------------------------------------------------------- worker


STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_mib(field: str) -> float:
    """Return a size field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    for line in STATUS.read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"no {field} in {STATUS}")


def run_worker(task: str, contender: str, data_path: Path, out_path: Path) -> dict[str, float]:
    """Time one call of one contender in this (fresh) process; save its estimates."""
    if not STATUS.exists():
        raise SystemExit("the memory figures need Linux (/proc/self/status)")
    with np.load(data_path) as stored:
        data = {name: stored[name] for name in stored.files}
    run = PREPARE[task, contender](data)
    del data
    before = _status_mib("VmRSS")
    CLEAR_REFS.write_text("5")  # reset VmHWM to the current resident set size
    wall, cpu = time.perf_counter(), time.process_time()
    estimates = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _status_mib("VmHWM")
    np.savez(out_path, **estimates)
    return {"seconds": wall, "cpu_seconds": cpu, "rss_before_mib": before, "peak_rss_mib": peak}


def _spawn(
    task: str, contender: str, data_path: Path, out_path: Path, threads: int | None
) -> dict[str, float]:
    environment = dict(os.environ)
    if threads is not None:
        environment.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    command = [
        sys.executable,
        "-m",
        "benchmarks.irt_calibration",
        "--worker",
        f"{task}:{contender}",
        "--data",
        str(data_path),
        "--estimates",
        str(out_path),
    ]
    # S603: this interpreter running this module with arguments built above
    finished = subprocess.run(  # noqa: S603
        command, cwd=REPOSITORY, env=environment, stdout=subprocess.PIPE, text=True, check=True
    )
    return json.loads(finished.stdout)


# --------------------------------------------------------------------------- report


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the data, time every contender ``repeats`` times, return the record.

    Every call runs in a fresh process, and the repeats are interleaved (each round runs
    every contender once) so that load from other work on the machine falls on all
    contenders alike rather than on whichever ran during a busy spell.
    """
    data = generate(args.items, args.persons, args.score_persons, args.seed)
    truth = {
        "calibration": {"a": data["a"], "b": data["b"]},
        "scoring": {"theta": data["theta_scoring"]},
    }
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    errors: dict[tuple[str, str], dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="irt-bench-") as folder:
        data_path = Path(folder) / "data.npz"
        np.savez(data_path, **data)
        del data
        for round_number in range(1, args.repeats + 1):
            for task, contender, _call in CONTENDERS:
                print(
                    f"round {round_number}/{args.repeats}: {task} / {contender}",
                    file=sys.stderr,
                    flush=True,
                )
                out_path = Path(folder) / f"{task}-{contender}.npz"
                measured = _spawn(task, contender, data_path, out_path, args.threads)
                runs.setdefault((task, contender), []).append(measured)
                with np.load(out_path) as estimates:
                    errors[task, contender] = {
                        k: rmse(estimates[k], v) for k, v in truth[task].items()
                    }
    rows = [
        _row(task, contender, call, runs[task, contender], errors[task, contender])
        for task, contender, call in CONTENDERS
    ]
    _add_ratios(rows)
    return {
        "benchmark": "irt_calibration",
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.irt_calibration " + " ".join(_arguments(args)),
        "settings": {
            "items": args.items,
            "persons": args.persons,
            "score_persons": args.score_persons,
            "seed": args.seed,
            "repeats": args.repeats,
            "threads": args.threads or "library default",
            "generating_model": "2PL logistic, D = 1",
            "a": f"lognormal(0, {A_LOG_SD})",
            "b": "N(0, 1)",
            "theta": "N(0, 1)",
        },
        "machine": _machine(),
        "versions": _versions(),
        "source": _source(),
        "results": rows,
    }


def _row(
    task: str, contender: str, call: str, runs: list[dict[str, float]], errors: dict[str, float]
) -> dict[str, Any]:
    """Summarise one contender's runs: median times, largest peak memory, RMSEs."""
    peak = max(run["peak_rss_mib"] for run in runs)
    above = max(run["peak_rss_mib"] - run["rss_before_mib"] for run in runs)
    return {
        "task": task,
        "contender": contender,
        "call": call,
        "seconds": [run["seconds"] for run in runs],
        "cpu_seconds": [run["cpu_seconds"] for run in runs],
        "median_seconds": statistics.median(run["seconds"] for run in runs),
        "median_cpu_seconds": statistics.median(run["cpu_seconds"] for run in runs),
        "peak_rss_mib": peak,
        "above_baseline_mib": above,
        "rmse": errors,
    }


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Add ours/girth ratios of median time and memory to every non-girth row."""
    girth = {row["task"]: row for row in rows if row["contender"] == "girth"}
    for row in rows:
        reference = girth.get(row["task"])
        if reference is None or row is reference:
            continue
        row["ratio_to_girth"] = {
            key: row[key] / reference[key] if reference[key] > 0 else None for key in RATIO_KEYS
        }


def _arguments(args: argparse.Namespace) -> list[str]:
    return [
        f"--items {args.items}",
        f"--persons {args.persons}",
        f"--score-persons {args.score_persons}",
        f"--seed {args.seed}",
        f"--repeats {args.repeats}",
        *([f"--threads {args.threads}"] if args.threads else []),
    ]


def _machine() -> dict[str, Any]:
    model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": cores, "cpu": model, "platform": platform.platform()}


def _source() -> dict[str, Any]:
    """Return the commit measured and whether ``scoring/irt.py`` differed from it."""

    def git(*arguments: str) -> str | None:
        try:
            # S603, S607: a fixed git command on this repository
            finished = subprocess.run(  # noqa: S603
                ["git", *arguments],  # noqa: S607
                cwd=REPOSITORY,
                capture_output=True,
                text=True,
                check=True,
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return finished.stdout.strip()

    status = git("status", "--porcelain", "--", "scoring/irt.py")
    return {
        "commit": git("rev-parse", "HEAD"),
        "scoring_irt_modified": None if status is None else bool(status),
    }


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("numpy", "scipy", "girth"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def format_table(record: Mapping[str, Any]) -> str:
    """Return the results as a plain-text table with the ours/girth ratios."""
    header = (
        f"{'task':<12}{'contender':<9}{'wall s':>8}{'CPU s':>8}{'peak MiB':>9}{'+MiB':>6}"
        f"{'RMSE a':>8}{'RMSE b':>8}{'RMSE th':>8}"
        f"{'wall/g':>8}{'CPU/g':>7}{'+MiB/g':>7}"
    )
    lines = [header, "-" * len(header)]
    for row in record["results"]:
        errors = row["rmse"]
        ratio = row.get("ratio_to_girth", {})
        lines.append(
            f"{row['task']:<12}{row['contender']:<9}"
            f"{row['median_seconds']:>8.2f}{row['median_cpu_seconds']:>8.2f}"
            f"{row['peak_rss_mib']:>9.0f}{row['above_baseline_mib']:>6.0f}"
            f"{_cell(errors.get('a'), 4, 8)}{_cell(errors.get('b'), 4, 8)}"
            f"{_cell(errors.get('theta'), 4, 8)}"
            f"{_cell(ratio.get('median_seconds'), 2, 8)}"
            f"{_cell(ratio.get('median_cpu_seconds'), 2, 7)}"
            f"{_cell(ratio.get('above_baseline_mib'), 2, 7)}"
        )
    lines.append("g: girth on the same task (ours / girth); medians of the rounds")
    return "\n".join(lines)


def _cell(value: float | None, digits: int, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


# --------------------------------------------------------------------------- command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.irt_calibration",
        description="2PL calibration and EAP scoring: scoring.irt against girth.",
    )
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--persons", type=int, default=20_000, help="calibration sample")
    parser.add_argument("--score-persons", type=int, default=100_000, help="EAP scoring sample")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="rounds: timed calls per contender")
    parser.add_argument(
        "--threads", type=int, help="BLAS/OpenMP threads per worker (default: the libraries')"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # TASK:CONTENDER, internal
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--estimates", type=Path, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, one contender) and report."""
    args = _parser().parse_args(argv)
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    if args.threads is not None and args.threads < 1:
        raise SystemExit("--threads must be at least 1")
    if args.worker:
        task, contender = args.worker.split(":")
        result = run_worker(task, contender, args.data, args.estimates)
        print(json.dumps(result))
        return 0
    if importlib.util.find_spec("girth") is None:
        raise SystemExit('girth is not installed: pip install -e ".[bench]"')
    record = run_benchmark(args)
    print(format_table(record))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
