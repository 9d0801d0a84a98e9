"""Loading templates into the database and building forms for attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam_templates.assembly import AssembledForm, assemble_form, check_pools
from exam_templates.blueprint import Blueprint, parse_blueprint
from exam_templates.errors import AssemblyError, InvalidTemplate
from exam_templates.models import ExamTemplate
from item_bank.services import PoolEntry, approved_pool

BLUEPRINTS_DIR = Path(__file__).parent / "blueprints"


@dataclass(frozen=True)
class CatalogueEntry:
    """A template as the catalogue lists it, with whether the bank can assemble it now."""

    template: ExamTemplate
    blueprint: Blueprint
    available: bool
    unavailable_reason: str | None


def read_template_documents(paths: Iterable[Path]) -> list[dict]:
    """Return the YAML documents of the given template files."""
    documents = []
    for path in paths:
        try:
            documents.append(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as error:
            raise InvalidTemplate([f"{path}: cannot be read as YAML ({error})"]) from error
    return documents


def load_templates(session: Session, documents: Iterable[dict], *, now: dt.datetime) -> int:
    """Store every new (code, version); return how many were added.

    All documents are validated first. A stored version whose document differs from the
    file is refused: attempts point at it, so a change must come as a new version.
    """
    parsed = [(parse_blueprint(document), document) for document in documents]
    added = 0
    for blueprint, document in parsed:
        stored = session.scalar(
            select(ExamTemplate).filter_by(code=blueprint.code, version=blueprint.version)
        )
        if stored is None:
            session.add(
                ExamTemplate(
                    code=blueprint.code,
                    version=blueprint.version,
                    definition=document,
                    created_at=now,
                )
            )
            added += 1
        elif stored.definition != document:
            raise InvalidTemplate(
                [
                    f"{blueprint.code} version {blueprint.version} is already loaded with other "
                    "content; give the changed template a new version"
                ]
            )
    session.flush()
    return added


def current_templates(session: Session) -> list[ExamTemplate]:
    """Return the newest active version of each template code, ordered by code."""
    newest = (
        select(ExamTemplate.code, func.max(ExamTemplate.version).label("version"))
        .where(ExamTemplate.is_active)
        .group_by(ExamTemplate.code)
        .subquery()
    )
    query = (
        select(ExamTemplate)
        .join(
            newest,
            (newest.c.code == ExamTemplate.code) & (newest.c.version == ExamTemplate.version),
        )
        .order_by(ExamTemplate.code)
    )
    return list(session.scalars(query))


def pools_for(session: Session, blueprint: Blueprint) -> dict[str, list[PoolEntry]]:
    """Return, per section, the approved items its selection filters admit."""
    return {section.code: approved_pool(session, section.filters) for section in blueprint.sections}


def catalogue(session: Session) -> list[CatalogueEntry]:
    """Return every current template with its availability for assembly."""
    entries = []
    for template in current_templates(session):
        blueprint = parse_blueprint(template.definition)
        try:
            check_pools(blueprint, pools_for(session, blueprint))
        except AssemblyError as error:
            entries.append(CatalogueEntry(template, blueprint, False, str(error)))
        else:
            entries.append(CatalogueEntry(template, blueprint, True, None))
    return entries


def build_form(session: Session, template: ExamTemplate, seed: int) -> AssembledForm:
    """Assemble a form of ``template`` from the current bank."""
    blueprint = parse_blueprint(template.definition)
    return assemble_form(blueprint, pools_for(session, blueprint), seed)
