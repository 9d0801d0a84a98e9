"""A candidate's copy of their data, and erasure of what the centre need not keep.

Erasure keeps what makes results and certificates verifiable, because employers and
immigration officers rely on them: every certificate with its signed facts and photo,
the results of proctored attempts and, for a candidate who sat a proctored exam, the
identity on the profile (name, date of birth, nationality, ID document number). It
erases the rest: answers of practice attempts, photos on no certificate (nor awaiting
one), the phone number, the candidate's e-mail notices, the whole profile of a candidate
who never sat a proctored exam, and the login (disabled, e-mail replaced by a tombstone,
password unusable, every token and session ended). The request and the erasure are in
the audit log with counts only.

Services flush and raise ``AppError``s; the request that called them commits.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, delete, exists, func, null, select, update
from sqlalchemy.orm import Session

from testing_center.accounts.models import ApiToken, CandidateProfile, Role, User
from testing_center.accounts.services import end_all_sessions, password_hasher
from testing_center.attempts.models import (
    STARTED,
    Attempt,
    AttemptItem,
    AttemptStatus,
    Response,
)
from testing_center.attempts.services import PRACTICE, results_released
from testing_center.certification.models import Certificate, Verification
from testing_center.errors import Conflict, Forbidden, NotFound, Unauthenticated
from testing_center.i18n import N_
from testing_center.operations import audit
from testing_center.operations.models import (
    ACTIVE_BOOKING,
    Booking,
    CandidatePhoto,
    ExamSession,
    Notification,
    SessionStatus,
)
from testing_center.operations.services import session_for_staff

TOMBSTONE_DOMAIN = "erased.invalid"  # RFC 2606: can never receive mail
UNUSABLE_HASH = "!erased"  # not an Argon2 hash: no password ever verifies it
UPCOMING = (SessionStatus.DRAFT, SessionStatus.PUBLISHED, SessionStatus.OPEN)


def is_erased(user: User) -> bool:
    return user.erased_at is not None


def tombstone_email(user_id: int) -> str:
    return f"erased-{user_id}@{TOMBSTONE_DOMAIN}"


# ---- photos and answers the centre need not keep ----------------------------------------


def photo_is_kept() -> ColumnElement[bool]:
    """A photo printed on a certificate (whatever its status), or taken at the check-in
    of a finished proctored attempt still waiting for its certificate."""
    on_certificate = exists().where(Certificate.photo_id == CandidatePhoto.id)
    awaiting = exists().where(
        Attempt.booking_id == CandidatePhoto.booking_id,
        Attempt.status == AttemptStatus.FINISHED,
        ~exists().where(Certificate.attempt_id == Attempt.id),
    )
    return on_certificate | awaiting


def erase_practice_answers(session: Session, attempt_ids: ColumnElement[bool]) -> int:
    """Blank the stored answers of the practice attempts chosen by ``attempt_ids`` (a
    condition on ``Attempt``); the results stay. Returns how many answers were blanked."""
    items = (
        select(AttemptItem.id)
        .join(Attempt, Attempt.id == AttemptItem.attempt_id)
        .where(Attempt.mode == PRACTICE, attempt_ids)
    )
    return session.execute(
        update(Response)
        .where(Response.attempt_item_id.in_(items), Response.value.is_not(None))
        .values(value=null(), is_flagged=False)  # SQL NULL, as never answered
        .execution_options(synchronize_session=False)
    ).rowcount


# ---- erasure ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    """What an erasure removed (counts only: this goes into the audit log)."""

    practice_answers: int
    photos: int
    notifications: int
    tokens: int
    profile: str  # "deleted" (never sat a proctored exam) or "identity kept"


def check_password(user: User, password: str) -> None:
    try:
        password_hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated(
            N_("The current password is wrong."), code="invalid_credentials"
        ) from None


def erasure_blocker(session: Session, user: User) -> str | None:
    """Why erasure must wait (a message id), or None: a seat in a session to come or
    under way, or an exam in progress."""
    live_seat = session.scalar(
        select(Booking.id)
        .join(ExamSession, ExamSession.id == Booking.session_id)
        .where(
            Booking.user_id == user.id,
            Booking.status.in_(ACTIVE_BOOKING),
            ExamSession.status.in_(UPCOMING),
        )
        .limit(1)
    )
    running = session.scalar(
        select(Attempt.id)
        .where(Attempt.user_id == user.id, Attempt.status == AttemptStatus.IN_PROGRESS)
        .limit(1)
    )
    if live_seat is not None or running is not None:
        return N_(
            "You have a booked seat or an exam under way. Ask again once the session is over."
        )
    return None


def sat_proctored_exam(session: Session, user: User) -> bool:
    """Whether the candidate was ever checked in at a test centre (the centre then keeps
    the identity their results and certificates belong to)."""
    return (
        session.scalar(
            select(Booking.id)
            .where(Booking.user_id == user.id, Booking.checked_in_at.is_not(None))
            .limit(1)
        )
        is not None
    )


def erase_personal_data(session: Session, user: User, password: str, now: dt.datetime) -> Erasure:
    """Erase what the centre is not obliged to keep of a candidate, after checking the
    password; the account becomes a tombstone that can no longer sign in."""
    if user.role != Role.CANDIDATE:
        raise Forbidden(N_("Only candidates can erase their account here."), code="forbidden")
    if is_erased(user):
        raise Conflict(N_("This account was erased."), code="already_erased")
    check_password(user, password)
    blocker = erasure_blocker(session, user)
    if blocker:
        raise Conflict(blocker, code="erasure_blocked")
    audit.record(
        session,
        actor=user,
        action="account.erasure_requested",
        entity="user",
        entity_id=user.id,
        now=now,
    )
    answers = erase_practice_answers(session, Attempt.user_id == user.id)
    photos = session.execute(
        delete(CandidatePhoto)
        .where(CandidatePhoto.user_id == user.id, ~photo_is_kept())
        .execution_options(synchronize_session=False)
    ).rowcount
    notifications = session.execute(
        delete(Notification).where(Notification.user_id == user.id)
    ).rowcount
    tokens = session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    ).rowcount
    profile = session.get(CandidateProfile, user.id)
    kept_identity = sat_proctored_exam(session, user)
    if profile is not None:
        if kept_identity:
            profile.phone_number = None
        else:
            session.delete(profile)
    user.email = tombstone_email(user.id)
    user.password_hash = UNUSABLE_HASH
    user.is_enabled = False
    user.erased_at = now
    end_all_sessions(user)
    erasure = Erasure(
        practice_answers=answers,
        photos=photos,
        notifications=notifications,
        tokens=tokens,
        profile="identity kept" if kept_identity else "deleted",
    )
    audit.record(
        session,
        actor=user,
        action="account.erased",
        entity="user",
        entity_id=user.id,
        now=now,
        after=asdict(erasure),
    )
    session.flush()
    return erasure


# ---- the candidate's copy ---------------------------------------------------------------


def iso(value: dt.date | dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_data(session: Session, user: User, now: dt.datetime) -> dict[str, Any]:
    """Everything held about ``user``, as JSON-ready data: account, profile, bookings,
    attempts with their answers and (once released) results, certificates, photos
    (base64), the e-mails sent to them and the lookups of their certificates."""
    profile = session.get(CandidateProfile, user.id)
    bookings = list(
        session.scalars(select(Booking).where(Booking.user_id == user.id).order_by(Booking.id))
    )
    admission = {booking.id: booking.admission_number for booking in bookings}
    certificates = list(
        session.scalars(
            select(Certificate).where(Certificate.user_id == user.id).order_by(Certificate.id)
        )
    )
    return {
        "generated_at": now.isoformat(),
        "account": {
            "id": user.id,
            "email": user.email,
            "role": user.role,
            "locale": user.locale,
            "created_at": iso(user.created_at),
            "password_changed_at": iso(user.password_changed_at),
            "erased_at": iso(user.erased_at),
        },
        "profile": profile_data(profile),
        "bookings": [booking_data(booking, admission) for booking in bookings],
        "attempts": attempts_data(session, user, admission),
        "certificates": [certificate_data(c, certificates) for c in certificates],
        "photos": photos_data(session, user, admission),
        "notifications": [
            {
                "kind": notice.kind,
                "subject": notice.subject,
                "created_at": iso(notice.created_at),
                "sent_at": iso(notice.sent_at),
            }
            for notice in session.scalars(
                select(Notification)
                .where(Notification.user_id == user.id)
                .order_by(Notification.id)
            )
        ],
        "certificate_lookups": [
            {
                "at": iso(lookup.at),
                "number": lookup.number,
                "channel": lookup.channel,
                "outcome": lookup.outcome,
                "by_employer_account": lookup.employer_id is not None,
            }
            for lookup in session.scalars(
                select(Verification)
                .where(Verification.certificate_id.in_([c.id for c in certificates]))
                .order_by(Verification.id)
            )
        ],
    }


def profile_data(profile: CandidateProfile | None) -> dict[str, Any] | None:
    if profile is None:
        return None
    return {
        "full_name": profile.full_name,
        "date_of_birth": iso(profile.date_of_birth),
        "nationality": profile.nationality,
        "id_document_number": profile.id_document_number,
        "phone_number": profile.phone_number,
        "consent_version": profile.consent_version,
        "consented_at": iso(profile.consented_at),
    }


def booking_data(booking: Booking, admission: dict[int, str]) -> dict[str, Any]:
    exam_session = booking.session
    return {
        "admission_number": booking.admission_number,
        "status": booking.status,
        "exam_code": exam_session.template.code,
        "centre": f"{exam_session.centre.name}, {exam_session.centre.city}",
        "session_id": exam_session.id,
        "starts_at": iso(exam_session.starts_at),
        "booked_at": iso(booking.booked_at),
        "checked_in_at": iso(booking.checked_in_at),
        "arrived_late": booking.arrived_late,
        "seat": booking.seat,
        "moved_to": admission.get(booking.moved_to_id) if booking.moved_to_id else None,
    }


def attempts_data(session: Session, user: User, admission: dict[int, str]) -> list[dict[str, Any]]:
    """Attempts with their answers as saved (item by the form's reference, never the key)
    and the result once the candidate may see it."""
    attempts = list(
        session.scalars(
            select(Attempt).where(Attempt.user_id == user.id, STARTED).order_by(Attempt.started_at)
        )
    )
    answers: dict[str, list[dict[str, Any]]] = {}
    for attempt_id, ref, section, value, flagged, saved_at in session.execute(
        select(
            AttemptItem.attempt_id,
            AttemptItem.ref,
            AttemptItem.section_code,
            Response.value,
            Response.is_flagged,
            Response.saved_at,
        )
        .join(Response, Response.attempt_item_id == AttemptItem.id)
        .where(AttemptItem.attempt_id.in_([a.id for a in attempts]))
        .order_by(AttemptItem.attempt_id, AttemptItem.position)
    ):
        answers.setdefault(attempt_id, []).append(
            {
                "item": ref,
                "section": section,
                "response": value,
                "flagged": flagged,
                "saved_at": iso(saved_at),
            }
        )
    found = []
    for attempt in attempts:
        released = attempt.status == AttemptStatus.FINISHED and results_released(session, attempt)
        found.append(
            {
                "id": attempt.id,
                "exam_code": attempt.template.code,
                "mode": attempt.mode,
                "status": attempt.status,
                "admission_number": admission.get(attempt.booking_id),
                "started_at": iso(attempt.started_at),
                "finished_at": iso(attempt.finished_at),
                "finish_reason": attempt.finish_reason,
                "result_released": released,
                "result": attempt.result if released else None,
                "answers": answers.get(attempt.id, []),
            }
        )
    return found


def certificate_data(certificate: Certificate, every: list[Certificate]) -> dict[str, Any]:
    numbers = {c.id: c.number for c in every}
    facts = certificate.facts
    return {
        "number": certificate.number,
        "status": certificate.status,
        "issued_at": iso(certificate.issued_at),
        "revoked_at": iso(certificate.revoked_at),
        "revocation_reason": certificate.revocation_reason,
        "superseded_by": numbers.get(certificate.superseded_by_id),
        "exam_code": facts.get("exam_code"),
        "exam_date": facts.get("exam_date"),
        "total": facts.get("total"),
        "passed": facts.get("passed"),
        "has_photo": certificate.photo_id is not None,
    }


def photos_data(session: Session, user: User, admission: dict[int, str]) -> list[dict[str, Any]]:
    on_certificate = set(
        session.scalars(
            select(Certificate.photo_id).where(
                Certificate.user_id == user.id, Certificate.photo_id.is_not(None)
            )
        )
    )
    return [
        {
            "id": photo_id,
            "taken_at": iso(taken_at),
            "admission_number": admission.get(booking_id),
            "on_certificate": photo_id in on_certificate,
            "mime_type": mime_type,
            "data_base64": base64.b64encode(data).decode("ascii"),
        }
        for photo_id, booking_id, taken_at, mime_type, data in session.execute(
            select(
                CandidatePhoto.id,
                CandidatePhoto.booking_id,
                CandidatePhoto.taken_at,
                CandidatePhoto.mime_type,
                CandidatePhoto.data,
            )
            .where(CandidatePhoto.user_id == user.id)
            .order_by(CandidatePhoto.id)
        )
    ]


# ---- photos for staff and owners ----------------------------------------------------------


def photo_for(session: Session, requester: User, photo_id: int) -> CandidatePhoto:
    """A check-in photo for its owner or for staff of the session it was taken at (an
    assigned proctor, an operator of that centre, an admin); anyone else gets the same
    "not found" as for a photo that does not exist."""
    photo = session.get(CandidatePhoto, photo_id)
    missing = NotFound(N_("There is no such photo."), code="photo_not_found")
    if photo is None:
        raise missing
    if photo.user_id == requester.id:
        return photo
    if requester.role not in (Role.OPERATOR, Role.ADMIN, Role.PROCTOR):
        raise missing
    if photo.booking_id is None:
        if requester.role != Role.ADMIN:
            raise missing
        return photo
    booking = session.get(Booking, photo.booking_id)
    try:
        session_for_staff(session, requester, booking.session_id)
    except NotFound:
        raise missing from None
    return photo


def data_summary(session: Session, user: User) -> dict[str, Any]:
    """What the "My data" page shows: the profile and how many records of each kind."""

    def count(model: Any, column: Any) -> int:
        return session.scalar(select(func.count(model.id)).where(column == user.id))

    return {
        "profile": profile_data(session.get(CandidateProfile, user.id)),
        "email": user.email,
        "bookings": count(Booking, Booking.user_id),
        "attempts": count(Attempt, Attempt.user_id),
        "certificates": count(Certificate, Certificate.user_id),
        "photos": count(CandidatePhoto, CandidatePhoto.user_id),
        "blocker": erasure_blocker(session, user),
    }
