"""Form assembly: draw one candidate's items from the bank according to a blueprint.

Pure and seedable: the same blueprint, pool and seed give the same form, so a form can
be reproduced for an appeal. The result is frozen into the attempt and never
re-assembled.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exam_templates.blueprint import Blueprint
from exam_templates.errors import AssemblyError
from item_bank.services import PoolEntry


@dataclass(frozen=True)
class AssembledItem:
    """One item of a form: the version shown and the order its options are shown in."""

    version_id: int
    item_type: str
    option_order: tuple[str, ...]


@dataclass(frozen=True)
class AssembledSection:
    code: str
    items: tuple[AssembledItem, ...]


@dataclass(frozen=True)
class AssembledForm:
    seed: int
    sections: tuple[AssembledSection, ...]


def check_pools(blueprint: Blueprint, pools: Mapping[str, Sequence[PoolEntry]]) -> None:
    """Raise ``AssemblyError`` naming the first section the bank cannot fill."""
    for section in blueprint.sections:
        available = len(pools.get(section.code, ()))
        if available < section.count:
            filters = ", ".join(f"{k}={v}" for k, v in sorted(section.filters.items()))
            raise AssemblyError(
                f"section {section.code} needs {section.count} approved items "
                f"({filters}); the bank has {available}"
            )


def assemble_form(
    blueprint: Blueprint, pools: Mapping[str, Sequence[PoolEntry]], seed: int
) -> AssembledForm:
    """Assemble a form: for each section draw ``count`` items, shuffle as the blueprint says."""
    check_pools(blueprint, pools)
    rng = random.Random(seed)  # noqa: S311 - reproducible selection, not a secret
    sections = []
    used: set[int] = set()
    for section in blueprint.sections:
        candidates = [entry for entry in pools[section.code] if entry.item_id not in used]
        if len(candidates) < section.count:
            raise AssemblyError(
                f"section {section.code} shares items with an earlier section and is left "
                f"with {len(candidates)} of the {section.count} it needs"
            )
        chosen = rng.sample(candidates, section.count)
        if not blueprint.shuffle_items:
            chosen.sort(key=lambda entry: entry.item_ref)
        used.update(entry.item_id for entry in chosen)
        items = []
        for entry in chosen:
            order = list(entry.option_ids)
            if blueprint.shuffle_options:
                rng.shuffle(order)
            items.append(AssembledItem(entry.version_id, entry.item_type, tuple(order)))
        sections.append(AssembledSection(section.code, tuple(items)))
    return AssembledForm(seed=seed, sections=tuple(sections))
