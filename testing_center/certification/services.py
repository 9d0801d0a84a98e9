"""Issuing, re-issuing, revoking and looking up certificates.

A certificate is issued for a finished, non-voided proctored attempt once its session's
results are released; it stores the facts it signed and the token, so its PDF can be
rendered again at any time and always agrees with the token. A re-scoring that changes a
result marks the attempt (``ScoreRevision.reissue_pending``); the re-issue sweep gives it
a new certificate and marks the old one superseded, pointing to the new. Lookups answer
the same "not found" for an unknown number and for a wrong date of birth, and every
lookup is logged without the querier's address (a keyed hash only).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
import zoneinfo
from pathlib import Path

from flask import current_app, url_for
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from certificates import badges, claims, codes, document, links, signing
from certificates.errors import InvalidNumber
from certificates.facts import CertificateFacts, PracticeFacts, ScoreLine
from exam_templates.blueprint import Blueprint, parse_blueprint
from testing_center import clock
from testing_center.accounts.models import CandidateProfile, User
from testing_center.attempts.models import Attempt, AttemptStatus, ScoreRevision
from testing_center.attempts.presenters import scoring_titles
from testing_center.certification.models import (
    REVOCATION_REASONS,
    Certificate,
    CertificateStatus,
    ShareLink,
    Verification,
)
from testing_center.config import REPLICA_BIND
from testing_center.errors import Conflict, InvalidInput, NotFound
from testing_center.i18n import N_
from testing_center.operations import audit
from testing_center.operations.models import Booking, CandidatePhoto, ExamSession
from testing_center.operations.notify import queue_notification
from testing_center.operations.services import centre_ids_of

ISSUER = "Testing Center"
# what may change after issue (revocation, replacement): never read from a replica
STATUS_COLUMNS = ("status", "revoked_at", "revocation_reason", "revoked_by_id", "superseded_by_id")
MAX_BATCH = 500  # lines in one employer's batch check
MAX_SHARE_DAYS = 365


# ---- keys -------------------------------------------------------------------------------


def key_ring(now: dt.datetime) -> signing.KeyRing:
    """The signing keys: from ``CERTIFICATE_KEYS_PEM`` when configured, else a folder in
    the instance path, created with a first key on first use. Cached per process; a key
    rotation by the CLI is seen after a restart."""
    cached = current_app.extensions.get("certificate_keys")
    if cached is not None and any(key.can_sign_at(now) for key in cached):
        return cached
    pem = current_app.config.get("CERTIFICATE_KEYS_PEM")
    ring = signing.key_ring_from_config(pem) if pem else signing.load_key_ring(key_folder(), now)
    current_app.extensions["certificate_keys"] = ring
    return ring


def key_folder() -> Path:
    return Path(current_app.instance_path) / "certificate-keys"


def public_base_url() -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/")


# ---- facts ------------------------------------------------------------------------------


def pass_rule_texts(blueprint: Blueprint) -> tuple[str, str]:
    """The pass rule in English and Japanese, as printed on the certificate."""
    rule = blueprint.scoring.describe()["pass_rule"]
    if "min_percent" in rule:
        percent = f"{rule['min_percent']:g}"
        return f"Pass: {percent}% or more", f"合格：{percent}％以上"
    total = f"{rule['total_min']:g}"
    english, japanese = f"Pass: total {total} or more", f"合格：総合得点{total}点以上"
    if rule.get("section_minimums"):
        english += " and every section at its minimum"
        japanese += "、かつ各得点区分が基準点以上"
    return english, japanese


def reported_total(blueprint: Blueprint, result: dict) -> float:
    """The total on the scale the certificate prints: the percentage for percent-correct
    rules (SSW skills tests: "65% or more"), else the scaled total."""
    if "min_percent" in blueprint.scoring.describe()["pass_rule"]:
        return result.get("percent", 0.0)
    return result.get("total", 0.0)


def score_lines(blueprint: Blueprint, result: dict) -> tuple[ScoreLine, ...]:
    english, japanese = scoring_titles(blueprint, "en"), scoring_titles(blueprint, "ja")
    lines = []
    for section in result.get("sections", []):
        scaled = section.get("scaled") is not None
        lines.append(
            ScoreLine(
                code=section["code"],
                title_en=english.get(section["code"], section["code"]),
                title_ja=japanese.get(section["code"]) or None,
                score=section["scaled"] if scaled else section["points"],
                maximum=section["scale_max"] if scaled else section["max_points"],
                minimum=section.get("minimum"),
            )
        )
    return tuple(lines)


def newest_photo(session: Session, user_id: int) -> CandidatePhoto | None:
    return session.scalar(
        select(CandidatePhoto)
        .where(CandidatePhoto.user_id == user_id)
        .order_by(CandidatePhoto.taken_at.desc(), CandidatePhoto.id.desc())
        .limit(1)
    )


def certificate_facts(
    session: Session, attempt: Attempt, number: str, now: dt.datetime
) -> tuple[CertificateFacts, int | None]:
    """What the certificate of ``attempt`` states, and the id of the photo it shows."""
    booking = session.get(Booking, attempt.booking_id)
    exam_session = booking.session
    centre = exam_session.centre
    profile = session.get(CandidateProfile, attempt.user_id)
    blueprint = parse_blueprint(attempt.template.definition)
    result = attempt.result or {}
    scale = blueprint.scoring.describe()["scale"]
    rule_en, rule_ja = pass_rule_texts(blueprint)
    photo = newest_photo(session, attempt.user_id)
    local_day = exam_session.starts_at.astimezone(zoneinfo.ZoneInfo(centre.timezone)).date()
    facts = CertificateFacts(
        number=number,
        issuing_centre=f"{ISSUER} · {centre.name}",
        exam_code=blueprint.code,
        exam_title_en=blueprint.title.get("en") or blueprint.code,
        exam_title_ja=blueprint.title.get("ja"),
        full_name=profile.full_name,
        date_of_birth=profile.date_of_birth,
        nationality=profile.nationality,
        exam_date=local_day,
        test_centre=f"{centre.name}, {centre.city}",
        sections=score_lines(blueprint, result),
        total=reported_total(blueprint, result),
        scale_min=scale["min"],
        scale_max=scale["max"],
        passed=bool(result["passed"]),
        pass_rule_en=rule_en,
        pass_rule_ja=rule_ja,
        issued_at=now,
        level=result.get("band"),
        photo=photo_bytes(session, photo),
    )
    return facts, photo.id if photo else None


def photo_bytes(session: Session, photo: CandidatePhoto | None) -> bytes | None:
    if photo is None:
        return None
    return session.scalar(select(CandidatePhoto.data).where(CandidatePhoto.id == photo.id))


def certificate_photo(session: Session, certificate: Certificate) -> bytes | None:
    """The photo printed on the certificate (the one taken at check-in), if any."""
    if certificate.photo_id is None:
        return None
    return photo_bytes(session, session.get(CandidatePhoto, certificate.photo_id))


def stored_facts(session: Session, certificate: Certificate) -> CertificateFacts:
    """The facts a stored certificate signed, ready to render again."""
    data = dict(certificate.facts)
    return CertificateFacts(
        **{
            **data,
            "date_of_birth": dt.date.fromisoformat(data["date_of_birth"]),
            "exam_date": dt.date.fromisoformat(data["exam_date"]),
            "issued_at": dt.datetime.fromisoformat(data["issued_at"]),
            "sections": tuple(ScoreLine(**line) for line in data["sections"]),
            "photo": certificate_photo(session, certificate),
        }
    )


def facts_record(facts: CertificateFacts) -> dict:
    """The facts as JSON for the database (the photo is kept by reference)."""
    return {
        name: (
            value.isoformat()
            if isinstance(value, dt.date | dt.datetime)
            else [line.__dict__ for line in value]
            if name == "sections"
            else value
        )
        for name, value in facts.__dict__.items()
        if name != "photo"
    }


# ---- issue, re-issue, revoke ------------------------------------------------------------


def eligible_attempts(session: Session, limit: int = 500) -> list[str]:
    """Finished proctored attempts of released sessions that have no certificate yet."""
    return list(
        session.scalars(
            select(Attempt.id)
            .join(Booking, Booking.id == Attempt.booking_id)
            .join(ExamSession, ExamSession.id == Booking.session_id)
            .where(
                Attempt.status == AttemptStatus.FINISHED,
                ExamSession.results_released_at.is_not(None),
                ~select(Certificate.id).where(Certificate.attempt_id == Attempt.id).exists(),
            )
            .order_by(Attempt.finished_at)
            .limit(limit)
        )
    )


def issue_certificate(session: Session, attempt: Attempt, now: dt.datetime) -> Certificate:
    """Issue the certificate of a finished, released, non-voided proctored attempt."""
    if attempt.booking_id is None:
        raise Conflict(
            N_("Practice attempts get a practice report, never a certificate."),
            code="practice_attempt",
        )
    if attempt.status != AttemptStatus.FINISHED or not attempt.result:
        raise Conflict(N_("Only a finished, valid attempt gets a certificate."), code="not_final")
    existing = session.scalar(
        select(Certificate).where(
            Certificate.attempt_id == attempt.id, Certificate.status == CertificateStatus.VALID
        )
    )
    if existing is not None:
        return existing
    return new_certificate(session, attempt, now)


def new_certificate(session: Session, attempt: Attempt, now: dt.datetime) -> Certificate:
    ring = key_ring(now)
    key = ring.signing_key(now)
    for _ in range(3):  # a number collision is astronomically rare; try another
        number = codes.new_certificate_number()
        facts, photo_id = certificate_facts(session, attempt, number, now)
        certificate = Certificate(
            number=number,
            attempt_id=attempt.id,
            user_id=attempt.user_id,
            status=CertificateStatus.VALID,
            facts=facts_record(facts),
            token=claims.sign_certificate(facts, key),
            key_id=key.kid,
            issued_at=now,
            photo_id=photo_id,
        )
        try:
            with session.begin_nested():
                session.add(certificate)
                session.flush()
        except IntegrityError:
            continue
        return certificate
    raise RuntimeError("could not draw an unused certificate number")


def issue_released(session: Session, now: dt.datetime) -> int:
    """The scheduler's sweep: certificates for released results (idempotent)."""
    issued = 0
    for attempt_id in eligible_attempts(session):
        attempt = session.get(Attempt, attempt_id)
        issue_certificate(session, attempt, now)
        issued += 1
    return issued


def reissue_pending(session: Session, now: dt.datetime) -> int:
    """Re-issue certificates whose attempt was re-scored since; the old ones are marked
    superseded and point to the new. Revisions of attempts without a certificate are
    cleared: their certificate, when issued, states the new result."""
    reissued = 0
    for revision in session.scalars(
        select(ScoreRevision).where(ScoreRevision.reissue_pending.is_(True))
    ):
        current = session.scalar(
            select(Certificate).where(
                Certificate.attempt_id == revision.attempt_id,
                Certificate.status == CertificateStatus.VALID,
            )
        )
        if current is not None:
            replace(session, current, now, reason=revision.reason)
            reissued += 1
        session.execute(
            update(ScoreRevision)
            .where(ScoreRevision.attempt_id == revision.attempt_id)
            .values(reissue_pending=False)
        )
    session.flush()
    return reissued


def replace(
    session: Session, certificate: Certificate, now: dt.datetime, *, reason: str
) -> Certificate:
    """A new certificate from the attempt's current result; the old one superseded."""
    attempt = session.get(Attempt, certificate.attempt_id)
    certificate.status = CertificateStatus.SUPERSEDED
    session.flush()
    successor = new_certificate(session, attempt, now)
    certificate.superseded_by_id = successor.id
    audit.record(
        session,
        actor=None,
        action="certificate.reissue",
        entity="certificate",
        entity_id=certificate.number,
        now=now,
        after={"superseded_by": successor.number},
        reason=reason,
    )
    user = session.get(User, attempt.user_id)
    queue_notification(
        session, user, "certificate_reissued", now, old=certificate.number, new=successor.number
    )
    return successor


def revoke(
    session: Session,
    *,
    number: str,
    category: str,
    reason: str,
    actor: User,
    now: dt.datetime,
) -> Certificate:
    """Revoke a certificate (misconduct found later, ...): verification shows it, with the
    date and the category; the holder is told."""
    if category not in REVOCATION_REASONS:
        raise InvalidInput(N_("Unknown revocation reason."), code="invalid_reason")
    if not reason.strip():
        raise InvalidInput(N_("Give a reason for this action."), code="reason_required")
    certificate = certificate_by_number(session, number)
    if certificate.status != CertificateStatus.VALID:
        raise Conflict(N_("Only a valid certificate can be revoked."), code="not_valid")
    certificate.status = CertificateStatus.REVOKED
    certificate.revoked_at = now
    certificate.revocation_reason = category
    certificate.revoked_by_id = actor.id
    audit.record(
        session,
        actor=actor,
        action="certificate.revoke",
        entity="certificate",
        entity_id=certificate.number,
        now=now,
        before={"status": "valid"},
        after={"status": "revoked", "category": category},
        reason=reason,
    )
    queue_notification(
        session,
        session.get(User, certificate.user_id),
        "certificate_revoked",
        now,
        number=certificate.number,
    )
    session.flush()
    return certificate


def valid_certificate_number(session: Session, attempt_id: str) -> str | None:
    """The number of the attempt's certificate in force, if one was issued."""
    return session.scalar(
        select(Certificate.number).where(
            Certificate.attempt_id == attempt_id, Certificate.status == CertificateStatus.VALID
        )
    )


def certificate_by_number(
    session: Session, typed: str, *, from_replica: bool = False
) -> Certificate:
    try:
        number = codes.parse_certificate_number(typed)
    except InvalidNumber:
        number = None
    certificate = find_certificate(session, number, from_replica=from_replica) if number else None
    if certificate is None:
        raise NotFound(N_("No certificate matches this number."), code="certificate_not_found")
    return certificate


def replica_engine() -> Engine | None:
    """The engine of the read replica set by ``DATABASE_REPLICA_URL``, if any."""
    return current_app.extensions["sqlalchemy"].engines.get(REPLICA_BIND)


def find_certificate(
    session: Session, number: str, *, from_replica: bool = False
) -> Certificate | None:
    """The certificate numbered ``number``; with ``from_replica``, read on the replica
    when one is configured, so public verification traffic leaves the primary alone.

    A replica runs a moment behind the primary. Facts, token and photo never change
    after issue, so they may come from it; the status columns, which a revocation or a
    replacement changes, are read again from the primary by primary key, so a
    certificate revoked a second ago never reads as valid. A number the replica does not
    know yet (issued a second ago) is looked up on the primary, and so is every number
    while the replica cannot be reached: verification must not depend on it.
    """
    statement = select(Certificate).where(Certificate.number == number)
    replica = replica_engine() if from_replica else None
    if replica is not None:
        try:
            certificate = session.scalar(statement, bind_arguments={"bind": replica})
        except OperationalError as error:  # no connection to it: down, or restarting
            current_app.logger.warning("verification replica unreachable: %s", error.orig)
            certificate = None
        if certificate is not None:
            session.refresh(certificate, attribute_names=STATUS_COLUMNS)
            return certificate
    return session.scalar(statement)


# ---- lookups ----------------------------------------------------------------------------


def lookup(
    session: Session,
    *,
    number: str,
    date_of_birth: dt.date | None,
    channel: str,
    now: dt.datetime,
    client: str | None = None,
    employer: User | None = None,
    batch: str | None = None,
) -> Certificate | None:
    """Find a certificate by number AND date of birth; None for either mismatch (the
    same answer, so the number alone reveals nothing). The check is logged."""
    try:
        certificate = certificate_by_number(session, number, from_replica=True)
    except NotFound:
        certificate = None
    if certificate is not None and certificate.facts["date_of_birth"] != (
        date_of_birth.isoformat() if date_of_birth else None
    ):
        certificate = None
    log_verification(session, number, certificate, channel, now, client, employer, batch)
    return certificate


def without_flush_wait(session: Session) -> None:
    """Let this transaction's commit return before PostgreSQL has flushed it to disk.

    For the transaction of a public lookup, which writes only its rate-limit count and
    its verification log row: a crash of the database server may lose the last of these
    (up to three times ``wal_writer_delay``, 0.6 s by default), which is acceptable, and
    never leaves the database inconsistent; in exchange no lookup waits for a disk
    flush. ``SET LOCAL`` ends with the transaction. Other databases: nothing changes.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL synchronous_commit = off"))


def log_verification(
    session: Session,
    number: str,
    certificate: Certificate | None,
    channel: str,
    now: dt.datetime,
    client: str | None = None,
    employer: User | None = None,
    batch: str | None = None,
) -> None:
    session.add(
        Verification(
            at=now,
            number=number[:40],
            certificate_id=certificate.id if certificate else None,
            outcome=certificate.status if certificate else "not_found",
            channel=channel,
            client=client,
            employer_id=employer.id if employer else None,
            batch=batch,
        )
    )


def status_payload(session: Session, certificate: Certificate) -> dict:
    """What a verifier is told: status, the holder and the result as certified."""
    facts = certificate.facts
    superseded_by = (
        session.get(Certificate, certificate.superseded_by_id).number
        if certificate.superseded_by_id
        else None
    )
    return {
        "number": certificate.number,
        "status": certificate.status,
        "revoked_at": certificate.revoked_at,
        "revocation_reason": certificate.revocation_reason,
        "superseded_by": superseded_by,
        "full_name": facts["full_name"],
        "date_of_birth": facts["date_of_birth"],
        "nationality": facts["nationality"],
        "exam_code": facts["exam_code"],
        "exam_title_en": facts["exam_title_en"],
        "exam_title_ja": facts["exam_title_ja"],
        "exam_date": facts["exam_date"],
        "test_centre": facts["test_centre"],
        "sections": [
            {
                "code": line["code"],
                "title": line["title_en"],
                "score": line["score"],
                "maximum": line["maximum"],
                "minimum": line["minimum"],
            }
            for line in facts["sections"]
        ],
        "total": facts["total"],
        "scale_min": facts["scale_min"],
        "scale_max": facts["scale_max"],
        "passed": facts["passed"],
        "level": facts["level"],
        "pass_rule": facts["pass_rule_en"],
        "issued_at": certificate.issued_at,
        "has_photo": certificate.photo_id is not None,
    }


def certificate_pdf(session: Session, certificate: Certificate) -> bytes:
    """Render the stored certificate again: the same facts, the same token, and a QR
    link signed by the token's key while the ring holds it (else by today's key)."""
    return document.render_certificate(
        stored_facts(session, certificate),
        certificate.token,
        public_base_url(),
        link_signature(certificate, clock.now()),
    )


def link_signature(certificate: Certificate, now: dt.datetime) -> str:
    """The signature of the certificate's short verification link (``certificates.links``)."""
    ring = key_ring(now)
    key = ring.get(certificate.key_id)
    if key is None or not key.has_private_key:
        key = ring.signing_key(now)
    return links.sign_link(certificate.number, key)


def linked_certificate(
    session: Session, number: str, signature: str, now: dt.datetime, client: str | None
) -> Certificate | None:
    """The certificate that a QR code's short link names (None if no certificate has
    that number), logged like every lookup.

    The link stands in for the date of birth of a typed lookup, so its signature is
    checked before anything is read: a forged or damaged link raises the
    ``TokenError`` of ``links.verify_link`` and is not logged, like a forged token.
    """
    links.verify_link(number, signature, key_ring(now))
    certificate = find_certificate(session, number, from_replica=True)
    log_verification(session, number, certificate, "qr", now, client)
    return certificate


def practice_pdf(session: Session, attempt: Attempt, now: dt.datetime) -> bytes:
    """The practice report of a finished practice attempt (never a certificate)."""
    blueprint = parse_blueprint(attempt.template.definition)
    result = attempt.result or {}
    scale = blueprint.scoring.describe()["scale"]
    rule_en, rule_ja = pass_rule_texts(blueprint)
    profile = session.get(CandidateProfile, attempt.user_id)
    return document.practice_report(
        PracticeFacts(
            exam_code=blueprint.code,
            exam_title_en=blueprint.title.get("en") or blueprint.code,
            exam_title_ja=blueprint.title.get("ja"),
            full_name=profile.full_name if profile else "",
            taken_on=(attempt.finished_at or now).date(),
            sections=score_lines(blueprint, result),
            total=reported_total(blueprint, result),
            scale_min=scale["min"],
            scale_max=scale["max"],
            passed=bool(result.get("passed")),
            pass_rule_en=rule_en,
            pass_rule_ja=rule_ja,
            generated_at=now,
            level=result.get("band"),
        )
    )


# ---- the holder: their certificates, share links, Open Badges --------------------------


def own_certificate(session: Session, number: str, user: User) -> Certificate:
    """The certificate ``number`` of ``user``; another holder's answers "not found"."""
    certificate = certificate_by_number(session, number)
    if certificate.user_id != user.id:
        raise NotFound(N_("No certificate matches this number."), code="certificate_not_found")
    return certificate


def share(session: Session, certificate: Certificate, days: int, now: dt.datetime) -> ShareLink:
    """A link showing this certificate's status to whoever has it, for ``days`` days."""
    if not 1 <= days <= MAX_SHARE_DAYS:
        raise InvalidInput(
            N_("A link may last from 1 to %(days)d days."), code="invalid_days", days=MAX_SHARE_DAYS
        )
    link = ShareLink(
        token=secrets.token_urlsafe(24),
        certificate_id=certificate.id,
        created_at=now,
        expires_at=now + dt.timedelta(days=days),
    )
    session.add(link)
    session.flush()
    return link


def is_live(link: ShareLink, now: dt.datetime) -> bool:
    """Whether a share link still shows its certificate: not withdrawn, not expired."""
    return link.withdrawn_at is None and link.expires_at > now


def live_share_links(
    session: Session, certificate_ids: list[int], now: dt.datetime
) -> dict[int, list[ShareLink]]:
    """Per certificate, its links that still work, newest first (for the holder)."""
    if not certificate_ids:
        return {}
    links_by_certificate: dict[int, list[ShareLink]] = {}
    for link in session.scalars(
        select(ShareLink)
        .where(
            ShareLink.certificate_id.in_(certificate_ids),
            ShareLink.withdrawn_at.is_(None),
            ShareLink.expires_at > now,
        )
        .order_by(ShareLink.created_at.desc())
    ):
        links_by_certificate.setdefault(link.certificate_id, []).append(link)
    return links_by_certificate


def withdraw_share(
    session: Session, certificate: Certificate, token: str, actor: User, now: dt.datetime
) -> ShareLink:
    """End a live share link of ``certificate`` before it expires; from then on it
    answers exactly as an unknown or expired link. A token of another certificate, an
    unknown one or a dead link is "not found" alike, so the answer tells nothing about
    other holders' links. Audited, like the centre's revocations (the token is not)."""
    link = session.get(ShareLink, token, with_for_update=True)
    if link is None or link.certificate_id != certificate.id or not is_live(link, now):
        raise NotFound(N_("No such shared link."), code="share_link_not_found")
    link.withdrawn_at = now
    audit.record(
        session,
        actor=actor,
        action="certificate.share_withdrawn",
        entity="certificate",
        entity_id=certificate.number,
        now=now,
        after={
            "created_at": link.created_at.isoformat(),
            "expires_at": link.expires_at.isoformat(),
        },
    )
    session.flush()
    return link


def share_url(link: ShareLink) -> str:
    """The public address of a share link (in a request)."""
    return f"{public_base_url()}{url_for('verify.shared', token=link.token)}"


def badge_export(
    session: Session, certificate: Certificate, now: dt.datetime, jwks_url: str
) -> dict:
    """The certificate as an Open Badges 3.0 credential and the same signed as a JWT."""
    if certificate.status != CertificateStatus.VALID:
        raise Conflict(N_("Only a valid certificate can be exported."), code="not_valid")
    credential = badges.badge_credential(
        stored_facts(session, certificate),
        badges.Issuer(id=f"{public_base_url()}/", name=ISSUER),
    )
    jwt = badges.sign_badge(credential, key_ring(now).signing_key(now), jwks_url, now)
    return {"credential": credential, "jwt": jwt}


def holder_certificates(
    session: Session, attempt_ids: list[str], now: dt.datetime
) -> dict[str, list[dict]]:
    """Per attempt, its certificates newest first (the first is the one in force unless
    revoked; older ones were superseded): number, status, dates, reason, successor, and
    the share links that still work (for the holder to withdraw)."""
    if not attempt_ids:
        return {}
    rows = session.scalars(
        select(Certificate)
        .where(Certificate.attempt_id.in_(attempt_ids))
        .order_by(Certificate.issued_at.desc(), Certificate.id.desc())
    ).all()
    numbers = {row.id: row.number for row in rows}
    shared = live_share_links(session, list(numbers), now)
    found: dict[str, list[dict]] = {}
    for row in rows:
        found.setdefault(row.attempt_id, []).append(
            {
                "number": row.number,
                "status": row.status,
                "issued_at": row.issued_at,
                "revoked_at": row.revoked_at,
                "revocation_reason": row.revocation_reason,
                "superseded_by": numbers.get(row.superseded_by_id),
                "share_links": shared.get(row.id, []),
            }
        )
    return found


# ---- employers' batch checks ------------------------------------------------------------

BATCH_FIELDS = (
    "number",
    "status",
    "full_name",
    "exam_code",
    "exam_date",
    "total",
    "passed",
    "superseded_by",
)


class BatchError(InvalidInput):
    """A batch refused as a whole; ``details`` lists ``{"line", "message"}`` per bad line."""

    code = "invalid_batch"


def parse_birth_date(text: str) -> dt.date:
    """``1998-05-17`` or ``17.05.1998`` (day first, as written in Uzbekistan and Russia)."""
    text = text.strip()
    if len(text) == 10 and text[2] == "." and text[5] == ".":
        text = f"{text[6:]}-{text[3:5]}-{text[:2]}"
    return dt.date.fromisoformat(text)


def parse_batch_csv(text: str) -> list[dict]:
    """Read ``number,date_of_birth`` lines (comma, semicolon or tab; a first line without
    any digit is a header, in any language) into batch items. Any malformed line refuses
    the whole batch: ``BatchError`` names each bad line. A number that is merely mistyped
    is not malformed: it is checked and reads "not found", as a forged one would."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = next((d for d in (",", ";", "\t") if d in first), ",")
    items, problems, seen_data = [], [], False
    reader = csv.reader(lines, delimiter=delimiter)
    for row in reader:
        cells = [cell.strip() for cell in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        if not seen_data and not any(char.isdigit() for char in "".join(cells)):
            seen_data = True  # a header: only the first line may be one
            continue
        seen_data = True
        problem = batch_line_problem(cells)
        if problem:
            problems.append({"line": reader.line_num, "message": problem})
            continue
        items.append({"number": cells[0], "date_of_birth": parse_birth_date(cells[1])})
    if problems:
        raise BatchError(
            N_("Nothing was checked: correct these lines and upload the file again."),
            details=problems,
        )
    if not items:
        raise BatchError(N_("The file holds no certificate to check."), code="empty_batch")
    if len(items) > MAX_BATCH:
        raise BatchError(
            N_("The file has %(count)d lines to check; at most %(max)d are checked at once."),
            code="batch_too_large",
            count=len(items),
            max=MAX_BATCH,
        )
    return items


def batch_line_problem(cells: list[str]) -> str | None:
    """Why a line cannot be checked (an untranslated message id), or None."""
    if len(cells) != 2 or not cells[0]:
        return N_("expected two fields: the certificate number, then the date of birth")
    if len(cells[0]) > 40:
        return N_("the certificate number is longer than 40 characters")
    try:
        parse_birth_date(cells[1])
    except ValueError:
        return N_("the date of birth is not a date (write 1998-05-17 or 17.05.1998)")
    return None


def check_batch(
    session: Session, items: list[dict], employer: User, now: dt.datetime
) -> tuple[str, list[dict]]:
    """Check each ``{number, date_of_birth}``; every check is logged under a new batch id
    in the employer's history. Returns the batch id and one result per item."""
    batch = secrets.token_hex(8)
    results = []
    for item in items:
        certificate = lookup(
            session,
            number=item["number"],
            date_of_birth=item["date_of_birth"],
            channel="batch",
            now=now,
            employer=employer,
            batch=batch,
        )
        if certificate is None:
            results.append({"number": item["number"], "status": "not_found"})
            continue
        payload = status_payload(session, certificate)
        results.append({key: payload.get(key) for key in BATCH_FIELDS})
    session.flush()
    return batch, results


def batch_history(session: Session, employer: User, limit: int = 200) -> list[dict]:
    """The employer's batch checks, newest first: id, time, count."""
    rows = session.execute(
        select(Verification.batch, func.min(Verification.at), func.count())
        .where(Verification.employer_id == employer.id, Verification.batch.is_not(None))
        .group_by(Verification.batch)
        .order_by(func.min(Verification.at).desc())
        .limit(limit)
    )
    return [{"batch": b, "checked_at": at, "count": n} for b, at, n in rows]


def batch_report(session: Session, employer: User, batch: str) -> list[dict]:
    """One of the employer's batches, line by line as checked then: the number as given,
    the status at the time, and the certificate's facts (none when not found). Another
    employer's batch answers "not found"."""
    rows = session.execute(
        select(Verification.at, Verification.number, Verification.outcome, Certificate)
        .outerjoin(Certificate, Certificate.id == Verification.certificate_id)
        .where(Verification.employer_id == employer.id, Verification.batch == batch)
        .order_by(Verification.id)
    ).all()
    if not rows:
        raise NotFound(N_("There is no such batch."), code="batch_not_found")
    successors = {
        row.id: row.number
        for row in session.scalars(
            select(Certificate).where(
                Certificate.id.in_(
                    {c.superseded_by_id for *_, c in rows if c and c.superseded_by_id}
                )
            )
        )
    }
    report = []
    for at, number, outcome, certificate in rows:
        facts = certificate.facts if certificate else {}
        report.append(
            {
                "checked_at": at,
                "number": number,
                "status": outcome,
                "full_name": facts.get("full_name"),
                "exam_code": facts.get("exam_code"),
                "exam_title": facts.get("exam_title_en"),
                "exam_date": facts.get("exam_date"),
                "total": facts.get("total"),
                "scale_max": facts.get("scale_max"),
                "passed": facts.get("passed"),
                "superseded_by": successors.get(certificate.superseded_by_id)
                if certificate
                else None,
                "is_well_formed": is_certificate_number(number),
            }
        )
    return report


def is_certificate_number(typed: str) -> bool:
    """Whether ``typed`` reads as a certificate number (its check symbol agrees)."""
    try:
        codes.parse_certificate_number(typed)
    except InvalidNumber:
        return False
    return True


def batch_csv_text(report: list[dict]) -> str:
    """A batch as CSV: number, status, holder, exam, date, total, result, replacement."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["number", "status", "full_name", "exam", "exam_date", "total", "passed", "superseded_by"]
    )
    for line in report:
        writer.writerow(
            [
                line["number"],
                line["status"],
                line["full_name"] or "",
                line["exam_code"] or "",
                line["exam_date"] or "",
                "" if line["total"] is None else f"{line['total']:g}",
                {True: "yes", False: "no"}.get(line["passed"], ""),
                line["superseded_by"] or "",
            ]
        )
    return buffer.getvalue()


# ---- operators' list --------------------------------------------------------------------


def recent_certificates(
    session: Session, staff: User, search: str = "", limit: int = 100
) -> list[Certificate]:
    """Certificates newest first, of the centres ``staff`` works for; ``search`` is a
    whole number (typed loosely) or a part of one."""
    query = select(Certificate).order_by(Certificate.issued_at.desc(), Certificate.id.desc())
    allowed = centre_ids_of(session, staff)
    if allowed is not None:
        query = query.where(
            Certificate.attempt_id.in_(
                select(Attempt.id)
                .join(Booking, Booking.id == Attempt.booking_id)
                .join(ExamSession, ExamSession.id == Booking.session_id)
                .where(ExamSession.centre_id.in_(allowed))
            )
        )
    search = search.strip()
    if search:
        try:
            query = query.where(Certificate.number == codes.parse_certificate_number(search))
        except InvalidNumber:
            fragment = search.upper().replace(" ", "")
            query = query.where(Certificate.number.contains(fragment, autoescape=True))
    return list(session.scalars(query.limit(limit)))


def certificate_for_staff(session: Session, staff: User, number: str) -> Certificate:
    """The certificate ``number`` when it belongs to a centre ``staff`` works for."""
    certificate = certificate_by_number(session, number)
    allowed = centre_ids_of(session, staff)
    if allowed is not None:
        attempt = session.get(Attempt, certificate.attempt_id)
        booking = session.get(Booking, attempt.booking_id) if attempt.booking_id else None
        if booking is None or booking.session.centre_id not in allowed:
            raise NotFound(N_("No certificate matches this number."), code="certificate_not_found")
    return certificate
