"""The production stack on one machine, for the benchmarks: a dedicated PostgreSQL
database, migrations as their own step, gunicorn, the scheduler, CPU accounting.

Nothing here is imported by the application; the benchmarks drive the app only through
its CLI, its services (setup) and its HTTP API (the measured part).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import sqlalchemy as sa

from testing_center.config import database_uri

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# the console script beside this interpreter (the venv's), as an operator would run it
TESTING_CENTER = [str(Path(sys.executable).parent / "testing-center")]
SECRET_KEY = "benchmark-secret-key-" + "x" * 40  # production refuses keys under 32 chars
PACKAGES = (
    "Flask",
    "SQLAlchemy",
    "Flask-SQLAlchemy",
    "psycopg",
    "gunicorn",
    "httpx",
    "argon2-cffi",
    "reportlab",
)


# ---- the database -------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str, keep: bool = False) -> Iterator[str]:
    """Create an empty database on the server ``server_url`` names; drop it afterwards."""
    name = f"tc_bench_{uuid.uuid4().hex[:8]}"
    admin(server_url, f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(database_uri(server_url)).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        if not keep:
            admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def admin(server_url: str, statement: str, tries: int = 3) -> None:
    """Run one statement on a new connection (retried: on a shared server another
    suite's clean-up may end idle connections)."""
    for attempt in range(tries):
        engine = sa.create_engine(database_uri(server_url), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(statement))
            return
        except sa.exc.OperationalError:
            if attempt == tries - 1:
                raise
            time.sleep(1)
        finally:
            engine.dispose()


def postgres_settings(url: str) -> dict[str, str]:
    """The server settings that matter for these measurements."""
    names = (
        "server_version",
        "max_connections",
        "shared_buffers",
        "work_mem",
        "synchronous_commit",
        "fsync",
        "wal_level",
        "effective_cache_size",
    )
    engine = sa.create_engine(database_uri(url))
    with engine.connect() as connection:
        settings = {name: connection.execute(sa.text(f"SHOW {name}")).scalar() for name in names}
    engine.dispose()
    return settings


def app_environment(database_url: str, instance: Path, **extra: str) -> dict[str, str]:
    """The environment of every production process of the run (web, scheduler, CLI)."""
    return {
        **os.environ,
        "TESTING_CENTER_ENV": "production",
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": database_url,
        "TESTING_CENTER_INSTANCE": str(instance),
        "MAIL_BACKEND": "file",
        "MAIL_FOLDER": str(instance / "mail"),
        **extra,
    }


def cli(args: Sequence[str], env: dict[str, str]) -> str:
    """Run ``testing-center ARGS`` (migrations are a separate step, as in production)."""
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [*TESTING_CENTER, *args],
        env=env,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"testing-center {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


# ---- servers ------------------------------------------------------------------------------


@dataclass
class GunicornSettings:
    workers: int = 4
    threads: int = 4
    worker_class: str = "gthread"
    backlog: int = 2048
    keepalive: int = 5
    timeout: int = 60

    def args(self) -> list[str]:
        return [
            "--workers",
            str(self.workers),
            "--threads",
            str(self.threads),
            "--worker-class",
            self.worker_class,
            "--backlog",
            str(self.backlog),
            "--keep-alive",
            str(self.keepalive),
            "--timeout",
            str(self.timeout),
        ]

    def describe(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class Process:
    """A server process group started by a benchmark (stopped by its own pid only)."""

    name: str
    popen: subprocess.Popen
    log: Path

    def pids(self) -> list[int]:
        """The process and its children (gunicorn's master and workers)."""
        try:
            parent = psutil.Process(self.popen.pid)
            return [parent.pid, *(child.pid for child in parent.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start_process(
    name: str, argv: Sequence[str], env: dict[str, str], logs: Path, niceness: int = 0
) -> Process:
    """Start ``argv`` logging to ``logs``; ``niceness`` lowers its CPU priority (and its
    children's), as ``nice -n`` would."""
    log = logs / f"{name}.log"
    handle = log.open("w")
    popen = subprocess.Popen(  # noqa: S603 - fixed arguments
        list(argv),
        env=env,
        cwd=REPOSITORY,
        stdout=handle,
        stderr=subprocess.STDOUT,
        preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
    )
    return Process(name, popen, log)


def start_gunicorn(
    name: str,
    app: str,
    port: int,
    settings: GunicornSettings,
    env: dict[str, str],
    logs: Path,
    niceness: int = 0,
) -> Process:
    """Serve the WSGI app ``app`` on 127.0.0.1:``port`` and wait until it answers."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        *settings.args(),
        "--log-level",
        "warning",
    ]
    process = start_process(name, argv, env, logs, niceness)
    wait_for_http(f"http://127.0.0.1:{port}/healthz", process)
    return process


def wait_for_http(url: str, process: Process, timeout_seconds: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited:\n{process.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"{process.name} did not answer {url} in {timeout_seconds} s")


# ---- CPU accounting -----------------------------------------------------------------------


def postgres_backends(database: str) -> list[int]:
    """PostgreSQL backends serving ``database`` (their process titles name it)."""
    pids = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if cmdline and cmdline[0].startswith("postgres:") and f" {database} " in cmdline[0]:
            pids.append(process.pid)
    return pids


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    times = {}
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            cpu = psutil.Process(pid).cpu_times()
            times[pid] = cpu.user + cpu.system
    return times


BUSIEST_LISTED = 8


@dataclass
class CpuMeter:
    """CPU seconds used by named process groups between ``start`` and ``stop``.

    Groups are lists of pids, or callables returning them (PostgreSQL backends come and
    go). A process present at both ends counts; the machine-wide busy share is given too,
    since other work on a shared machine competes for the same cores. Each group's
    busiest processes are listed as well: a gunicorn worker runs Python on one core at a
    time, so one worker near a whole core while the others idle is a queue the group's
    total does not show.
    """

    groups: dict[str, Any]
    before: dict[str, dict[int, float]] = field(default_factory=dict)
    started: float = 0.0
    machine_before: Any = None

    def _pids(self, name: str) -> list[int]:
        group = self.groups[name]
        return list(group() if callable(group) else group)

    def start(self) -> None:
        self.before = {name: cpu_seconds(self._pids(name)) for name in self.groups}
        self.started = time.monotonic()
        self.machine_before = psutil.cpu_times()

    def stop(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        report: dict[str, Any] = {"seconds": round(elapsed, 1)}
        for name in self.groups:
            now = cpu_seconds(self._pids(name))
            used = {pid: now[pid] - self.before[name].get(pid, 0.0) for pid in now}
            report[f"{name}_cores"] = round(sum(used.values()) / elapsed, 2) if elapsed else 0.0
            busiest = sorted(used.values(), reverse=True)[:BUSIEST_LISTED]
            report[f"{name}_busiest_cores"] = [round(u / elapsed, 2) for u in busiest if elapsed]
        machine = psutil.cpu_times()
        busy = sum(
            getattr(machine, f) - getattr(self.machine_before, f)
            for f in ("user", "system", "nice", "irq", "softirq", "steal")
        )
        report["machine_busy_cores"] = round(busy / elapsed, 2) if elapsed else 0.0
        steal = getattr(machine, "steal", 0.0) - getattr(self.machine_before, "steal", 0.0)
        report["machine_steal_cores"] = round(steal / elapsed, 2) if elapsed else 0.0
        report["machine_cores"] = psutil.cpu_count()
        return report


class CpuTimeline:
    """``CpuMeter`` figures minute by minute (or every ``interval`` seconds) while a phase
    runs, from a thread of its own: a phase's average hides the minutes when a group ran
    at its limit, which is where the latencies of those minutes come from."""

    def __init__(self, groups: dict[str, Any], interval: float = 60.0) -> None:
        self.meter = CpuMeter(groups)
        self.interval = interval
        self.minutes: list[dict[str, Any]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.meter.start()
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.minutes.append(self.meter.stop())
            self.meter.start()

    def stop(self) -> list[dict[str, Any]]:
        self._stopping.set()
        self._thread.join()
        self.minutes.append(self.meter.stop())
        return self.minutes


# ---- figures ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """Count and p50/p95/p99/max in milliseconds."""
    return {
        "count": len(seconds),
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 95) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1) if seconds else float("nan"),
    }


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def record_header(
    benchmark: str, args: argparse.Namespace, moment: dt.datetime | None = None
) -> dict[str, Any]:
    """What every benchmark record starts with: which benchmark, when, on what machine
    and with which arguments, so a figure can be traced to the run that made it."""
    return {
        "benchmark": benchmark,
        "date": (moment or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
        "machine": machine(),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
    }


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write a benchmark record as JSON (dates and other objects as their text)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": versions,
    }


class GarbageCollectorClock:
    """Time spent in Python's garbage collector from construction to ``stop``.

    A full collection walks every tracked object, the per-process caches included, so
    its cost grows with what a worker keeps; this is how a benchmark sees it.
    """

    def __init__(self) -> None:
        self.seconds = 0.0
        self.longest = 0.0
        self.full = 0
        self.tracked = 0
        self._began = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        pause = time.perf_counter() - self._began
        self.seconds += pause
        self.longest = max(self.longest, pause)
        self.full += info["generation"] == 2

    def stop(self) -> None:
        gc.callbacks.remove(self._observe)
        self.tracked = len(gc.get_objects())
