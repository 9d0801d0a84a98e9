"""The bank's revision token: a cheap test of whether the bank changed since a read.

Form assembly reads thousands of rows per template (the pools of approved items and
their enemy pairs), yet the bank changes only when items are imported, approved,
retired or edited. Every flush that writes ``Item``, ``ItemVersion`` or ``ItemEnemy``
rows, through the unit of work or as an ORM ``insert``/``update``/``delete`` statement,
also sets the single ``bank_revisions`` row to a new random token in the same
transaction. A reader that read the token before its pools knows they are current as
long as the token is unchanged: one primary-key read, answered from the database, so
every process and host sees a change at the moment it commits.

Why a random token rather than a counter or the newest id: ids and timestamps commit
out of order (a transaction holding id 100 may commit after one holding 101, and a
reader that saw 101 would never notice 100), and a counter repeats after a rollback (a
cache filled inside a transaction that rolled back would match the next change's
value). Updating the one row also makes concurrent bank changes queue on its lock, so
their tokens replace each other in commit order. Changes by raw SQL are not seen.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy import event, insert, select, update
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from item_bank.models import BankRevision, Item, ItemEnemy, ItemVersion

ROW_ID = 1
TRACKED = (Item, ItemVersion, ItemEnemy)
BUMPED = "item_bank.revision.bumped"  # session.info key: the transaction already bumped


def current_revision(session: Session) -> str | None:
    """The bank's revision token; None when the row is missing (nothing to compare)."""
    return session.scalar(select(BankRevision.token).where(BankRevision.id == ROW_ID))


def bump(session: Session) -> None:
    """Give the bank a new token, once per (nested) transaction."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    if session.info.get(BUMPED) is transaction:
        return
    session.info[BUMPED] = transaction
    table = BankRevision.__table__
    token = secrets.token_hex(16)
    connection = session.connection()
    changed = connection.execute(
        update(table).where(table.c.id == ROW_ID).values(token=token)
    ).rowcount
    if not changed:  # a schema made without the migration's row, or emptied by a test
        connection.execute(insert(table).values(id=ROW_ID, token=token))


@event.listens_for(Session, "before_flush")
def bump_on_flush(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    """Bump when the flush writes any bank row."""
    if any(isinstance(obj, TRACKED) for obj in (*session.new, *session.deleted)) or any(
        isinstance(obj, TRACKED) and session.is_modified(obj, include_collections=False)
        for obj in session.dirty
    ):
        bump(session)


@event.listens_for(Session, "do_orm_execute")
def bump_on_statement(state: ORMExecuteState) -> None:
    """Bump before an ORM ``insert``/``update``/``delete`` statement on bank rows."""
    if (state.is_insert or state.is_update or state.is_delete) and (
        state.bind_mapper is not None and state.bind_mapper.class_ in TRACKED
    ):
        bump(state.session)
