"""Shipped content and demo accounts, loaded idempotently."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exam_templates.services import BLUEPRINTS_DIR, load_templates, read_template_documents
from item_bank.media import process_media_cached
from item_bank.services import SAMPLES_DIR, ImportReport, import_bundles, read_yaml_bundle
from testing_center.accounts.models import Role, User
from testing_center.accounts.services import CandidateDetails, create_user, register_candidate

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - published demo credential, demo data only
DEMO_CANDIDATE = CandidateDetails(
    email="candidate@demo.test",
    password=DEMO_PASSWORD,
    full_name="Aziza Karimova",
    date_of_birth=dt.date(2000, 4, 12),
    nationality="UZ",
    id_document_number="FA1234567",
)


@dataclass(frozen=True)
class SeedReport:
    templates_added: int
    items: ImportReport


def seed_content(
    session: Session, now: dt.datetime, samples: Iterable[str] | None = None
) -> SeedReport:
    """Load the shipped templates and the sample bank (approved); repeating adds nothing.

    ``samples`` names sample files (without ``.yaml``) to load instead of all of them.
    """
    paths = sorted(SAMPLES_DIR.glob("*.yaml"))
    if samples is not None:
        paths = [SAMPLES_DIR / f"{name}.yaml" for name in samples]
    bundles = [read_yaml_bundle(path) for path in paths]
    items = import_bundles(
        session, bundles, status="approved", now=now, process=process_media_cached
    )
    added = load_templates(
        session, read_template_documents(sorted(BLUEPRINTS_DIR.glob("*.yaml"))), now=now
    )
    return SeedReport(templates_added=added, items=items)


def ensure_demo_accounts(session: Session, now: dt.datetime) -> list[tuple[str, str]]:
    """Create one demo account per role if missing; return (role, e-mail) pairs."""
    accounts = []
    for role in Role:
        email = DEMO_CANDIDATE.email if role is Role.CANDIDATE else f"{role.value}@demo.test"
        if session.scalar(select(User).where(User.email == email)) is None:
            if role is Role.CANDIDATE:
                register_candidate(session, DEMO_CANDIDATE, now)
            else:
                create_user(session, email=email, password=DEMO_PASSWORD, role=role, now=now)
        accounts.append((role.value, email))
    return accounts
