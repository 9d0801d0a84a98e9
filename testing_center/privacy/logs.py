"""Keep personal data out of request logs.

Our own code logs ids only (never names, e-mail addresses, dates of birth, ID numbers,
answers or photos), and SQL statements are logged without their values
(``hide_parameters``). What remains are the web servers' access logs, which write the
whole request line: the public lookup ``GET /api/v1/certificates/{number}?date_of_birth=``
(the contract of issue 7), the QR code's ``/verify?n=<number>&s=<signature>`` (the
signature opens the holder's record) and the older ``/verify?t=<signed token>`` (whose
payload holds the holder's name and date of birth) would land there. ``RedactQuery`` replaces
the values of such query parameters with ``[redacted]`` in the records of the
development server (``werkzeug``) and of gunicorn (``gunicorn.access``).
"""

from __future__ import annotations

import logging
import re

from flask import Flask

REQUEST_LOGGERS = ("werkzeug", "gunicorn.access")
SENSITIVE_PARAMETERS = (
    "date_of_birth",
    "email",
    "g",  # a verifier's photo grant
    "id_document_number",
    "password",
    "phone_number",
    "s",  # the QR code's link signature: whoever has it sees the holder's record
    "t",  # a certificate token: it carries the holder's name and date of birth
    "token",
)
PATTERN = re.compile(
    r"([?&](?:" + "|".join(map(re.escape, SENSITIVE_PARAMETERS)) + r")=)[^&\s\"']*"
)


def redact(text: str) -> str:
    """Replace the values of sensitive query parameters in ``text``."""
    return PATTERN.sub(r"\1[redacted]", text)


class RedactQuery(logging.Filter):
    """A logging filter that redacts sensitive query parameters in every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def init_app(app: Flask) -> None:
    """Attach the filter to the request loggers (once per process)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuery) for f in logger.filters):
            logger.addFilter(RedactQuery())
