"""The server clock: the only time an exam trusts.

The application reads time through ``now()``, which calls the clock stored in
``app.extensions``; tests replace that clock to move time without sleeping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, current_app

Clock = Callable[[], dt.datetime]


def system_clock() -> dt.datetime:
    """Return the current UTC instant."""
    return dt.datetime.now(dt.UTC)


def init_app(app: Flask, clock: Clock = system_clock) -> None:
    app.extensions["clock"] = clock


def now() -> dt.datetime:
    """Return the application's current UTC instant."""
    return current_app.extensions["clock"]()
