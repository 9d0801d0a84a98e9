"""Certificates: PDFs rendered per second on one core, and public verification latency
against gunicorn + PostgreSQL (issue 8).

Run from the repository root, after ``pip install -e ".[postgres,bench]"``::

    python -m benchmarks.certificates --certificates 200 --lookups 3000

Setup (not measured): a fresh PostgreSQL database, migrated with ``testing-center db
upgrade``; candidates booked, checked in with a photo, and sitting the JFT-Basic-style
exam through the services (``start_proctored``, ``save_response``, ``finish_attempt``);
each finished attempt gets its certificate from ``issue_certificate`` (number, signed
token, facts with the photo).

Rendering: the process is pinned to one CPU; ``--renders`` certificates per round are
rendered from the stored facts by ``certificates.document.render_certificate`` (the
pure renderer: fonts subset-embedded, QR code, photo, score chart, XMP token; the QR
link's signature is made beforehand like the facts, one Ed25519 signature); the
median of ``--repeats`` rounds is reported as PDFs per wall second and per CPU second.
One round through ``certification.services.certificate_pdf`` (facts and photo read from
the database per certificate) is reported beside it.

Verification: ``GET /api/v1/certificates/{number}?date_of_birth=...`` against gunicorn
(``TESTING_CENTER_ENV=production``; ``VERIFY_RATE_LIMIT`` raised through the environment,
since every lookup comes from one address unless ``--addresses`` spreads them, as
employers' many addresses would, over that many rate counters), one client at a time
(latency without queueing) and then ``--concurrency`` clients (closed loop: as fast as
answers come, so both cores are busy and p99 is mostly queueing), then open-loop at
each of ``--rates`` lookups a second (random arrivals), through the load
generator's small HTTP client (``benchmarks/http_client.py``; httpx cost 3.7 ms of CPU
per request on the same two cores); a tenth of the lookups give a wrong date
of birth (404, the same answer as an unknown number). Every lookup writes its log row
and counts against the client's rate limit in the same transaction.

Baseline, measured in the same run: ``GET /healthz`` (the app and one ``SELECT 1``) sent
by one client, and open-loop at each rate right after the lookups at that rate, with
the same arrival times. The baseline shows what the machine and the stack add to the
simplest request at each rate, apart from what a lookup itself costs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import stack
from benchmarks.http_client import Client
from benchmarks.world import build_exam_day, portrait_jpeg, setup_app

DEFAULT_OUT = Path(__file__).parent / "results" / "certificates.json"
PORT = 8393
OPEN_LOOP_CONNECTIONS = 64  # a proxy's upstream connections; more lookups wait for one
TARGET_PDFS_PER_CPU_SECOND = 40  # issue 8
TARGET_P99_MS = 20


def simulated(seed: Any) -> random.Random:
    """A seeded generator for simulated answers and lookups (not secrets)."""
    return random.Random(seed)  # noqa: S311


def issue_certificates(app, candidates, now: dt.datetime, seed: int) -> list[dict[str, Any]]:
    """Sit, finish and certify every candidate's exam through the services."""
    from testing_center.accounts.models import User
    from testing_center.attempts.models import FinishReason
    from testing_center.attempts.services import finish_attempt, save_response, start_proctored
    from testing_center.certification.services import issue_certificate
    from testing_center.extensions import db

    rng = simulated(seed)
    issued = []
    with app.app_context():
        session = db.session
        for number, candidate in enumerate(candidates, start=1):
            user = session.get(User, candidate.user_id)
            attempt, _ = start_proctored(session, user, candidate.booking_id, now)
            skill = rng.uniform(0.4, 0.95)
            for seq, item in enumerate(list(attempt.items), start=1):
                key = item.item_version.answer_key
                if isinstance(key, str) and rng.random() < skill:
                    save_response(
                        session,
                        user,
                        attempt.id,
                        item.ref,
                        value=key,
                        client_seq=seq,
                        flagged=None,
                        now=now + dt.timedelta(minutes=1),
                    )
            finish_attempt(session, attempt, now + dt.timedelta(minutes=50), FinishReason.CANDIDATE)
            certificate = issue_certificate(session, attempt, now + dt.timedelta(hours=3))
            issued.append(
                {
                    "id": certificate.id,
                    "number": certificate.number,
                    "date_of_birth": candidate.date_of_birth.isoformat(),
                }
            )
            if number % 50 == 0:
                session.commit()
                print(f"certificates: {number}/{len(candidates)}", flush=True)
        session.commit()
    return issued


def measure_rendering(app, issued: list[dict[str, Any]], renders: int, repeats: int) -> dict:
    """Render certificates on one pinned CPU; medians over the rounds."""
    from certificates.document import render_certificate
    from testing_center.certification.models import Certificate
    from testing_center.certification.services import (
        certificate_pdf,
        link_signature,
        public_base_url,
        stored_facts,
    )
    from testing_center.clock import now
    from testing_center.extensions import db

    with app.app_context():
        session = db.session
        certificates = [session.get(Certificate, c["id"]) for c in issued]
        prepared = [
            (stored_facts(session, c), c.token, link_signature(c, now())) for c in certificates
        ]
        base_url = public_base_url()
        cpu = sorted(os.sched_getaffinity(0))[-1]
        everywhere = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        try:
            facts, token, signature = prepared[0]
            sizes = [len(render_certificate(facts, token, base_url, signature))]  # fonts
            rounds = []
            for _ in range(repeats):
                wall, cpu_time = time.perf_counter(), time.process_time()
                for i in range(renders):
                    facts, token, signature = prepared[i % len(prepared)]
                    sizes.append(len(render_certificate(facts, token, base_url, signature)))
                wall = time.perf_counter() - wall
                cpu_time = time.process_time() - cpu_time
                rounds.append(
                    {
                        "per_wall_second": round(renders / wall, 1),
                        "per_cpu_second": round(renders / cpu_time, 1),
                    }
                )
            wall = time.perf_counter()
            cpu_time = time.process_time()
            count = min(renders, len(certificates))
            for certificate in certificates[:count]:
                certificate_pdf(session, certificate)
            service = {
                "renders": count,
                "per_wall_second": round(count / (time.perf_counter() - wall), 1),
                "per_cpu_second": round(count / (time.process_time() - cpu_time), 1),
            }
        finally:
            os.sched_setaffinity(0, everywhere)
        db.engine.dispose()
    return {
        "pinned_cpu": cpu,
        "renders_per_round": renders,
        "rounds": rounds,
        "median_per_wall_second": stack.median([r["per_wall_second"] for r in rounds]),
        "median_per_cpu_second": stack.median([r["per_cpu_second"] for r in rounds]),
        "through_certificate_pdf": service,
        "median_pdf_bytes": int(stack.median(sizes)),
    }


Request = tuple[str, dict[str, str], int]  # path, headers, expected status


async def lookups(plan: list[Request], concurrency: int) -> dict[str, Any]:
    """The requests of ``plan`` from ``concurrency`` clients, each sending its next one
    as soon as its last was answered (a closed loop)."""
    tally = LookupTally()
    queue = iter(plan)
    async with Client("127.0.0.1", PORT, concurrency, timeout=30) as client:

        async def worker() -> None:
            for request in queue:
                await tally.send(client, request, time.monotonic())

        began = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.monotonic() - began
    return {"concurrency": concurrency, **tally.summary(len(plan), seconds)}


async def open_loop_lookups(plan: list[Request], rate: float, seed: int) -> dict[str, Any]:
    """The requests of ``plan`` arriving at random (Poisson) at ``rate`` a second whether
    or not earlier ones were answered, as employers' lookups arrive; the latency counts
    from the moment a request arrived, so a queue at the server shows in it."""
    tally = LookupTally()
    rng = simulated(seed)
    async with Client("127.0.0.1", PORT, OPEN_LOOP_CONNECTIONS, timeout=30) as client:
        began = arrival = time.monotonic()
        pending = []
        for request in plan:
            arrival += rng.expovariate(rate)
            await asyncio.sleep(max(0.0, arrival - time.monotonic()))
            pending.append(asyncio.create_task(tally.send(client, request, arrival)))
        await asyncio.gather(*pending)
        seconds = time.monotonic() - began
    return {"offered_per_second": rate, **tally.summary(len(plan), seconds)}


def lookup_plan(
    issued: list[dict[str, Any]], count: int, seed: int, addresses: int
) -> list[Request]:
    """Verification lookups, each from one of ``addresses`` client addresses (named in
    X-Forwarded-For, which the app reads with ``TRUSTED_PROXIES=1``, as behind a proxy;
    one address: the header is not sent); a tenth give a wrong date of birth."""
    rng = simulated(seed)
    plan = []
    for _ in range(count):
        certificate = rng.choice(issued)
        wrong = rng.random() < 0.1
        birth = "1970-01-01" if wrong else certificate["date_of_birth"]
        n = rng.randrange(addresses)
        address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
        headers = {"X-Forwarded-For": address} if addresses > 1 else {}
        path = f"/api/v1/certificates/{certificate['number']}?date_of_birth={birth}"
        plan.append((path, headers, 404 if wrong else 200))
    return plan


def health_plan(count: int) -> list[Request]:
    """The baseline: ``GET /healthz`` (the app, a pooled connection, ``SELECT 1``), sent
    the same way as the lookups, so what the machine and the stack add to any request
    at that rate shows apart from what a lookup costs."""
    return [("/healthz", {}, 200)] * count


@dataclass
class LookupTally:
    """Latencies and statuses of requests (lookups or the baseline's), and how late the
    generator sent each one.

    An open-loop request's latency counts from its planned arrival; the generator's
    event loop wakes up late by a moment (timer slack, its own work), and that delay
    is in the latency though the server never saw it. ``late`` keeps it apart.
    """

    latencies: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    unexpected: int = 0

    async def send(self, client: Client, request: Request, since: float) -> None:
        path, headers, expected = request
        self.late.append(time.monotonic() - since)
        response = await client.request("GET", path, headers=headers)
        self.latencies.append(time.monotonic() - since)
        self.statuses[str(response.status_code)] += 1
        self.unexpected += response.status_code != expected

    def summary(self, count: int, seconds: float) -> dict[str, Any]:
        return {
            **stack.latency_summary(self.latencies),
            "generator_late": stack.latency_summary(self.late),
            "per_second": round(count / seconds, 1),
            "statuses": dict(self.statuses),
            "unexpected_statuses": self.unexpected,
        }


def latencies(row: dict[str, Any]) -> str:
    """A row's latencies, throughput and statuses, as the report prints them."""
    return (
        f"p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, p99 {row['p99_ms']} ms, "
        f"{row['per_second']}/s, statuses {row['statuses']}"
    )


def rates(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--certificates", type=int, default=200)
    parser.add_argument("--renders", type=int, default=100, help="renders per round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--rates",
        default="",
        help="comma-separated lookup rates per second, each run open-loop after the "
        "closed-loop runs (for example 100,200)",
    )
    parser.add_argument(
        "--addresses",
        type=int,
        default=1,
        help="client addresses the lookups come from (more than 1: through X-Forwarded-For, "
        "the app trusting one proxy)",
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", default=stack.DEFAULT_SERVER_URL)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = stack.GunicornSettings(workers=args.workers, threads=args.threads)
    report: dict[str, Any] = {
        **stack.record_header("certificates", args),
        "gunicorn": settings.describe(),
    }
    with (
        tempfile.TemporaryDirectory(prefix="certificates-") as folder,
        stack.fresh_database(args.server) as url,
    ):
        instance = Path(folder) / "instance"
        instance.mkdir()
        env = stack.app_environment(
            url,
            instance,
            VERIFY_RATE_LIMIT=str(10**9),
            TRUSTED_PROXIES="1" if args.addresses > 1 else "0",
        )
        report["postgresql"] = stack.postgres_settings(url)
        stack.cli(["db", "upgrade"], env)
        os.environ["TESTING_CENTER_INSTANCE"] = str(instance)  # the signing keys' folder
        app = setup_app(url, str(instance))
        now = dt.datetime.now(dt.UTC)
        candidates, _ = build_exam_day(
            app,
            args.certificates,
            login_sample=0,
            now=now,
            photo=portrait_jpeg(),
            progress=lambda message: print(message, flush=True),
        )
        issued = issue_certificates(app, candidates, now, args.seed)
        report["rendering"] = measure_rendering(app, issued, args.renders, args.repeats)
        print("rendering:", json.dumps(report["rendering"]), flush=True)
        server = stack.start_gunicorn(
            "app", "testing_center:create_app()", PORT, settings, env, Path(folder)
        )
        try:
            asyncio.run(lookups(health_plan(100), 1))  # warm up
            asyncio.run(lookups(lookup_plan(issued, 100, args.seed + 1, args.addresses), 1))
            report["verification"] = [
                {
                    "addresses": args.addresses,
                    **asyncio.run(
                        lookups(
                            lookup_plan(
                                issued, args.lookups, args.seed + concurrency, args.addresses
                            ),
                            concurrency,
                        )
                    ),
                }
                for concurrency in sorted({1, args.concurrency})
            ]
            report["baseline"] = asyncio.run(lookups(health_plan(args.lookups), 1))
            report["verification_open_loop"] = []
            report["baseline_open_loop"] = []
            for rate in rates(args.rates):
                plan = lookup_plan(issued, args.lookups, args.seed + int(rate), args.addresses)
                arrivals = args.seed + int(rate) + 1
                report["verification_open_loop"].append(
                    {
                        "addresses": args.addresses,
                        **asyncio.run(open_loop_lookups(plan, rate, arrivals)),
                    }
                )
                report["baseline_open_loop"].append(
                    asyncio.run(open_loop_lookups(health_plan(args.lookups), rate, arrivals))
                )
        finally:
            server.stop()
    targets = {
        f">= {TARGET_PDFS_PER_CPU_SECOND} PDFs per CPU second on one core": (
            report["rendering"]["median_per_cpu_second"] >= TARGET_PDFS_PER_CPU_SECOND
        ),
        **{
            f"verification p99 < {TARGET_P99_MS} ms, {row['concurrency']} client(s)": (
                row["p99_ms"] < TARGET_P99_MS
            )
            for row in report["verification"]
        },
        **{
            f"verification p99 < {TARGET_P99_MS} ms, {row['offered_per_second']} a second": (
                row["p99_ms"] < TARGET_P99_MS
            )
            for row in report["verification_open_loop"]
        },
    }
    report["targets"] = {name: "met" if met else "missed" for name, met in targets.items()}
    stack.write_record(args.out, report)
    rendering = report["rendering"]
    print(
        f"\nPDFs on one core: median {rendering['median_per_wall_second']}/s wall, "
        f"{rendering['median_per_cpu_second']}/CPU-s (rounds {rendering['rounds']}); "
        f"through certificate_pdf: {rendering['through_certificate_pdf']}"
    )
    for row in report["verification"]:
        print(
            f"verification, {row['concurrency']} client(s): {latencies(row)}, "
            f"unexpected {row['unexpected_statuses']}"
        )
    print(f"baseline /healthz, 1 client: {latencies(report['baseline'])}")
    for row, baseline in zip(
        report["verification_open_loop"], report["baseline_open_loop"], strict=True
    ):
        print(
            f"verification, {row['offered_per_second']} a second offered: {latencies(row)}, "
            f"unexpected {row['unexpected_statuses']}; sent late by the generator: "
            f"p50 {row['generator_late']['p50_ms']} ms, p99 {row['generator_late']['p99_ms']} ms"
        )
        print(f"  baseline /healthz at that rate: {latencies(baseline)}")
    for name, verdict in report["targets"].items():
        print(f"target {name}: {verdict}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
