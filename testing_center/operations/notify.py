"""E-mail notifications through an outbox.

A notice is written as a ``Notification`` row in the transaction of the change that
causes it (booking, cancellation, results) and sent later by the scheduler, so a slow
or failing mail server neither blocks nor loses a change. Texts are rendered in the
recipient's language when queued. Mail goes out by SMTP (``MAIL_*`` settings) or, in
development and tests, into ``instance/mail/`` as .eml files (the debugging sink).
"""

from __future__ import annotations

import datetime as dt
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from testing_center.accounts.models import User
from testing_center.i18n import N_
from testing_center.operations.models import Notification

MAX_TRIES = 5
MESSAGES: dict[str, tuple[str, str]] = {
    "booking_confirmed": (
        N_("Your seat is booked: %(exam)s"),
        N_(
            "Your seat for %(exam)s on %(starts)s at %(centre)s is booked.\n"
            "Admission number: %(admission_number)s\n"
            "Bring your original ID document and the admission ticket. Arrive 15 to 30 "
            "minutes early: late arrivals are refused."
        ),
    ),
    "booking_moved": (
        N_("Your booking was moved: %(exam)s"),
        N_(
            "Your seat is now for %(exam)s on %(starts)s at %(centre)s.\n"
            "New admission number: %(admission_number)s"
        ),
    ),
    "session_cancelled": (
        N_("Session cancelled: %(exam)s"),
        N_(
            "The session of %(exam)s on %(starts)s at %(centre)s has been cancelled. "
            "Your booking %(admission_number)s is void; please book another session."
        ),
    ),
    "session_moved": (
        N_("Session moved: %(exam)s"),
        N_(
            "The session of %(exam)s at %(centre)s now starts on %(starts)s. "
            "Your admission number %(admission_number)s stays valid."
        ),
    ),
    "session_reminder": (
        N_("Reminder: %(exam)s on %(starts)s"),
        N_(
            "Your exam %(exam)s is on %(starts)s at %(centre)s. Admission number: "
            "%(admission_number)s. Bring your original ID document; arrive 15 to 30 "
            "minutes early."
        ),
    ),
    "certificate_reissued": (
        N_("Your certificate was re-issued"),
        N_(
            "After a correction of the scoring, your certificate %(old)s was replaced by "
            "certificate %(new)s. The old number now shows as superseded; please use the "
            "new one. You can download it from your results page."
        ),
    ),
    "certificate_revoked": (
        N_("Your certificate was revoked"),
        N_(
            "Your certificate %(number)s has been revoked by the test centre. Verification "
            "now shows it as revoked. Contact the test centre if you have questions."
        ),
    ),
    "results_released": (
        N_("Your result is available: %(exam)s"),
        N_("The result of your exam %(exam)s is available on your results page."),
    ),
}


def queue_notification(
    session: Session, user: User, kind: str, now: dt.datetime, **params: Any
) -> Notification | None:
    """Write a notice for ``user`` in their language; the scheduler sends it. An erased
    account has no address left and gets nothing."""
    if user.erased_at is not None:
        return None
    subject, body = MESSAGES[kind]
    with force_locale(user.locale or current_app.config["LANGUAGES"][0]):
        notice = Notification(
            user_id=user.id,
            to_address=user.email,
            subject=gettext(subject, **params)[:200],
            body=gettext(body, **params),
            kind=kind,
            created_at=now,
        )
    session.add(notice)
    return notice


Sender = Callable[[EmailMessage], None]


def configured_sender() -> Sender:
    """Return the sender the configuration names: SMTP, or the .eml folder sink."""
    config = current_app.config
    if config["MAIL_BACKEND"] == "smtp":
        return smtp_sender(config)
    folder = Path(config["MAIL_FOLDER"] or Path(current_app.instance_path) / "mail")
    return folder_sender(folder)


def smtp_sender(config: Any) -> Sender:
    def send(message: EmailMessage) -> None:
        with smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"], timeout=30) as smtp:
            if config["MAIL_USE_TLS"]:
                smtp.starttls()
            if config["MAIL_USERNAME"]:
                smtp.login(config["MAIL_USERNAME"], config["MAIL_PASSWORD"])
            smtp.send_message(message)

    return send


def folder_sender(folder: Path) -> Sender:
    def send(message: EmailMessage) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{message['X-Notification-Id']}.eml").write_bytes(bytes(message))

    return send


def send_pending(session: Session, now: dt.datetime, send: Sender, limit: int = 200) -> int:
    """Send queued notices (oldest first); a failure is counted and retried later, up to
    ``MAX_TRIES``, and never stops the others. Returns how many were sent.

    Delivery is at least once: a crash between sending and committing sends that batch's
    sent messages again on the next run (an outbox cannot know what the server got).
    """
    sent = 0
    sender_address = current_app.config["MAIL_SENDER"]
    for notice in session.scalars(
        select(Notification)
        .where(Notification.sent_at.is_(None), Notification.tries < MAX_TRIES)
        .order_by(Notification.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ):
        message = EmailMessage()
        message["From"] = sender_address
        message["To"] = notice.to_address
        message["Subject"] = notice.subject
        message["X-Notification-Id"] = str(notice.id)
        message.set_content(notice.body)
        notice.tries += 1
        try:
            send(message)
        except Exception as error:  # one bad message must not stop the rest
            notice.last_error = type(error).__name__  # the text may hold the address
            continue
        notice.sent_at = now
        sent += 1
    session.flush()
    return sent
