"""Exam-day load: N candidates sit a JFT-Basic-style exam against the production stack,
and the bare stack measured in the same run (issue 8).

Run from the repository root, after ``pip install -e ".[postgres,bench]"``::

    python -m benchmarks.exam_day --candidates 1000 --time-scale 10 --duration 180

What happens, in order (``benchmarks/README.md`` has the figures):

1. A dedicated PostgreSQL database is created (dropped at the end), migrated with
   ``testing-center db upgrade`` and filled through the app's own services: the shipped
   bank and templates, one account, booking and check-in per candidate (check-in
   prepares the candidate's form; ``--assemble-at-start`` deletes the prepared forms,
   so every start assembles and writes its form, as before forms were prepared), open
   sessions (``benchmarks/world.py``). ``testing-center scheduler --once`` then sends
   the booking e-mails, as happens long before an exam day.
2. The production stack starts: gunicorn serving ``testing_center:create_app()`` with
   ``TESTING_CENTER_ENV=production``, the scheduler (``--interval 30``), and gunicorn
   serving the bare stack (``benchmarks/bare_app.py``) with the same settings. With
   ``--start-workers N`` a second app pool of N workers, at ``--start-niceness``,
   serves the starts, as a proxy routing ``POST /api/v1/attempts`` to it would
   (``benchmarks/README.md``, "A pool for starts"): the start burst then takes only the
   CPU the saves leave. ``--start-pool-serves start,state,finish`` sends it the state
   reads and finishes too, leaving the app's pool to the saves.
3. Logins: ``--login-sample`` candidates log in over HTTP at full speed, reported on
   their own. Argon2id at the production cost takes about 0.25 s of CPU per login, so a
   two-core node signs in about eight candidates a second; candidates sign in at their
   seats during the check-in hour, not in the start minute. The others got their token
   from ``issue_token`` during the setup (stated in the report).
4. The exam: each candidate starts within ``--start-window`` seconds (``POST
   /api/v1/attempts {booking_id}``), reads the state, then answers every item of the form
   in order, one save every 20-40 s divided by ``--time-scale`` (10% of answers are
   changed later: one more save each), reads the state again every 10 saves (a page
   reload), and finishes. Meanwhile, as the player page does, it asks for the attempt's
   clock once ``--resync-seconds`` (60, divided by ``--time-scale``; 0: never) have
   passed since the server last told it the time (a state read, an acknowledged save
   or a clock read); with ``--resync-always``, every ``--resync-seconds`` whatever came
   between, as the page did before its saves carried the clock.
   ``--duration`` ends the answering after that many seconds from a candidate's start
   (it then finishes). Each candidate has one request in flight at most besides its
   clock read; a save whose connection fails is retried with the same ``client_seq``.
   The save rate is about candidates x time-scale / 30 per second: 1,000 candidates at
   time scale 10 offer the save rate of 10,000 real candidates.
5. The bare stack at the same rate: the same save pattern against the bare endpoint.
6. Saturation, both stacks with the same ``--concurrency`` closed-loop clients (no think
   time), ``--repeats`` interleaved rounds of ``--saturation-seconds``; the medians give
   the throughput ratio.
7. Every acknowledged save (``accepted: true``) is compared with the database: the
   stored ``client_seq`` must not be older and, when equal, the value must match.

Latency is measured in the load generator, which shares the machine's cores with the
servers and PostgreSQL (its own CPU is reported); on a shared machine, compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import bare_app, stack
from benchmarks.http_client import Client, HttpError, Reply
from benchmarks.world import PASSWORD, Candidate, build_exam_day, setup_app
from testing_center.config import database_uri

DEFAULT_OUT = Path(__file__).parent / "results" / "exam_day.json"
APP_PORT = 8391
BARE_PORT = 8392
START_PORT = 8393  # the start pool (--start-workers), as the proxy would route starts
THINK_SECONDS = (20.0, 40.0)
REVISIT_SHARE = 0.10  # answers changed later, one more save each
STATE_EVERY = 10  # a state read (page reload) every this many saves
RETRIES = 3
# the bare stack's "form": 48 single-choice items
BARE_ITEMS = [
    {"ref": f"q{n}", "type": "single_choice", "options": [{"id": k} for k in "ABCD"]}
    for n in range(1, 49)
]
TIMED = ("login", "start", "state", "clock", "save", "finish")
EXAM_ENDPOINTS = TIMED[1:]
ROUTABLE = frozenset({"start", "state", "clock", "finish"})  # --start-pool-serves: not saves


# ---- recording --------------------------------------------------------------------------


@dataclass
class Recorder:
    """Latencies, statuses and acknowledgements of one phase."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # (moment sent, latency) per endpoint, for the figures minute by minute
    timeline: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    statuses: Counter = field(default_factory=Counter)
    first: dict[str, float] = field(default_factory=dict)
    last: dict[str, float] = field(default_factory=dict)
    # (attempt or user, item ref) -> the highest acknowledged (client_seq, value)
    acked: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    # (attempt or user, item ref, client_seq) -> value of every save sent
    sent: dict[tuple[str, str, int], Any] = field(default_factory=dict)

    def note(self, endpoint: str, started: float, status: str) -> None:
        ended = time.monotonic()
        self.latencies[endpoint].append(ended - started)
        self.timeline[endpoint].append((started, ended - started))
        self.statuses[(endpoint, status)] += 1
        self.first.setdefault(endpoint, started)
        self.last[endpoint] = ended

    def ack(self, owner: str, ref: str, seq: int, value: Any) -> None:
        key = (owner, ref)
        if key not in self.acked or self.acked[key][0] < seq:
            self.acked[key] = (seq, value)

    def summary(self, window_seconds: float) -> dict[str, Any]:
        endpoints = {}
        for endpoint, values in self.latencies.items():
            ok = sum(
                n
                for (e, s), n in self.statuses.items()
                if e == endpoint and s.isdigit() and int(s) < 400
            )
            endpoints[endpoint] = {
                **stack.latency_summary(values),
                "ok": ok,
                "per_second": round(len(values) / window_seconds, 1) if window_seconds else 0,
            }
        errors = {
            f"{e} {s}": n
            for (e, s), n in sorted(self.statuses.items())
            if not (s.isdigit() and int(s) < 400)
        }
        return {
            "window_seconds": round(window_seconds, 1),
            "endpoints": endpoints,
            "errors": errors,
            "by_minute": self.by_minute(),
        }

    def by_minute(self) -> dict[str, list[dict[str, Any]]]:
        """Per endpoint, each minute from the phase's first request: requests sent in it
        and their latencies (where the start minute's queue shows)."""
        if not self.timeline:
            return {}
        origin = min(moment for rows in self.timeline.values() for moment, _ in rows)
        minutes: dict[str, list[dict[str, Any]]] = {}
        for endpoint, rows in self.timeline.items():
            buckets: dict[int, list[float]] = defaultdict(list)
            for moment, latency in rows:
                buckets[int((moment - origin) // 60)].append(latency)
            minutes[endpoint] = [
                {"minute": minute, **stack.latency_summary(buckets[minute])}
                for minute in sorted(buckets)
            ]
        return minutes


async def call(
    client: Client,
    recorder: Recorder,
    endpoint: str,
    method: str,
    url: str,
    **kwargs: Any,
) -> Reply | None:
    """One request, retried on connection failures; every try is recorded."""
    for attempt in range(RETRIES):
        started = time.monotonic()
        try:
            response = await client.request(method, url, **kwargs)
        except HttpError as error:
            recorder.note(endpoint, started, error.kind)
            await asyncio.sleep(1 + attempt)
            continue
        recorder.note(endpoint, started, str(response.status_code))
        if response.status_code in (502, 503, 504):
            await asyncio.sleep(1 + attempt)
            continue
        return response
    return None


# ---- candidates -------------------------------------------------------------------------


def simulated(seed: Any) -> random.Random:
    """A seeded generator for simulated candidates (behaviour, not secrets)."""
    return random.Random(seed)  # noqa: S311


def answer_for(item: dict[str, Any], rng: random.Random) -> Any:
    """A valid answer to an item as the state presents it."""
    kind = item["type"]
    if kind == "single_choice":
        return rng.choice(item["options"])["id"]
    if kind == "multiple_response":
        ids = [o["id"] for o in item["options"]]
        return sorted(rng.sample(ids, rng.randint(1, len(ids))))
    if kind == "ordering":
        ids = [o["id"] for o in item["options"]]
        rng.shuffle(ids)
        return ids
    if kind == "matching":
        choices = [c["id"] for c in item["choices"]]
        return {p["id"]: rng.choice(choices) for p in item["prompts"]}
    if kind == "true_false":
        return rng.random() < 0.5
    return "たべます"[: item.get("max_length", 4)]


@dataclass(frozen=True)
class Pattern:
    """How candidates behave: think time, start spread, answering cut-off."""

    time_scale: float
    start_window: float
    duration: float | None
    resync_seconds: float = 0.0  # the player's clock read (0: none)
    resync_always: bool = False  # read the clock on the interval even after saves

    def think(self, rng: random.Random) -> float:
        return rng.uniform(*THINK_SECONDS) / self.time_scale

    @property
    def resync_interval(self) -> float:
        return self.resync_seconds / self.time_scale


def form_items(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for s in state["sections"] if s["status"] == "open" for item in s["items"]]


def answer_plan(items: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Every item in order, then a tenth of them again (changed answers)."""
    revisits = rng.sample(items, round(len(items) * REVISIT_SHARE)) if items else []
    return [*items, *revisits]


async def sit_exam(
    routes: dict[str, Client],
    recorder: Recorder,
    candidate: Candidate,
    token: str,
    pattern: Pattern,
    rng: random.Random,
) -> None:
    """One candidate: start, read the state, answer with think time, finish; each
    request through the client ``routes`` gives its endpoint."""
    await asyncio.sleep(rng.uniform(0, pattern.start_window))
    headers = {"Authorization": f"Bearer {token}"}
    started = await call(
        routes["start"],
        recorder,
        "start",
        "POST",
        "/api/v1/attempts",
        json={"booking_id": candidate.booking_id},
        headers=headers,
    )
    if started is None or started.status_code not in (200, 201):
        return
    attempt_id = started.json()["id"]
    base = f"/api/v1/attempts/{attempt_id}"
    state = await call(routes["state"], recorder, "state", "GET", base, headers=headers)
    if state is None or state.status_code != 200:
        return
    page_closed = asyncio.Event()
    told = PageClock()
    clock_reads = asyncio.create_task(
        keep_time(routes["clock"], recorder, f"{base}/clock", headers, pattern, page_closed, told)
    )
    began = time.monotonic()
    for seq, item in enumerate(answer_plan(form_items(state.json()), rng), start=1):
        await asyncio.sleep(pattern.think(rng))
        if pattern.duration and time.monotonic() - began > pattern.duration:
            break
        value = answer_for(item, rng)
        recorder.sent[(attempt_id, item["ref"], seq)] = value
        saved = await call(
            routes["save"],
            recorder,
            "save",
            "PUT",
            f"{base}/responses/{item['ref']}",
            json={"response": value, "client_seq": seq},
            headers=headers,
        )
        if saved is not None and saved.status_code == 200:
            told.now()
            ack = saved.json()
            if ack["accepted"]:
                recorder.ack(attempt_id, item["ref"], ack["client_seq"], ack["response"])
        if seq % STATE_EVERY == 0:
            reloaded = await call(routes["state"], recorder, "state", "GET", base, headers=headers)
            if reloaded is not None and reloaded.status_code == 200:
                told.now()
    page_closed.set()
    await clock_reads  # a clock read under way is answered, not cut off
    await call(routes["finish"], recorder, "finish", "POST", f"{base}/finish", headers=headers)


class PageClock:
    """When the server last told a candidate's page the time (monotonic seconds)."""

    def __init__(self) -> None:
        self.told_at = time.monotonic()

    def now(self) -> None:
        self.told_at = time.monotonic()


async def keep_time(
    client: Client,
    recorder: Recorder,
    url: str,
    headers: dict[str, str],
    pattern: Pattern,
    page_closed: asyncio.Event,
    told: PageClock,
) -> None:
    """The player's resync, from the page's first state until the candidate finishes:
    the attempt's clock once ``pattern.resync_interval`` seconds have passed without the
    server's word (or, ``resync_always``, every interval)."""
    if not pattern.resync_interval:
        return
    asked_at = told.told_at
    while True:
        last = asked_at if pattern.resync_always else max(asked_at, told.told_at)
        wait = last + pattern.resync_interval - time.monotonic()
        try:
            await asyncio.wait_for(page_closed.wait(), max(wait, 0.0))
            return
        except TimeoutError:
            pass
        if pattern.resync_always or time.monotonic() - told.told_at >= pattern.resync_interval:
            asked_at = time.monotonic()
            clock = await call(client, recorder, "clock", "GET", url, headers=headers)
            if clock is not None and clock.status_code == 200:
                told.now()


async def save_bare(
    client: Client,
    recorder: Recorder,
    owner: str,
    token: str,
    ref: str,
    seq: int,
    value: Any,
) -> None:
    recorder.sent[(owner, ref, seq)] = value
    saved = await call(
        client,
        recorder,
        "save",
        "PUT",
        f"/answers/{ref}",
        json={"response": value, "client_seq": seq},
        headers={"Authorization": f"Bearer {token}"},
    )
    if saved is not None and saved.status_code == 200 and saved.json()["accepted"]:
        recorder.ack(owner, ref, seq, saved.json()["response"])


async def bare_candidate(
    client: Client,
    recorder: Recorder,
    user_id: int,
    token: str,
    items: int,
    pattern: Pattern,
    rng: random.Random,
    seconds: float,
) -> None:
    """The exam's save pattern against the bare endpoint: ``seconds`` of answering
    after a start within the same window."""
    await asyncio.sleep(rng.uniform(0, pattern.start_window))
    began = time.monotonic()
    for seq in range(1, items + 1):
        await asyncio.sleep(pattern.think(rng))
        if time.monotonic() - began > seconds:
            return
        await save_bare(client, recorder, str(user_id), token, f"q{seq}", seq, "A")


@dataclass(frozen=True)
class Connections:
    """How the load generator connects, as the proxy in front of gunicorn would.

    With ``keep_alive`` each connection is reused, and stays with the gunicorn worker
    that accepted it; without (``--connection-per-request``) every request has a
    connection of its own, as nginx talks to its upstream servers by default, and goes
    to whichever worker accepts it first.
    """

    keep_alive: bool = True

    def client(self, port: int, connections: int, timeout: float = 60.0) -> Client:
        """A client whose requests give up after ``timeout`` seconds at the server, as a
        proxy's read timeout would (nginx: 60 s by default)."""
        return Client("127.0.0.1", port, connections, timeout, keep_alive=self.keep_alive)


# ---- phases -----------------------------------------------------------------------------


async def log_in(
    connect: Connections, candidates: list[Candidate], concurrency: int
) -> tuple[dict[int, str], dict]:
    """Log the sample in at full speed; return their tokens and the figures."""
    recorder = Recorder()
    tokens: dict[int, str] = {}
    gate = asyncio.Semaphore(concurrency)
    async with connect.client(APP_PORT, concurrency) as client:

        async def one(candidate: Candidate) -> None:
            async with gate:
                response = await call(
                    client,
                    recorder,
                    "login",
                    "POST",
                    "/api/v1/auth/token",
                    json={"email": candidate.email, "password": PASSWORD},
                )
            if response is not None and response.status_code == 200:
                tokens[candidate.user_id] = response.json()["token"]

        began = time.monotonic()
        await asyncio.gather(*(one(c) for c in candidates))
    return tokens, {
        **recorder.summary(time.monotonic() - began),
        "candidates": len(candidates),
        "concurrency": concurrency,
    }


class LoopWatch:
    """How late the load generator's event loop wakes up, minute by minute.

    Every latency is measured by this one process: while its loop is held up (its own
    garbage collection, CPU it does not get on a busy machine) every answer waiting to
    be read looks slower than the server made it. A sleeper that asks for ``TICK``
    seconds and notes how much longer it took shows how much of a minute's tail is
    the generator's own.
    """

    TICK = 0.1

    def __init__(self) -> None:
        self.lags: list[tuple[float, float]] = []  # (moment, seconds late)
        self.running = True

    async def run(self) -> None:
        while self.running:
            asked = time.monotonic()
            await asyncio.sleep(self.TICK)
            self.lags.append((asked, time.monotonic() - asked - self.TICK))

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Watch the loop while the body runs."""
        watcher = asyncio.create_task(self.run())
        try:
            yield
        finally:
            self.running = False
            await watcher

    def by_minute(self) -> list[dict[str, float]]:
        if not self.lags:
            return []
        origin = self.lags[0][0]
        minutes: dict[int, list[float]] = defaultdict(list)
        for moment, lag in self.lags:
            minutes[int((moment - origin) // 60)].append(lag)
        return [
            {
                "minute": minute,
                "max_ms": round(max(lags) * 1000, 1),
                "p99_ms": round(stack.percentile(lags, 99) * 1000, 1),
                "late_over_50_ms": sum(lag > 0.05 for lag in lags),
            }
            for minute, lags in sorted(minutes.items())
        ]


@contextmanager
def quiet_generator(figures: dict[str, Any]) -> Iterator[LoopWatch]:
    """Keep the generator's garbage collector out of a phase's latencies, and write
    what the generator itself delayed into ``figures``.

    Run E4 (benchmarks/README.md) measured 27 full collections in the generator during
    one exam phase, the longest 2.8 s: every answer waiting to be read then looked
    that much slower. What earlier phases left (the setup; after the exam phase, its
    half a million recorded saves, kept for the final check) is frozen out of the
    collector's reach before the phase, and collection stays off until it ends; what
    the phase's reference cycles hold meanwhile is a few megabytes. E10's bare phase,
    run with the collector back on after the exam phase, answered at p95 4.3 s with
    the server's workers at 0.74 core, most likely for this reason (it was not
    watched then; every phase run through here is).
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    watch, collector = LoopWatch(), stack.GarbageCollectorClock()
    try:
        yield watch
    finally:
        collector.stop()  # first: the collection that enabling sets off is not the phase's
        gc.enable()
    figures.update(
        loop_lag_by_minute=watch.by_minute(),
        gc_seconds=round(collector.seconds, 2),
        gc_longest_pause_ms=round(collector.longest * 1000, 1),
        gc_full_collections=collector.full,
    )


async def exam(
    connect: Connections,
    watch: LoopWatch,
    candidates: list[Candidate],
    tokens: dict[int, str],
    pattern: Pattern,
    connections: int,
    seed: int,
    start_pool_serves: frozenset[str],
    start_timeout: float,
) -> tuple[Recorder, float]:
    """Every candidate sits the exam; the endpoints in ``start_pool_serves`` go to the
    start pool's port over connections of their own, with their own timeout, as a
    proxy routing them would."""
    recorder = Recorder()
    async with (
        connect.client(APP_PORT, connections) as client,
        connect.client(START_PORT, connections, start_timeout) as starter,
    ):
        # an unused starter opens nothing
        routes = {e: starter if e in start_pool_serves else client for e in EXAM_ENDPOINTS}
        began = time.monotonic()
        async with watch.watching():
            await asyncio.gather(
                *(
                    sit_exam(
                        routes,
                        recorder,
                        c,
                        tokens[c.user_id],
                        pattern,
                        simulated(seed * 100_003 + i),
                    )
                    for i, c in enumerate(candidates)
                    if c.user_id in tokens  # a failed login is counted among the logins' errors
                )
            )
    return recorder, time.monotonic() - began


async def bare_same_rate(
    connect: Connections,
    watch: LoopWatch,
    tokens: dict[int, str],
    items: int,
    pattern: Pattern,
    seconds: float,
    connections: int,
    seed: int,
) -> tuple[Recorder, float]:
    recorder = Recorder()
    async with connect.client(BARE_PORT, connections) as client, watch.watching():
        began = time.monotonic()
        await asyncio.gather(
            *(
                bare_candidate(
                    client,
                    recorder,
                    user_id,
                    token,
                    items,
                    pattern,
                    simulated(seed * 7 + user_id),
                    seconds,
                )
                for user_id, token in tokens.items()
            )
        )
    return recorder, time.monotonic() - began


@dataclass
class SaturationTarget:
    """What one closed-loop client saves to: an attempt (app) or a user (bare)."""

    owner: str
    token: str
    items: list[dict[str, Any]]
    seq: int = 0


async def prepare_app_targets(
    connect: Connections, candidates: list[Candidate], tokens: dict[int, str]
) -> list:
    """Start the saturation candidates' attempts (not measured)."""
    recorder = Recorder()
    targets = []
    async with connect.client(APP_PORT, 8) as client:
        for candidate in candidates:
            headers = {"Authorization": f"Bearer {tokens[candidate.user_id]}"}
            started = await call(
                client,
                recorder,
                "start",
                "POST",
                "/api/v1/attempts",
                json={"booking_id": candidate.booking_id},
                headers=headers,
            )
            state = started.json()
            targets.append(
                SaturationTarget(state["id"], tokens[candidate.user_id], form_items(state))
            )
    return targets


async def saturate(
    connect: Connections,
    port: int,
    targets: list[SaturationTarget],
    seconds: float,
    warmup: float,
    recorder: Recorder,
    bare: bool,
) -> float:
    """Closed loop: each target's client saves again as soon as it is answered.

    Returns the saves per second completed in the window after the warm-up.
    """
    done_in_window = 0
    async with connect.client(port, len(targets)) as client:
        began = time.monotonic()
        window_start, window_end = began + warmup, began + warmup + seconds

        async def loop(target: SaturationTarget) -> None:
            nonlocal done_in_window
            rng = simulated(target.owner)
            while time.monotonic() < window_end:
                target.seq += 1
                item = target.items[target.seq % len(target.items)]
                value = answer_for(item, rng)
                started = time.monotonic()
                if bare:
                    await save_bare(
                        client, recorder, target.owner, target.token, item["ref"], target.seq, value
                    )
                else:
                    recorder.sent[(target.owner, item["ref"], target.seq)] = value
                    saved = await call(
                        client,
                        recorder,
                        "save",
                        "PUT",
                        f"/api/v1/attempts/{target.owner}/responses/{item['ref']}",
                        json={"response": value, "client_seq": target.seq},
                        headers={"Authorization": f"Bearer {target.token}"},
                    )
                    if saved is not None and saved.status_code == 200:
                        ack = saved.json()
                        if ack["accepted"]:
                            recorder.ack(
                                target.owner, item["ref"], ack["client_seq"], ack["response"]
                            )
                if window_start <= started and time.monotonic() <= window_end:
                    done_in_window += 1

        await asyncio.gather(*(loop(t) for t in targets))
    return done_in_window / seconds


# ---- checking -----------------------------------------------------------------------------


def check_app_acks(database_url: str, recorders: list[Recorder]) -> dict[str, int]:
    """Compare every acknowledged save with the stored response."""
    acked: dict[tuple[str, str], tuple[int, Any]] = {}
    sent: dict[tuple[str, str, int], Any] = {}
    for recorder in recorders:
        acked.update(recorder.acked)
        sent.update(recorder.sent)
    engine = sa.create_engine(database_uri(database_url))
    stored = {}
    attempt_ids = sorted({owner for owner, _ in acked})
    with engine.connect() as connection:
        for first in range(0, len(attempt_ids), 1000):
            rows = connection.execute(
                sa.text(
                    "SELECT ai.attempt_id, ai.ref, r.client_seq, r.value FROM responses r "
                    "JOIN attempt_items ai ON ai.id = r.attempt_item_id "
                    "WHERE ai.attempt_id = ANY(:ids)"
                ),
                {"ids": attempt_ids[first : first + 1000]},
            )
            stored.update({(a, ref): (seq, value) for a, ref, seq, value in rows})
    engine.dispose()
    return compare(acked, sent, stored)


def check_bare_acks(database_url: str, recorders: list[Recorder]) -> dict[str, int]:
    acked: dict[tuple[str, str], tuple[int, Any]] = {}
    sent: dict[tuple[str, str, int], Any] = {}
    for recorder in recorders:
        acked.update(recorder.acked)
        sent.update(recorder.sent)
    engine = sa.create_engine(database_uri(database_url))
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT user_id, item_ref, client_seq, value FROM bare_answers")
        )
        stored = {(str(u), ref): (seq, value) for u, ref, seq, value in rows}
    engine.dispose()
    return compare(acked, sent, stored)


def compare(
    acked: dict[tuple[str, str], tuple[int, Any]],
    sent: dict[tuple[str, str, int], Any],
    stored: dict[tuple[str, str], tuple[int, Any]],
) -> dict[str, int]:
    """An acknowledged save is lost when the stored answer is older than it, or has its
    sequence number but another value; a newer stored one must be a save that was sent."""
    lost = newer = 0
    for key, (seq, value) in acked.items():
        stored_seq, stored_value = stored.get(key, (0, None))
        if stored_seq < seq or (stored_seq == seq and stored_value != value):
            lost += 1
        elif stored_seq > seq:
            newer += 1
            if sent.get((*key, stored_seq), object()) != stored_value:
                lost += 1
    return {"checked": len(acked), "lost": lost, "superseded_by_unacknowledged_save": newer}


# ---- SQL statements per request ---------------------------------------------------------


def statements_per_request(app, candidate: Candidate, token: str) -> dict[str, int]:
    """Count the SQL statements of start, state, clock, save and finish (one candidate, in
    process, Flask's test client against the benchmark database)."""
    from sqlalchemy import event

    from testing_center.extensions import db

    counts: dict[str, int] = {}
    with app.app_context():
        engine = db.engine
    current = {"n": 0}

    def count(*_args: Any) -> None:
        current["n"] += 1

    event.listen(engine, "before_cursor_execute", count)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}

    def measure(name: str, method: str, url: str, **kwargs: Any) -> Any:
        current["n"] = 0
        response = client.open(url, method=method, headers=headers, **kwargs)
        counts[name] = current["n"]
        return response

    state = measure("start", "POST", "/api/v1/attempts", json={"booking_id": candidate.booking_id})
    attempt_id = state.json["id"]
    items = form_items(state.json)
    measure("state", "GET", f"/api/v1/attempts/{attempt_id}")
    measure("clock", "GET", f"/api/v1/attempts/{attempt_id}/clock")
    rng = simulated(1)
    measure(
        "save",
        "PUT",
        f"/api/v1/attempts/{attempt_id}/responses/{items[0]['ref']}",
        json={"response": answer_for(items[0], rng), "client_seq": 1},
    )
    measure("finish", "POST", f"/api/v1/attempts/{attempt_id}/finish")
    event.remove(engine, "before_cursor_execute", count)
    return counts


# ---- the run ------------------------------------------------------------------------------


def discard_all_prepared(app) -> None:
    """Delete every form prepared at check-in (``--assemble-at-start``)."""
    from testing_center.attempts.services import discard_prepared
    from testing_center.extensions import db
    from testing_center.operations.models import Booking

    with app.app_context():
        discarded = discard_prepared(db.session, sa.select(Booking.id))
        db.session.commit()
        db.engine.dispose()
    print(f"prepared forms deleted: {discarded}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=10_000)
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="divide think times by this (short runs)"
    )
    parser.add_argument(
        "--start-window", type=float, default=60.0, help="seconds over which candidates start"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="stop answering this many seconds after a candidate's start",
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--worker-class", default="gthread")
    parser.add_argument(
        "--start-workers",
        type=int,
        default=0,
        help="serve starts from a gunicorn pool of this many workers of their own "
        "(0: starts share the app's pool)",
    )
    parser.add_argument("--start-threads", type=int, default=2)
    parser.add_argument(
        "--start-niceness", type=int, default=10, help="the start pool's CPU priority (nice)"
    )
    parser.add_argument(
        "--start-pool-serves",
        default="start",
        help="the endpoints the start pool serves, of start,state,clock,finish (the saves "
        "stay in the app's pool): start,state,clock,finish sends it all but the saves",
    )
    parser.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        help="seconds a start may wait at the start pool (its proxy's read timeout)",
    )
    parser.add_argument(
        "--assemble-at-start",
        action="store_true",
        help="delete the forms check-in prepared: every start assembles and writes its form",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=60.0,
        help="each candidate reads its attempt's clock when the server has not told it the "
        "time for this long, as the player page does (divided by --time-scale; 0: never, as "
        "runs before 2026-11-27 22:00 UTC did)",
    )
    parser.add_argument(
        "--resync-always",
        action="store_true",
        help="read the clock every --resync-seconds even after saves, as the player page "
        "did before its saves carried the clock (2026-11-28)",
    )
    parser.add_argument("--login-sample", type=int, default=100)
    parser.add_argument("--login-concurrency", type=int, default=8)
    parser.add_argument(
        "--connections", type=int, default=512, help="the load generator's connection pool"
    )
    parser.add_argument(
        "--connection-per-request",
        action="store_true",
        help="open a connection for every request (nginx's default towards its upstream) "
        "instead of keeping connections alive",
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="closed-loop clients of the saturation runs"
    )
    parser.add_argument("--saturation-seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--bare-seconds",
        type=float,
        default=None,
        help="seconds of answering per bare-stack candidate (default: --duration, else "
        "the exam phase's length, at most 600)",
    )
    parser.add_argument(
        "--server",
        default=stack.DEFAULT_SERVER_URL,
        help="PostgreSQL server (a database is created and dropped there)",
    )
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    unknown = set(args.start_pool_serves.split(",")) - ROUTABLE
    if unknown:
        parser.error(f"--start-pool-serves: not among {sorted(ROUTABLE)}: {sorted(unknown)}")
    return args


def start_pool_serves(args: argparse.Namespace) -> frozenset[str]:
    """The endpoints routed to the start pool: none without one."""
    return frozenset(args.start_pool_serves.split(",")) if args.start_workers else frozenset()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = stack.GunicornSettings(
        workers=args.workers, threads=args.threads, worker_class=args.worker_class
    )
    pattern = Pattern(
        args.time_scale, args.start_window, args.duration, args.resync_seconds, args.resync_always
    )
    report: dict[str, Any] = {
        **stack.record_header("exam_day", args),
        "gunicorn": settings.describe(),
        "sqlalchemy_pool": "QueuePool pool_size=5 max_overflow=10 per worker process "
        "(SQLAlchemy defaults), pool_pre_ping=True",
    }
    with (
        tempfile.TemporaryDirectory(prefix="exam-day-") as folder,
        stack.fresh_database(args.server, keep=args.keep_database) as url,
    ):
        instance, logs = Path(folder) / "instance", Path(folder)
        instance.mkdir()
        env = stack.app_environment(url, instance)
        report["postgresql"] = stack.postgres_settings(url)
        database = sa.engine.make_url(url).database
        began = time.monotonic()
        stack.cli(["db", "upgrade"], env)
        app = setup_app(url, str(instance))
        now = dt.datetime.now(dt.UTC)
        candidates, extra = build_exam_day(
            app,
            args.candidates,
            login_sample=min(args.login_sample, args.candidates),
            now=now,
            extra=args.concurrency + 1,
        )
        if args.assemble_at_start:
            discard_all_prepared(app)
        bare_app.create_schema(url)
        bare_tokens = bare_app.issue_tokens(url, [c.user_id for c in candidates])
        bare_saturation = bare_app.issue_tokens(url, [-(i + 1) for i in range(args.concurrency)])
        stack.cli(["scheduler", "--once", "--interval", "30"], env)
        report["setup_seconds"] = round(time.monotonic() - began, 1)
        print(f"setup: {report['setup_seconds']} s", flush=True)
        probe, extra = extra[0], extra[1:]
        report["sql_statements_per_request"] = statements_per_request(app, probe, probe.token)
        print("SQL statements per request:", report["sql_statements_per_request"], flush=True)

        servers = [
            stack.start_gunicorn(
                "app", "testing_center:create_app()", APP_PORT, settings, env, logs
            ),
            stack.start_gunicorn(
                "bare", "benchmarks.bare_app:create_app()", BARE_PORT, settings, env, logs
            ),
            stack.start_process(
                "scheduler", [*stack.TESTING_CENTER, "scheduler", "--interval", "30"], env, logs
            ),
        ]
        app_server, bare_server, scheduler = servers
        app_pids = app_server.pids
        if args.start_workers:
            start_settings = stack.GunicornSettings(
                workers=args.start_workers,
                threads=args.start_threads,
                worker_class=args.worker_class,
            )
            report["start_pool"] = {
                **start_settings.describe(),
                "niceness": args.start_niceness,
                "serves": sorted(start_pool_serves(args)),
            }
            start_server = stack.start_gunicorn(
                "app-starts",
                "testing_center:create_app()",
                START_PORT,
                start_settings,
                env,
                logs,
                niceness=args.start_niceness,
            )
            servers.append(start_server)

            def app_pids() -> list[int]:
                return app_server.pids() + start_server.pids()

        meter_groups = {
            "app_gunicorn": app_pids,
            "bare_gunicorn": bare_server.pids,
            "scheduler": scheduler.pids,
            "postgres": lambda: stack.postgres_backends(database),
            "load_generator": lambda: [os.getpid()],
        }
        if args.start_workers:
            meter_groups["start_pool"] = start_server.pids  # also in app_gunicorn
        try:
            run_phases(
                args,
                report,
                pattern,
                candidates,
                extra,
                bare_tokens,
                bare_saturation,
                meter_groups,
                url,
            )
        finally:
            for server in servers:
                server.stop()
            scheduler_log = scheduler.log.read_text()
            report["scheduler_log_tail"] = scheduler_log.splitlines()[-5:]
            app_log = "".join(s.log.read_text() for s in servers if s.name.startswith("app"))
            report["app_log_errors"] = [
                line for line in app_log.splitlines() if "Error" in line or "CRITICAL" in line
            ][:20]
    stack.write_record(args.out, report)
    print_report(report)
    print(f"written to {args.out}")


def run_phases(
    args: argparse.Namespace,
    report: dict[str, Any],
    pattern: Pattern,
    candidates: list[Candidate],
    extra: list[Candidate],
    bare_tokens: dict[int, str],
    bare_saturation: dict[int, str],
    meter_groups: dict[str, Any],
    url: str,
) -> None:
    sample = [c for c in candidates if c.token is None]
    tokens = {c.user_id: c.token for c in candidates + extra if c.token}
    print(f"logins: {len(sample)} over HTTP, {len(tokens)} pre-issued", flush=True)
    connect = Connections(keep_alive=not args.connection_per_request)
    meter = stack.CpuMeter(meter_groups)
    meter.start()
    logged_in, report["logins"] = asyncio.run(log_in(connect, sample, args.login_concurrency))
    report["logins"]["cpu"] = meter.stop()
    tokens.update(logged_in)
    print(json.dumps(report["logins"]), flush=True)
    report["logins"]["pre_issued_tokens"] = len(candidates) - len(sample)

    print(f"exam: {len(candidates)} candidates, time scale {args.time_scale}", flush=True)
    generator: dict[str, Any] = {}
    with quiet_generator(generator) as watch:
        meter.start()
        timeline = stack.CpuTimeline(meter_groups)
        timeline.start()
        recorder, seconds = asyncio.run(
            exam(
                connect,
                watch,
                candidates,
                tokens,
                pattern,
                args.connections,
                args.seed,
                start_pool_serves(args),
                args.start_timeout,
            )
        )
        report["exam"] = {**recorder.summary(seconds), "cpu": meter.stop()}
        report["exam"]["cpu_by_minute"] = timeline.stop()
    report["exam"]["load_generator"] = generator
    report["exam"]["offered_save_rate_per_second"] = round(
        len(candidates) * args.time_scale / (sum(THINK_SECONDS) / 2), 1
    )
    print(json.dumps(report["exam"]["endpoints"].get("save", {})), flush=True)

    items = max(len(recorder.latencies["save"]) // max(len(candidates), 1), 1)
    bare_seconds = args.bare_seconds or args.duration or min(seconds, 600.0)
    print(f"bare stack at the same rate for {bare_seconds:.0f} s", flush=True)
    bare_generator: dict[str, Any] = {}
    with quiet_generator(bare_generator) as watch:
        meter.start()
        bare_recorder, bare_window = asyncio.run(
            bare_same_rate(
                connect,
                watch,
                bare_tokens,
                items + 60,
                pattern,
                bare_seconds,
                args.connections,
                args.seed,
            )
        )
        report["bare_same_rate"] = {**bare_recorder.summary(bare_window), "cpu": meter.stop()}
    report["bare_same_rate"]["load_generator"] = bare_generator

    print(f"saturation: {args.concurrency} clients, {args.repeats} rounds", flush=True)
    targets = asyncio.run(prepare_app_targets(connect, extra, tokens))
    bare_targets = [
        SaturationTarget(str(user_id), token, BARE_ITEMS)
        for user_id, token in bare_saturation.items()
    ]
    rounds: dict[str, list[float]] = {"app": [], "bare": []}
    cpu: dict[str, list[dict]] = {"app": [], "bare": []}
    saturation_recorders = {"app": Recorder(), "bare": Recorder()}
    for _ in range(args.repeats):
        for name, port, chosen in (("app", APP_PORT, targets), ("bare", BARE_PORT, bare_targets)):
            meter.start()
            rate = asyncio.run(
                saturate(
                    connect,
                    port,
                    chosen,
                    args.saturation_seconds,
                    2.0,
                    saturation_recorders[name],
                    bare=name == "bare",
                )
            )
            cpu[name].append(meter.stop())
            rounds[name].append(round(rate, 1))
            print(f"  {name}: {rate:.1f} saves/s", flush=True)
    app_median, bare_median = stack.median(rounds["app"]), stack.median(rounds["bare"])
    report["saturation"] = {
        "concurrency": args.concurrency,
        "seconds_per_round": args.saturation_seconds,
        "app_saves_per_second": rounds["app"],
        "bare_saves_per_second": rounds["bare"],
        "app_median": app_median,
        "bare_median": bare_median,
        "ratio": round(app_median / bare_median, 3) if bare_median else None,
        "app_latency": stack.latency_summary(saturation_recorders["app"].latencies["save"]),
        "bare_latency": stack.latency_summary(saturation_recorders["bare"].latencies["save"]),
        "app_errors": saturation_recorders["app"].summary(1)["errors"],
        "bare_errors": saturation_recorders["bare"].summary(1)["errors"],
        "cpu_app_rounds": cpu["app"],
        "cpu_bare_rounds": cpu["bare"],
    }
    report["acknowledged_saves"] = {
        "app": check_app_acks(url, [recorder, saturation_recorders["app"]]),
        "bare": check_bare_acks(url, [bare_recorder, saturation_recorders["bare"]]),
    }


def print_report(report: dict[str, Any]) -> None:
    def table(title: str, phase: dict[str, Any]) -> None:
        print(f"\n{title} (window {phase['window_seconds']} s)")
        print(f"  {'endpoint':8} {'count':>7} {'req/s':>7} {'p50':>8} {'p95':>8} {'p99':>8}")
        for name in TIMED:
            if name in phase["endpoints"]:
                e = phase["endpoints"][name]
                print(
                    f"  {name:8} {e['count']:7} {e['per_second']:7} {e['p50_ms']:7}ms "
                    f"{e['p95_ms']:7}ms {e['p99_ms']:7}ms"
                )
        print(f"  errors: {phase['errors'] or 'none'}")
        for name in ("start", "save"):
            rows = phase.get("by_minute", {}).get(name, [])
            if len(rows) > 1:
                cells = [f"{r['minute']}: {r['count']} p95 {r['p95_ms']:.0f}" for r in rows]
                print(f"  {name} by minute (n, p95 ms): " + "; ".join(cells))
        if "cpu" in phase:
            print(f"  CPU (cores): {phase['cpu']}")
        if "load_generator" in phase:
            generator = phase["load_generator"]
            lags = "; ".join(
                f"{m['minute']}: max {m['max_ms']:.0f}, {m['late_over_50_ms']} over 50"
                for m in generator["loop_lag_by_minute"]
            )
            print(
                f"  load generator: GC {generator['gc_seconds']} s, longest pause "
                f"{generator['gc_longest_pause_ms']} ms, {generator['gc_full_collections']} "
                f"full; event loop late by minute (ms): {lags}"
            )
        for minute, cpu in enumerate(phase.get("cpu_by_minute", [])):
            busiest = cpu["app_gunicorn_busiest_cores"][:4]
            print(
                f"    minute {minute}: app {cpu['app_gunicorn_cores']} (busiest {busiest}, "
                f"start pool {cpu.get('start_pool_cores', 0.0)}), "
                f"postgres {cpu['postgres_cores']}, machine {cpu['machine_busy_cores']} "
                f"(steal {cpu['machine_steal_cores']})"
            )

    print("\n==== exam day ====")
    print("SQL statements per request:", report.get("sql_statements_per_request"))
    if "logins" in report:
        table("logins", report["logins"])
    if "exam" in report:
        table("exam", report["exam"])
        print(f"  offered save rate: {report['exam']['offered_save_rate_per_second']}/s")
    if "bare_same_rate" in report:
        table("bare stack, same rate", report["bare_same_rate"])
    if "saturation" in report:
        s = report["saturation"]
        print(
            f"\nsaturation, {s['concurrency']} clients: app {s['app_saves_per_second']} "
            f"(median {s['app_median']}), bare {s['bare_saves_per_second']} "
            f"(median {s['bare_median']}); ratio {s['ratio']}"
        )
        print(f"  app latency {s['app_latency']}\n  bare latency {s['bare_latency']}")
        print(f"  errors: app {s['app_errors'] or 'none'}, bare {s['bare_errors'] or 'none'}")
    if "acknowledged_saves" in report:
        print("\nacknowledged saves checked against the database:", report["acknowledged_saves"])


if __name__ == "__main__":
    main()
