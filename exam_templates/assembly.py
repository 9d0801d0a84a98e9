"""Form assembly: draw one candidate's items from the bank according to a blueprint.

Pure and seedable: the same blueprint, pools, exposure counts and seed give the same
form, so a form can be reproduced for an appeal. Each selection rule ("part") draws
units - a single item, or all items of a group (a passage with its questions) - so that
sets stay whole; enemy items never share a form; ``balance: topic`` spreads a part over
its topics; items shown least often come first (exposure control), ties broken by the
seed. The result is frozen into the attempt and never re-assembled.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exam_templates.blueprint import Blueprint, PartSpec
from exam_templates.errors import AssemblyError
from item_bank.services import PoolEntry

PartKey = tuple[int, int]  # (section index, part index)


@dataclass(frozen=True)
class AssembledItem:
    """One item of a form: the version shown, its option order, where it is scored."""

    version_id: int
    item_type: str
    option_order: tuple[str, ...]
    score_as: str
    item_id: int = 0


@dataclass(frozen=True)
class AssembledSection:
    code: str
    items: tuple[AssembledItem, ...]


@dataclass(frozen=True)
class AssembledForm:
    seed: int
    sections: tuple[AssembledSection, ...]


def describe(part: PartSpec) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(part.filters.items()))


def eligible(part: PartSpec, pool: Sequence[PoolEntry]) -> list[PoolEntry]:
    """The pool entries within the part's difficulty window (all, without one)."""
    if part.p_range is None:
        return list(pool)
    low, high = part.p_range
    return [e for e in pool if e.p is not None and low <= e.p <= high]


def check_pools(blueprint: Blueprint, pools: Mapping[PartKey, Sequence[PoolEntry]]) -> None:
    """Raise ``AssemblyError`` naming the first part the bank cannot fill."""
    for i, section in enumerate(blueprint.sections):
        for j, part in enumerate(section.parts):
            available = len(eligible(part, pools.get((i, j), ())))
            if available < part.count:
                window = f", facility {part.p_range[0]}-{part.p_range[1]}" if part.p_range else ""
                raise AssemblyError(
                    f"section {section.code} needs {part.count} approved items "
                    f"({describe(part)}{window}); the bank has {available}"
                )


def units_of(entries: Sequence[PoolEntry]) -> list[list[PoolEntry]]:
    """Group entries into units: a group's items together (in ref order), others alone."""
    units: dict[str, list[PoolEntry]] = {}
    for entry in sorted(entries, key=lambda e: e.item_ref):
        units.setdefault(entry.group or f"item:{entry.item_id}", []).append(entry)
    return list(units.values())


class Drawer:
    """Draws units for parts while keeping the whole form free of repeats and enemies."""

    def __init__(self, seed: int, enemies: set[tuple[int, int]], exposure: Mapping[int, int]):
        self.rng = random.Random(seed)  # noqa: S311 - reproducible selection, not a secret
        self.enemies = enemies
        self.exposure = exposure
        self.used: set[int] = set()

    def conflicts(self, unit: Sequence[PoolEntry]) -> bool:
        ids = {entry.item_id for entry in unit}
        if ids & self.used:
            return True
        return any(
            (min(a, b), max(a, b)) in self.enemies for a in ids for b in self.used | ids if a != b
        )

    def ranked(self, units: list[list[PoolEntry]]) -> list[list[PoolEntry]]:
        """Least-shown units first; the seed orders equals."""
        keyed = [
            (max(self.exposure.get(e.item_id, 0) for e in unit), self.rng.random(), unit)
            for unit in units
        ]
        return [unit for *_, unit in sorted(keyed, key=lambda k: (k[0], k[1]))]

    def by_topic(self, units: list[list[PoolEntry]]) -> list[list[PoolEntry]]:
        """Interleave units topic by topic so that a part covers its topics evenly."""
        topics: dict[str, list[list[PoolEntry]]] = {}
        for unit in self.ranked(units):
            topics.setdefault(unit[0].topic, []).append(unit)
        order = sorted(topics)
        self.rng.shuffle(order)
        interleaved = []
        while any(topics.values()):
            for topic in order:
                if topics[topic]:
                    interleaved.append(topics[topic].pop(0))
        return interleaved

    def draw(self, label: str, part: PartSpec, pool: Sequence[PoolEntry]) -> list[list[PoolEntry]]:
        units = units_of(eligible(part, pool))
        ordered = self.by_topic(units) if part.balance == "topic" else self.ranked(units)
        chosen, remaining = [], part.count
        for unit in ordered:
            if remaining == 0:
                break
            if len(unit) <= remaining and not self.conflicts(unit):
                chosen.append(unit)
                self.used.update(entry.item_id for entry in unit)
                remaining -= len(unit)
        if remaining:
            raise AssemblyError(
                f"section {label} cannot take exactly {part.count} items ({describe(part)}): "
                "item sets, enemies or items used elsewhere in the form leave it "
                f"{remaining} short"
            )
        return chosen


def assemble_form(
    blueprint: Blueprint,
    pools: Mapping[PartKey, Sequence[PoolEntry]],
    seed: int,
    *,
    enemies: set[tuple[int, int]] | None = None,
    exposure: Mapping[int, int] | None = None,
) -> AssembledForm:
    """Assemble a form; raise ``AssemblyError`` with the reason when the bank cannot."""
    check_pools(blueprint, pools)
    drawer = Drawer(seed, enemies or set(), exposure or {})
    sections = []
    for i, section in enumerate(blueprint.sections):
        items: list[AssembledItem] = []
        for j, part in enumerate(section.parts):
            units = drawer.draw(section.code, part, pools.get((i, j), ()))
            if blueprint.shuffle_items:
                drawer.rng.shuffle(units)
            else:
                units.sort(key=lambda unit: unit[0].item_ref)
            for entry in (entry for unit in units for entry in unit):
                order = list(entry.option_ids)
                if blueprint.shuffle_options:
                    drawer.rng.shuffle(order)
                items.append(
                    AssembledItem(
                        entry.version_id,
                        entry.item_type,
                        tuple(order),
                        part.score_as,
                        entry.item_id,
                    )
                )
        sections.append(AssembledSection(section.code, tuple(items)))
    return AssembledForm(seed=seed, sections=tuple(sections))
