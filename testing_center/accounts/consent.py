"""The consent text shown at registration: what is collected, why, how long, who sees it.

Its version is stored with the candidate's profile (``consent_version``, ``consented_at``)
when they accept it; change ``CONSENT_VERSION`` whenever the meaning of the text changes.
The periods come from the retention settings the scheduler applies, so the text never
promises what the system does not do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext

from testing_center.i18n import N_

CONSENT_VERSION = "2026-11"

# (heading, text) in reading order; texts take the retention periods as parameters
SECTIONS: tuple[tuple[str, str], ...] = (
    (
        N_("What we collect"),
        N_(
            "Your name, date of birth and nationality, the number of your ID document "
            "(passport), your e-mail address and, if you give it, your phone number. At the "
            "test centre a photo of you is taken at check-in. During exams we keep your "
            "answers and your results."
        ),
    ),
    (
        N_("Why"),
        N_(
            "To check at the test centre that you are the person who booked, to score your "
            "exams, to issue certificates, and to detect impersonation and other fraud (for "
            "example, one ID document or phone number used on several accounts)."
        ),
    ),
    (
        N_("How long"),
        N_(
            "Answers to practice tests: %(practice_days)d days. Photos that are not printed "
            "on a certificate: %(photo_days)d days. Results and certificates of exams taken "
            "at a test centre, with the name, date of birth, nationality and ID document "
            "number they belong to, are kept as long as the test centre must keep them."
        ),
    ),
    (
        N_("Who sees it"),
        N_(
            "You; the staff of the test centres where you book or take an exam; and anyone "
            "who has your certificate number and your date of birth, or the QR code on the "
            "certificate: they see what the certificate states (your name, date of birth, "
            "nationality, photo, the exam and the result), so that employers and "
            "immigration officers can check that it is genuine."
        ),
    ),
    (
        N_("Your rights"),
        N_(
            'On the page "My data" you can download everything we hold about you and ask '
            "us to erase what we are not obliged to keep. Your results and certificates stay "
            "verifiable after that."
        ),
    ),
)


def retention_days(config: Mapping[str, Any]) -> dict[str, int]:
    return {
        "practice_days": config["RETENTION_PRACTICE_DAYS"],
        "photo_days": config["RETENTION_PHOTOS_DAYS"],
    }


def consent_sections(config: Mapping[str, Any]) -> list[dict[str, str]]:
    """The consent text in the request's language: ``[{"heading", "text"}, ...]``."""
    days = retention_days(config)
    return [
        {"heading": gettext(heading), "text": gettext(text, **days)} for heading, text in SECTIONS
    ]
