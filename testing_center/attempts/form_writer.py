"""Writing a new attempt in one multi-row INSERT per table.

The unit of work flushed a new attempt (the attempt, its sections, 48 items and 48
empty responses, the play counters: about 110 objects) with bookkeeping per object
that was close to half of a start's CPU (benchmarks/README.md, "The start"). Here the
rows are inserted table by table, the generated ids returned in the order of the rows;
then the objects are attached to the session as persistent, holding exactly the values
written, so the start presents them without reading anything back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, inspect
from sqlalchemy.orm import MANYTOONE, Mapper, Session, make_transient_to_detached

from item_bank.db import Base
from testing_center.attempts.models import Attempt


def write_attempt(session: Session, attempt: Attempt) -> None:
    """Insert a new, transient ``attempt`` with its sections, items, responses and plays,
    and attach them all to ``session``.

    Run it inside a savepoint: an ``IntegrityError`` (a concurrent start of the same
    booking or exam) leaves the objects transient and the session as it was.
    """
    responses = [item.response for item in attempt.items]
    for rows in ([attempt], attempt.sections, attempt.items, responses, attempt.plays):
        insert_rows(session, rows)  # parents first: children copy their ids
    for written in (attempt, *attempt.sections, *attempt.items, *responses, *attempt.plays):
        make_transient_to_detached(written)
    session.add(attempt)  # cascades: each object joins the session as persistent


def insert_rows(session: Session, objects: Sequence[Base]) -> None:
    """Insert transient objects of one class with one statement; set their generated ids.

    Each object first takes the keys of the parents it was given (``item.attempt``,
    already inserted or loaded) and a value for every column attribute (the column's
    scalar default when unset), so the attached objects need no read: an unset one
    would be loaded lazily. A column that every row leaves empty is left out of the
    INSERT, so it is SQL NULL, as the unit of work wrote it, not JSON ``null``.
    """
    if not objects:
        return
    mapper = inspect(type(objects[0]))
    (key_column,) = mapper.primary_key
    generated = getattr(objects[0], mapper.get_property_by_column(key_column).key) is None
    attributes = [a for a in mapper.column_attrs if not (generated and a.columns[0] is key_column)]
    for obj in objects:
        copy_parent_keys(mapper, obj)
        for attribute in attributes:
            if attribute.key not in obj.__dict__:
                setattr(obj, attribute.key, scalar_default(attribute.columns[0]))
    written = [a for a in attributes if any(getattr(obj, a.key) is not None for obj in objects)]
    rows = [{a.columns[0].key: getattr(obj, a.key) for a in written} for obj in objects]
    table = mapper.local_table
    if not generated:
        session.execute(insert(table), rows)
        return
    statement = insert(table).returning(key_column, sort_by_parameter_order=True)
    key = mapper.get_property_by_column(key_column).key
    for obj, (new_id,) in zip(objects, session.execute(statement, rows), strict=True):
        setattr(obj, key, new_id)


def copy_parent_keys(mapper: Mapper, obj: Base) -> None:
    """Set the foreign keys of the many-to-one relationships ``obj`` holds, as the unit
    of work's synchronisation would."""
    for relationship in mapper.relationships:
        parent = obj.__dict__.get(relationship.key)
        if relationship.direction is not MANYTOONE or parent is None:
            continue
        parent_mapper = inspect(type(parent))
        for local, remote in relationship.local_remote_pairs:
            value = getattr(parent, parent_mapper.get_property_by_column(remote).key)
            setattr(obj, mapper.get_property_by_column(local).key, value)


def scalar_default(column: Any) -> Any:
    """The value the unit of work would have written for an unset attribute."""
    default = column.default
    return default.arg if default is not None and default.is_scalar else None
