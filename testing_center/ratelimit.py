"""Rate limits kept in the database, so every web worker and host shares them.

A fixed window per key: ``hit`` counts one request in the current window and says
whether it is within the limit. Keys name what is limited and for whom, with the client
part hashed (``client_key``): the table never holds an address or an e-mail in clear.
Counters of past windows are deleted by the scheduler's sweep (``prune``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import current_app, request
from sqlalchemy import String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from item_bank.db import Base

UPSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


class RateCounter(Base):
    """Requests counted for one key in one time window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


def client_key(scope: str, identity: str | None = None) -> str:
    """Return ``scope:<hash>`` for the requesting client (its address) or ``identity``.

    Hashed with the app's secret, so the key cannot be turned back into an address.
    """
    who = identity if identity is not None else (request.remote_addr or "unknown")
    digest = hmac.new(
        current_app.config["SECRET_KEY"].encode(), who.encode(), hashlib.sha256
    ).hexdigest()[:40]
    return f"{scope}:{digest}"


def window_of(now: dt.datetime, window: dt.timedelta) -> dt.datetime:
    seconds = int(window.total_seconds())
    epoch = int(now.timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % seconds, tz=dt.UTC)


def hit(session: Session, key: str, limit: int, window: dt.timedelta, now: dt.datetime) -> bool:
    """Count one request for ``key``; True while the window's count is within ``limit``.

    One statement whether or not the window's row exists yet: an insert that adds one to
    the count on conflict (PostgreSQL and SQLite alike). Concurrent workers never lose
    a count, and the first request of a window (most lookups, when many employers check a
    few certificates each) costs no savepoint and no second try.
    """
    upsert = UPSERTS[session.get_bind().dialect.name](RateCounter).values(
        key=key, window_start=window_of(now, window), count=1
    )
    counted = session.execute(
        upsert.on_conflict_do_update(
            index_elements=[RateCounter.key, RateCounter.window_start],
            set_={"count": RateCounter.count + 1},
        ).returning(RateCounter.count)
    ).scalar_one()
    return counted <= limit


def count(session: Session, key: str, window: dt.timedelta, now: dt.datetime) -> int:
    """How many hits ``key`` has in the current window (without counting one)."""
    return (
        session.scalar(
            select(RateCounter.count).where(
                RateCounter.key == key, RateCounter.window_start == window_of(now, window)
            )
        )
        or 0
    )


def prune(session: Session, now: dt.datetime, keep: dt.timedelta = dt.timedelta(days=1)) -> int:
    """Delete counters of windows that ended long ago; returns how many."""
    return session.execute(
        delete(RateCounter).where(RateCounter.window_start < now - keep)
    ).rowcount
