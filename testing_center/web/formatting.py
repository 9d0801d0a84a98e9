"""Times as people at a centre read them, and back: the pages' one conversion point.

Sessions are stored as UTC instants; operators type, and candidates read, the local
date and time of the centre (its IANA time zone).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask import Blueprint
from flask_babel import gettext as _

from testing_center.errors import InvalidInput
from testing_center.i18n import N_


def centre_time(moment: dt.datetime | None, timezone: str, with_zone: bool = True) -> str:
    """``2026-12-03 14:00 +05``: a UTC instant in the centre's time zone."""
    if moment is None:
        return "—"
    local = moment.astimezone(zoneinfo.ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M %Z" if with_zone else "%Y-%m-%d %H:%M")


def from_centre_time(day: dt.date, time: dt.time, timezone: str) -> dt.datetime:
    """The UTC instant of a local date and time at a centre; a time that does not exist
    there (skipped by a daylight-saving change) is refused rather than guessed."""
    zone = zoneinfo.ZoneInfo(timezone)
    local = dt.datetime.combine(day, time, tzinfo=zone)
    utc = local.astimezone(dt.UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise InvalidInput(
            N_("This local time does not exist at the centre (a clock change)."),
            code="invalid_local_time",
        )
    return utc


def duration(seconds: int | None) -> str:
    """``1:05:09`` or ``05:09``; a dash when there is none."""
    if seconds is None:
        return "—"
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def status_labels() -> dict[str, str]:
    """Booking, attempt and session states in the reader's language."""
    return {
        "draft": _("draft"),
        "published": _("published"),
        "open": _("open"),
        "closed": _("closed"),
        "cancelled": _("cancelled"),
        "held": _("held for you"),
        "confirmed": _("booked"),
        "checked_in": _("checked in"),
        "moved": _("moved to another session"),
        "expired": _("hold expired"),
        "refused": _("refused: arrived late"),
        "in_progress": _("in progress"),
        "paused": _("paused"),
        "finished": _("finished"),
        "voided": _("void"),
    }


def status_label(status: str) -> str:
    return status_labels().get(str(status), str(status))


def register(bp: Blueprint) -> None:
    """Make the helpers available to every template (registered by each blueprint using
    them, so no blueprint depends on another being registered)."""
    bp.add_app_template_filter(centre_time, "centre_time")
    bp.add_app_template_filter(duration, "duration")
    bp.add_app_template_filter(status_label, "status_label")
