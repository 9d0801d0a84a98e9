"""E-mail notifications through an outbox.

A notice is written as a ``Notification`` row in the transaction of the change that
causes it (booking, cancellation, results) and sent later by the scheduler, so a slow
or failing mail server neither blocks nor loses a change. Texts are rendered in the
recipient's language when queued. Mail goes out by SMTP (``MAIL_*`` settings) or, in
development and tests, into ``instance/mail/`` as .eml files (the debugging sink).
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any, NamedTuple

from flask import current_app
from flask_babel import force_locale, gettext
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from testing_center.accounts.models import User
from testing_center.i18n import N_
from testing_center.operations.models import Notification

logger = logging.getLogger(__name__)

MAX_TRIES = 10
FIRST_RETRY = dt.timedelta(minutes=2)
LONGEST_RETRY = dt.timedelta(hours=2)
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


def retry_delay(tries: int) -> dt.timedelta:
    """How long after its ``tries``-th send begins a notice may be tried again: two
    minutes, doubled each time, at most two hours (ten tries span about eight hours, so
    a mail server down for an afternoon loses nothing)."""
    return min(FIRST_RETRY * 2 ** (tries - 1), LONGEST_RETRY)


def is_due(now: dt.datetime) -> ColumnElement[bool]:
    """Unsent, not given up, and its retry delay (if any) over."""
    return and_(
        Notification.sent_at.is_(None),
        Notification.tries < MAX_TRIES,
        or_(Notification.next_try_at.is_(None), Notification.next_try_at <= now),
    )


def claim(session: Session, notice_id: int, tries: int, now: dt.datetime) -> bool:
    """Count one more try of a due notice and set when the next may begin, committed
    before the send: whether this caller won it (another scheduler may have).

    The UPDATE matches only while the notice is unsent, due and still at ``tries``, so
    of two senders racing for it exactly one changes the row; the other matches
    nothing. Committing first means a sender that dies during or right after the send
    leaves the notice due again at ``next_try_at``: sent again, never lost, and the
    crash counts as a try, so a message that kills its sender is given up in the end.
    """
    claimed = session.execute(
        update(Notification)
        .where(Notification.id == notice_id, Notification.tries == tries, is_due(now))
        .values(tries=tries + 1, next_try_at=now + retry_delay(tries + 1))
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return bool(claimed)


def message_for(notice: Notification, sender_address: str) -> EmailMessage:
    """The e-mail of a notice. Its Message-ID is the same on every try, so a mailbox
    that got a message twice (a resend after a crash) can tell it is one message."""
    message = EmailMessage()
    message["From"] = sender_address
    message["To"] = notice.to_address
    message["Subject"] = notice.subject
    message["X-Notification-Id"] = str(notice.id)
    domain = parseaddr(sender_address)[1].rpartition("@")[2] or "testing-center.invalid"
    message["Message-ID"] = f"<notification-{notice.id}@{domain}>"
    message.set_content(notice.body)
    return message


def send_pending(session: Session, now: dt.datetime, send: Sender, limit: int = 200) -> int:
    """Send due notices (oldest first), each claimed and recorded in transactions of its
    own; returns how many were sent.

    Delivery is at least once: a crash between sending and recording sends that one
    message again after its retry delay (an outbox cannot know what the server got). A
    failing send is recorded (error class only) and retried with backoff
    (``retry_delay``) up to ``MAX_TRIES``; then the notice is given up, logged by id and
    counted on the operators' dashboard (``outbox_status``). One bad message never stops
    the others, and two schedulers never send one message both (``claim``).
    """
    sent = 0
    sender_address = current_app.config["MAIL_SENDER"]
    due = session.execute(
        select(Notification.id, Notification.tries)
        .where(is_due(now))
        .order_by(Notification.id)
        .limit(limit)
    ).all()
    for notice_id, tries in due:
        if not claim(session, notice_id, tries, now):
            continue
        notice = session.get(Notification, notice_id)
        try:
            send(message_for(notice, sender_address))
        except Exception as error:  # one bad message must not stop the rest
            notice.last_error = type(error).__name__  # the text may hold the address
            if notice.tries >= MAX_TRIES:
                logger.error(
                    "outbox: notice %s given up after %s tries: %s",
                    notice_id,
                    notice.tries,
                    notice.last_error,
                )
            session.commit()
            continue
        notice.sent_at = now
        session.commit()
        sent += 1
    return sent


class OutboxStatus(NamedTuple):
    """What the operators' dashboard shows of the outbox: notices waiting for a retry
    after a failed send, and notices given up, with the last error class of the newest."""

    retrying: int
    failed: int
    last_error: str | None


def outbox_status(session: Session) -> OutboxStatus:
    """Count the notices retrying and given up (all centres: counts only, no addresses)."""
    unsent = Notification.sent_at.is_(None)
    retrying = session.scalar(
        select(func.count()).where(unsent, Notification.tries > 0, Notification.tries < MAX_TRIES)
    )
    failed = session.scalar(select(func.count()).where(unsent, Notification.tries >= MAX_TRIES))
    last_error = session.scalar(
        select(Notification.last_error)
        .where(unsent, Notification.tries > 0)
        .order_by(Notification.id.desc())
        .limit(1)
    )
    return OutboxStatus(retrying or 0, failed or 0, last_error)
