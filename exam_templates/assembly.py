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
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
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
    points: float = 1.0


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


def natural_key(ref: str) -> list:
    """Sort refs as people read them: set-q2 before set-q10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", ref)]


def units_of(part: PartSpec, pool: Sequence[PoolEntry]) -> list[list[PoolEntry]]:
    """Group the pool into units: a set's items together (in ref order), others alone.

    A set is eligible only whole: if any of its items falls outside the part's difficulty
    window, the set is left out rather than drawn with a gap.
    """
    units: dict[str, list[PoolEntry]] = {}
    for entry in sorted(pool, key=lambda e: natural_key(e.item_ref)):
        units.setdefault(entry.group or f"item:{entry.item_id}", []).append(entry)
    window = set(map(id, eligible(part, pool)))
    return [unit for unit in units.values() if all(id(entry) in window for entry in unit)]


MAX_SEARCH_STEPS = 20_000  # bounded search for an exact fill from item sets


class Drawer:
    """Draws units for parts while keeping the whole form free of repeats and enemies."""

    def __init__(
        self, seed: int, enemies: AbstractSet[tuple[int, int]], exposure: Mapping[int, int]
    ):
        self.rng = random.Random(seed)  # noqa: S311 - reproducible selection, not a secret
        self.enemies = enemies
        self.exposure = exposure
        self.used: set[int] = set()

    def conflicts(self, unit: Sequence[PoolEntry], taken: set[int]) -> bool:
        ids = {entry.item_id for entry in unit}
        if ids & taken:
            return True
        return any(
            (min(a, b), max(a, b)) in self.enemies for a in ids for b in taken | ids if a != b
        )

    def ranked(self, units: list[list[PoolEntry]]) -> list[list[PoolEntry]]:
        """Less-shown units first, randomly among near-equals (randomesque exposure control).

        Exposure counts differing by less than two are treated alike, so candidates who
        start together still get different forms while heavily shown items wait.
        """
        keyed = [
            (max(self.exposure.get(e.item_id, 0) for e in unit) + 2 * self.rng.random(), unit)
            for unit in units
        ]
        return [unit for _, unit in sorted(keyed, key=lambda k: k[0])]

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

    def fill(self, ordered: list[list[PoolEntry]], count: int) -> list[list[PoolEntry]] | None:
        """Choose units adding up to exactly ``count`` items, preferring earlier ones.

        A depth-first search that tries each unit before skipping it, so the first answer
        is the greedy one when greedy works, and set sizes like 4+3+3 for 6 still fit.
        """
        steps = 0

        def search(start: int, remaining: int, taken: set[int]) -> list[list[PoolEntry]] | None:
            nonlocal steps
            if remaining == 0:
                return []
            for index in range(start, len(ordered)):
                steps += 1
                if steps > MAX_SEARCH_STEPS:
                    return None
                unit = ordered[index]
                if len(unit) <= remaining and not self.conflicts(unit, taken):
                    rest = search(
                        index + 1, remaining - len(unit), taken | {entry.item_id for entry in unit}
                    )
                    if rest is not None:
                        return [unit, *rest]
            return None

        return search(0, count, set(self.used))

    def draw(self, label: str, part: PartSpec, pool: Sequence[PoolEntry]) -> list[list[PoolEntry]]:
        units = units_of(part, pool)
        ordered = self.by_topic(units) if part.balance == "topic" else self.ranked(units)
        chosen = self.fill(ordered, part.count)
        if chosen is None:
            raise AssemblyError(
                f"section {label} cannot take exactly {part.count} items ({describe(part)}): "
                "item sets, enemies or items used elsewhere in the form do not add up"
            )
        for unit in chosen:
            self.used.update(entry.item_id for entry in unit)
        return chosen


def assemble_form(
    blueprint: Blueprint,
    pools: Mapping[PartKey, Sequence[PoolEntry]],
    seed: int,
    *,
    enemies: AbstractSet[tuple[int, int]] | None = None,
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
                units.sort(key=lambda unit: natural_key(unit[0].item_ref))
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
                        part.points,
                    )
                )
        sections.append(AssembledSection(section.code, tuple(items)))
    return AssembledForm(seed=seed, sections=tuple(sections))
