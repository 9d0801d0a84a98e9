"""Drill: back up with ``pg_dump``, lose the database, restore into a fresh one, exactly
as README.md "Backup and restore" says.

The world: a released sitting with finished attempts, certificates (one revoked) and
sent notices. Checks on the restored database: every table holds the same rows as
before, migrations are at the same revision (``db upgrade`` does nothing), every
certificate token verifies against the restored installation's keys (``testing-center
certificates verify`` for a PDF and a token, the library for the rest), the public status
lookup answers (valid, revoked, and 404 for a wrong date of birth), and a candidate's
token still reads their result.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import tarfile
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from drillkit import (
    Report,
    app_for,
    build_world,
    cli_command,
    migrate,
    process_env,
    scratch_folder,
    sit_exams,
    temporary_database,
    utcnow,
)

from certificates.verify import verify_document
from item_bank.db import Base
from testing_center.accounts.models import User
from testing_center.attempts.models import Attempt
from testing_center.certification import services as certs
from testing_center.certification.models import Certificate
from testing_center.config import database_uri
from testing_center.extensions import db

CANDIDATES = 16


def row_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(database_uri(url))
    with engine.connect() as connection:
        counts = {
            table.name: connection.scalar(sa.select(sa.func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
        counts["alembic_version"] = connection.scalar(
            sa.text("SELECT version_num FROM alembic_version")
        )
    engine.dispose()
    return counts


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def libpq_url(url: str) -> str:
    """The URL as libpq's tools (pg_dump, pg_restore) take it: no SQLAlchemy driver."""
    return (
        sa.engine.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


def main() -> None:
    report = Report("backup with pg_dump, restore into a fresh database")
    now = utcnow()
    starts_at = now - dt.timedelta(hours=3)
    with scratch_folder("backup") as folder:
        source_instance, restored_instance = folder / "instance", folder / "restored"
        source_instance.mkdir()
        with temporary_database("source") as source_url:
            app = app_for(source_url, source_instance)
            migrate(app)
            world = build_world(
                app,
                candidates=CANDIDATES,
                starts_at=starts_at,
                results_release_at=starts_at + dt.timedelta(hours=2),
            )
            sit_exams(app, world, starts_at + dt.timedelta(minutes=2))
            cycle = run(
                cli_command("scheduler", "--once"), process_env(source_url, source_instance)
            )
            report.check(cycle.returncode == 0, "a scheduler cycle finished, released and issued")
            revoked, revoked_holder = revoke_one(app)
            before = row_counts(source_url)
            rows = sum(v for v in before.values() if isinstance(v, int))
            report.note(
                f"{before['certificates']} certificates, {before['attempts']} attempts, "
                f"{before['notifications']} notices, {rows} rows in all"
            )
            # -- the backup, as README.md says: the database, and the instance's keys
            dump = folder / "testing_center.dump"
            dumped = run(["pg_dump", "--format=custom", f"--file={dump}", libpq_url(source_url)])
            report.check(
                dumped.returncode == 0,
                f"pg_dump wrote the backup {dumped.stderr[-300:]}",
            )
            keys = folder / "certificate-keys.tar"
            with tarfile.open(keys, "w") as archive:
                archive.add(source_instance / "certificate-keys", arcname="certificate-keys")
        report.note("the source database is dropped: only the backup is left")
        # -- the restore: a fresh database, pg_restore, the keys back in the instance
        with temporary_database("restored") as restored_url:
            restored = run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--dbname={libpq_url(restored_url)}",
                    str(dump),
                ]
            )
            report.check(restored.returncode == 0, f"pg_restore succeeded {restored.stderr[-300:]}")
            restored_instance.mkdir()
            with tarfile.open(keys) as archive:
                archive.extractall(restored_instance, filter="data")
            (restored_instance / "certificate-keys").chmod(0o700)
            env = process_env(restored_url, restored_instance)
            upgraded = run(cli_command("db", "upgrade"), env)
            report.check(upgraded.returncode == 0, "testing-center db upgrade runs on the restore")
            after = row_counts(restored_url)
            differ = {
                name: (before[name], after.get(name))
                for name in before
                if before[name] != after.get(name)
            }
            report.check(not differ, f"every table holds the same rows, same revision ({differ})")
            check_certificates(report, restored_url, restored_instance, env, revoked)
            seat = next(seat for seat in world.seats if seat.user_id != revoked_holder)
            check_candidate_result(report, restored_url, restored_instance, seat)
    report.done()


def revoke_one(app) -> tuple[str, int]:
    with app.app_context():
        operator = db.session.scalar(sa.select(User).where(User.email == "operator@drill.test"))
        number = db.session.scalars(sa.select(Certificate.number).order_by(Certificate.id)).first()
        certs.revoke(
            db.session,
            number=number,
            category="misconduct",
            reason="drill",
            actor=operator,
            now=utcnow(),
        )
        user_id = db.session.scalar(
            sa.select(Certificate.user_id).where(Certificate.number == number)
        )
        db.session.commit()
        db.engine.dispose()
    return number, user_id


def check_certificates(report: Report, url: str, instance, env, revoked: str) -> None:
    app = app_for(url, instance)
    app.config["VERIFY_RATE_LIMIT"] = 10_000
    client = app.test_client()
    with app.app_context():
        rows = db.session.execute(
            sa.select(Certificate, User).join(User, User.id == Certificate.user_id)
        ).all()
        births = {user.id: user.profile.date_of_birth for _, user in rows}
        jwks = certs.key_ring(utcnow()).jwks()
        checked = [verify_document(c.token, jwks, utcnow()) for c, _ in rows]
        sample = next(c for c, _ in rows if c.number != revoked)
        pdf = instance / "sample.pdf"
        pdf.write_bytes(certs.certificate_pdf(db.session, sample))
        token = sample.token
        numbers = [(c.number, c.user_id, c.status) for c, _ in rows]
        db.session.rollback()
    report.check(
        len(checked) == CANDIDATES and all(result.is_valid for result in checked),
        f"all {len(checked)} certificate tokens verify with the restored keys",
    )
    documents = {"PDF": str(pdf), "token": token}
    with ThreadPoolExecutor() as pool:  # two processes at once: each starts the app
        runs = dict(
            zip(
                documents,
                pool.map(
                    lambda doc: run(cli_command("certificates", "verify", doc), env),
                    documents.values(),
                ),
                strict=True,
            )
        )
    for label, verified in runs.items():
        body = verified.stdout[: verified.stdout.rfind("}") + 1]
        valid = verified.returncode == 0 and json.loads(body or "{}").get("valid") is not False
        report.check(valid, f"testing-center certificates verify accepts a restored {label}")
    answers = {}
    for number, user_id, status in numbers:
        response = client.get(
            f"/api/v1/certificates/{number}?date_of_birth={births[user_id].isoformat()}"
        )
        answers[number] = (response.status_code, (response.json or {}).get("status"), status)
    report.check(
        all(code == 200 and shown == stored for code, shown, stored in answers.values()),
        "every status lookup answers with the stored status",
    )
    report.check(answers[revoked][1] == "revoked", "the revoked certificate shows as revoked")
    number, user_id, _ = numbers[0]
    wrong = births[user_id] + dt.timedelta(days=1)
    missing = client.get(f"/api/v1/certificates/{number}?date_of_birth={wrong.isoformat()}")
    report.check(missing.status_code == 404, "a wrong date of birth still answers 404")
    with app.app_context():
        db.engine.dispose()


def check_candidate_result(report: Report, url: str, instance, seat) -> None:
    app = app_for(url, instance)
    client = app.test_client()
    with app.app_context():
        attempt_id = db.session.scalar(
            sa.select(Attempt.id).where(Attempt.booking_id == seat.booking_id)
        )
        db.session.rollback()
    result = client.get(
        f"/api/v1/attempts/{attempt_id}/result", headers={"Authorization": f"Bearer {seat.token}"}
    )
    report.check(
        result.status_code == 200
        and result.json["released"]
        and result.json["total"] is not None
        and result.json["certificate_number"],
        "a candidate's token still reads their released result and certificate number",
    )
    with app.app_context():
        db.engine.dispose()


if __name__ == "__main__":
    main()
