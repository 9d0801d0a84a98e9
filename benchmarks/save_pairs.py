"""Paired A/B of one answer save's CPU, in one process (issue 8).

Run from the repository root, after ``pip install -e ".[postgres,bench]"``::

    python -m benchmarks.save_pairs --variant no-pre-ping --saves 1000

On this shared machine the speed of the same run changed by a third within twenty
minutes, so two runs one after the other cannot show a change of a few per cent. Here
the saves of the two variants alternate (ABBA), through Flask's test client, on the same
attempts of a fresh PostgreSQL database (``--server``); the report is the median CPU
(``time.process_time``) of each and their ratio. Variants, each against the shipped
application:

- ``no-pre-ping``: a second application whose engine has ``pool_pre_ping=False`` (the
  pool does not check a connection with a round trip at every checkout);
- ``schema-per-request``: request schemas built for every request, as webargs does by
  default, instead of once per class (``testing_center.api.blueprint``);
- ``user-per-token``: the bearer token's holder loaded as a ``User`` object through the
  ORM, as before ``accounts.services.token_holder`` read it as a row.

PostgreSQL's own CPU is not in these figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from webargs.flaskparser import FlaskParser

from benchmarks import stack
from benchmarks.exam_day import answer_for, form_items, simulated

DEFAULT_OUT = Path(__file__).parent / "results" / "save_pairs.json"
ATTEMPTS = 10
ITEMS_EACH = 10


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", choices=("no-pre-ping", *PATCHES), required=True)
    parser.add_argument("--saves", type=int, default=1000, help="saves of each variant")
    parser.add_argument("--server", default=stack.DEFAULT_SERVER_URL)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


def variant_app(variant: str, shipped: Flask, url: str, folder: str) -> Flask:
    """The application the variant's saves go through."""
    if variant in PATCHES:
        return shipped  # same application, patched around each of the variant's saves
    from testing_center import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "pairs-" + "x" * 40,
            "MAIL_FOLDER": f"{folder}/mail",
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "hide_parameters": True},
        }
    )


@contextlib.contextmanager
def patched(owner: Any, name: str, replacement: Any) -> Iterator[None]:
    """Replace ``owner.name`` while the block runs."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, original)


def schemas_per_request() -> contextlib.AbstractContextManager[None]:
    """The API's parser builds a schema for every request (webargs' own)."""
    from testing_center.api.blueprint import SchemaOnceParser

    return patched(SchemaOnceParser, "_get_schema", FlaskParser._get_schema)


def user_per_token() -> contextlib.AbstractContextManager[None]:
    """The token's holder is loaded as a ``User`` object, then reduced to a principal
    (the query built once, as it was)."""
    from sqlalchemy import bindparam, select

    from testing_center import access
    from testing_center.accounts.models import ApiToken, Principal, User
    from testing_center.accounts.services import token_digest

    query = (
        select(User, ApiToken.expires_at, ApiToken.revoked_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_hash == bindparam("digest"))
    )

    def holder_as_object(session, token, now):
        row = session.execute(query, {"digest": token_digest(token)}).one_or_none()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        return Principal(row.User.id, row.User.role) if row.User.is_enabled else None

    return patched(access, "token_holder", holder_as_object)


# Variants that patch the shipped application around their saves.
PATCHES = {"schema-per-request": schemas_per_request, "user-per-token": user_per_token}


def abba(number: int) -> tuple[str, str]:
    """Which variant saves first in round ``number``: alternately, so neither always
    follows the other (caches, the garbage collector's rhythm)."""
    return ("shipped", "variant") if number % 2 == 0 else ("variant", "shipped")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from benchmarks.world import build_exam_day, migrated_app
    from testing_center.extensions import db

    report: dict[str, Any] = stack.record_header("save_pairs", args)
    with migrated_app(args.server, "pairs-") as (shipped, url, folder):
        other = variant_app(args.variant, shipped, url, folder)
        now = dt.datetime.now(dt.UTC)
        candidates, _ = build_exam_day(
            shipped, ATTEMPTS, login_sample=0, now=now, progress=lambda _: None
        )
        clients = {"shipped": shipped.test_client(), "variant": other.test_client()}
        attempts = []
        for candidate in candidates:  # login_sample=0: each has a token already
            headers = {"Authorization": f"Bearer {candidate.token}"}
            started = clients["shipped"].post(
                "/api/v1/attempts", json={"booking_id": candidate.booking_id}, headers=headers
            )
            assert started.status_code == 201, started.json
            attempts.append((headers, started.json))
        rng = simulated(1)
        sequence = 0

        def timed_save(name: str, number: int) -> float:
            nonlocal sequence
            sequence += 1
            headers, state = attempts[number % ATTEMPTS]
            item = form_items(state)[number % ITEMS_EACH]
            body = {"response": answer_for(item, rng), "client_seq": sequence}
            url_path = f"/api/v1/attempts/{state['id']}/responses/{item['ref']}"
            patch = PATCHES.get(args.variant) if name == "variant" else None
            with patch() if patch else contextlib.nullcontext():
                cpu = time.process_time()
                saved = clients[name].put(url_path, json=body, headers=headers)
                spent = time.process_time() - cpu
            assert saved.status_code == 200, saved.json
            return spent

        cpus: dict[str, list[float]] = {"shipped": [], "variant": []}
        for number in range(args.saves):
            for name in abba(number):
                cpus[name].append(timed_save(name, number))
        for app in {id(shipped): shipped, id(other): other}.values():
            with app.app_context():
                db.engine.dispose()
    for name, values in cpus.items():
        report[name] = {
            "saves": len(values),
            "median_cpu_ms": round(stack.median(values) * 1000, 3),
        }
    report["ratio"] = round(
        report["variant"]["median_cpu_ms"] / report["shipped"]["median_cpu_ms"], 3
    )
    stack.write_record(args.out, report)
    print(f"{args.variant}: shipped {report['shipped']}, variant {report['variant']}")
    print(f"CPU ratio, variant / shipped: {report['ratio']}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
