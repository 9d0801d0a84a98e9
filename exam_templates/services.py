"""Loading templates into the database and building forms for attempts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from exam_templates.assembly import AssembledForm, PartKey, assemble_form, check_pools
from exam_templates.blueprint import Blueprint, parse_blueprint
from exam_templates.errors import AssemblyError, InvalidTemplate
from exam_templates.models import ExamTemplate
from item_bank.revision import current_revision
from item_bank.services import PoolEntry, approved_pool, enemy_pairs

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


def pools_for(session: Session, blueprint: Blueprint) -> dict[PartKey, list[PoolEntry]]:
    """Return, per part, the approved items its filters admit (one query per filter set)."""
    by_filters: dict[tuple, list[PoolEntry]] = {}
    pools = {}
    for i, section in enumerate(blueprint.sections):
        for j, part in enumerate(section.parts):
            key = tuple(sorted(part.filters.items()))
            if key not in by_filters:
                by_filters[key] = approved_pool(session, part.filters)
            pools[(i, j)] = by_filters[key]
    return pools


@dataclass(frozen=True)
class FormPools:
    """What assembling a template's forms reads from the bank: its parts' pools, the ids
    of their items and the enemy pairs among them. Shared by readers, so read-only."""

    pools: Mapping[PartKey, Sequence[PoolEntry]]
    item_ids: frozenset[int]
    enemies: frozenset[tuple[int, int]]


def read_form_pools(session: Session, blueprint: Blueprint) -> FormPools:
    """Read a template's pools and enemy pairs from the database."""
    pools = {key: tuple(pool) for key, pool in pools_for(session, blueprint).items()}
    ids = frozenset(entry.item_id for pool in pools.values() for entry in pool)
    return FormPools(MappingProxyType(pools), ids, frozenset(enemy_pairs(session, ids)))


class PoolCache:
    """Each template's ``FormPools`` per process, kept until the bank's revision changes.

    Reading the pools of a JLPT-style template from a 20,000-item bank takes about 200 ms
    (benchmarks/README.md, assembly), yet the bank changes only when items are imported,
    approved, retired or edited. Every use reads the bank's revision token first, one
    primary-key read (``item_bank.revision``), and reuses the entry only when it was
    read under that same token; so a change committed by any process or host is seen
    by the next start everywhere, and nothing is shared between processes but the
    database. Without a token row (a schema made without migrations) nothing is kept.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple, tuple[str, FormPools]] = {}

    def get(self, session: Session, template: ExamTemplate, blueprint: Blueprint) -> FormPools:
        """The template's pools as of the current revision (read before the pools, so an
        entry is never older than its token)."""
        revision = current_revision(session)
        key = (str(session.get_bind().url), template.id, template.code, template.version)
        held = self.entries.get(key)
        if held is not None and revision is not None and held[0] == revision:
            return held[1]
        pools = read_form_pools(session, blueprint)
        if revision is not None:
            self.entries[key] = (revision, pools)
        return pools


FORM_POOLS = PoolCache()  # per process: filled on first use, checked on every use


def catalogue(session: Session) -> list[CatalogueEntry]:
    """Return every current template with its availability for assembly."""
    entries = []
    for template in current_templates(session):
        blueprint = parse_blueprint(template.definition)
        try:
            check_pools(blueprint, FORM_POOLS.get(session, template, blueprint).pools)
        except AssemblyError as error:
            entries.append(CatalogueEntry(template, blueprint, False, str(error)))
        else:
            entries.append(CatalogueEntry(template, blueprint, True, None))
    return entries


def build_form(
    session: Session,
    template: ExamTemplate,
    seed: int,
    exposure: Callable[[frozenset[int]], Mapping[int, int]] | None = None,
) -> AssembledForm:
    """Assemble a form of ``template`` from the current bank, avoiding enemy pairs.

    The pools come from ``FORM_POOLS``, read again only after the bank changed.
    ``exposure`` returns how often each candidate item was shown already; the attempts
    side knows that, so it is passed in rather than looked up here.
    """
    blueprint = parse_blueprint(template.definition)
    form_pools = FORM_POOLS.get(session, template, blueprint)
    return assemble_form(
        blueprint,
        form_pools.pools,
        seed,
        enemies=form_pools.enemies,
        exposure=exposure(form_pools.item_ids) if exposure else {},
    )
