"""Business days at a centre: when booking and changes close before a session.

As at the Prometric-run centres (FIELD.md): booking and changes close 3 business days
before the test, 4 when the test falls on a weekend or a holiday. Days are the centre's
local calendar days; Saturday, Sunday and the holidays on record are not business days.
Booking closes at the end of the last allowed day: local midnight after the day that
lies N business days before the session's day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from zoneinfo import ZoneInfo

WEEKEND = (5, 6)  # Saturday, Sunday
CLOSE_BUSINESS_DAYS = 3
CLOSE_BUSINESS_DAYS_NON_WORKING = 4


def is_business_day(day: dt.date, holidays: Collection[dt.date]) -> bool:
    return day.weekday() not in WEEKEND and day not in holidays


def booking_closes_at(
    starts_at: dt.datetime, timezone: str, holidays: Collection[dt.date]
) -> dt.datetime:
    """Return the UTC instant booking and changes close for a session starting then."""
    zone = ZoneInfo(timezone)
    session_day = starts_at.astimezone(zone).date()
    needed = (
        CLOSE_BUSINESS_DAYS
        if is_business_day(session_day, holidays)
        else CLOSE_BUSINESS_DAYS_NON_WORKING
    )
    day, counted = session_day, 0
    while counted < needed:
        day -= dt.timedelta(days=1)
        if is_business_day(day, holidays):
            counted += 1
    closes = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return closes.astimezone(dt.UTC)
