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
from sqlalchemy import String, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from item_bank.db import Base


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

    One UPDATE (or the first INSERT) in a savepoint, so concurrent workers never lose a
    count and a race on the first request of a window is retried as an update.
    """
    start = window_of(now, window)
    for _ in range(2):
        counted = session.execute(
            update(RateCounter)
            .where(RateCounter.key == key, RateCounter.window_start == start)
            .values(count=RateCounter.count + 1)
            .returning(RateCounter.count)
        ).scalar()
        if counted is not None:
            return counted <= limit
        try:
            with session.begin_nested():
                session.execute(insert(RateCounter).values(key=key, window_start=start, count=1))
            return limit >= 1
        except IntegrityError:
            continue  # another worker inserted it first: count with an update
    return False


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
