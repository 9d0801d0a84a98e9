"""Certificates: public verification, signing keys, the holder's PDF, sharing, badges,
revocation, and employers' batch checks.

Public lookups need the number AND the date of birth, answer the same 404 when either is
wrong, are rate-limited per client (a keyed hash of the address, shared by every worker
through the database) and are logged.
"""

from __future__ import annotations

import datetime as dt
import io

from flask import Response, current_app, send_file, url_for
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from testing_center.access import requester, require_recent_sign_in, require_roles
from testing_center.accounts.models import Role
from testing_center.api.blueprint import Blueprint
from testing_center.api.schemas import ErrorSchema
from testing_center.attempts.models import AttemptStatus
from testing_center.attempts.services import owned_attempt, results_released
from testing_center.certification import services as certs
from testing_center.certification.models import (
    REVOCATION_REASONS,
    Certificate,
    CertificateStatus,
)
from testing_center.clock import now
from testing_center.errors import NotFound, TooManyRequests
from testing_center.extensions import db
from testing_center.i18n import N_
from testing_center.ratelimit import client_key, hit

blp = Blueprint("certificates", __name__, url_prefix="/api/v1", description="Certificates")
SECURITY = [{"bearerAuth": []}]


class LookupQuerySchema(Schema):
    date_of_birth = fields.Date(required=True)


class SectionLineSchema(Schema):
    code = fields.String()
    title = fields.String()
    score = fields.Float()
    maximum = fields.Float()
    minimum = fields.Float(allow_none=True)


class CertificateStatusSchema(Schema):
    number = fields.String()
    status = fields.String(metadata={"description": "valid, revoked or superseded"})
    revoked_at = fields.AwareDateTime(allow_none=True)
    revocation_reason = fields.String(allow_none=True)
    superseded_by = fields.String(allow_none=True)
    full_name = fields.String()
    date_of_birth = fields.String()
    nationality = fields.String()
    exam_code = fields.String()
    exam_title_en = fields.String()
    exam_title_ja = fields.String(allow_none=True)
    exam_date = fields.String()
    test_centre = fields.String()
    sections = fields.List(fields.Nested(SectionLineSchema))
    total = fields.Float()
    scale_min = fields.Float()
    scale_max = fields.Float()
    passed = fields.Boolean()
    level = fields.String(allow_none=True)
    pass_rule = fields.String()
    issued_at = fields.AwareDateTime()
    has_photo = fields.Boolean()


class RevokeSchema(Schema):
    category = fields.String(required=True, validate=validate.OneOf(REVOCATION_REASONS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ShareSchema(Schema):
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=certs.MAX_SHARE_DAYS))


class ShareLinkSchema(Schema):
    url = fields.String()
    token = fields.String(metadata={"description": "names the link to withdraw it"})
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime()


class WithdrawShareSchema(Schema):
    token = fields.String(required=True, validate=validate.Length(min=1, max=64))


class BadgeSchema(Schema):
    credential = fields.Dict()
    jwt = fields.String(metadata={"description": "the credential as an Open Badges 3.0 JWT"})


class BatchItemSchema(Schema):
    number = fields.String(required=True, validate=validate.Length(min=1, max=40))
    date_of_birth = fields.Date(required=True)


class BatchSchema(Schema):
    items = fields.List(
        fields.Nested(BatchItemSchema),
        required=True,
        validate=validate.Length(min=1, max=certs.MAX_BATCH),
    )


class BatchResultSchema(Schema):
    number = fields.String()
    status = fields.String(metadata={"description": "valid, revoked, superseded or not_found"})
    full_name = fields.String(allow_none=True)
    exam_code = fields.String(allow_none=True)
    exam_date = fields.String(allow_none=True)
    total = fields.Float(allow_none=True)
    passed = fields.Boolean(allow_none=True)
    superseded_by = fields.String(allow_none=True)


class BatchReportSchema(Schema):
    batch = fields.String()
    checked_at = fields.AwareDateTime()
    results = fields.List(fields.Nested(BatchResultSchema))


class BatchSummarySchema(Schema):
    batch = fields.String()
    checked_at = fields.AwareDateTime()
    count = fields.Integer()


def limited(scope: str) -> str:
    """Count this request against the client's verification budget; 429 past it.

    The lookup's transaction writes only this count and a log row, so its commit does
    not wait for the disk (``certs.without_flush_wait``).
    """
    certs.without_flush_wait(db.session)
    key = client_key(scope)
    config = current_app.config
    window = dt.timedelta(seconds=config["VERIFY_RATE_WINDOW_SECONDS"])
    if not hit(db.session, key, config["VERIFY_RATE_LIMIT"], window, now()):
        db.session.commit()
        raise TooManyRequests(
            N_("Too many verification requests; please wait a minute."), code="rate_limited"
        )
    return key.split(":", 1)[1]


def found_or_404(certificate: Certificate | None) -> Certificate:
    if certificate is None:
        raise NotFound(
            N_("No certificate matches this number and date of birth."),
            code="certificate_not_found",
        )
    return certificate


@blp.route("/certificates/keys", methods=["GET"])
@blp.response(200)
def keys():
    """The public signing keys (JWKS) that verify certificate tokens, offline too."""
    return certs.key_ring(now()).jwks()


@blp.route("/certificates/<number>", methods=["GET"])
@blp.arguments(LookupQuerySchema, location="query")
@blp.response(200, CertificateStatusSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Unknown number or wrong date of birth")
@blp.alt_response(429, schema=ErrorSchema, description="Too many requests from this client")
def verify_certificate(query, number):
    """Public verification: status (valid, revoked, superseded), holder, exam and result."""
    client = limited("verify")
    certificate = certs.lookup(
        db.session,
        number=number,
        date_of_birth=query["date_of_birth"],
        channel="api",
        now=now(),
        client=client,
    )
    # read before the commit, which would expire the row and read it again
    payload = certs.status_payload(db.session, certificate) if certificate else None
    db.session.commit()
    found_or_404(certificate)
    return payload


@blp.route("/certificates/<number>/photo", methods=["GET"])
@blp.arguments(LookupQuerySchema, location="query")
@blp.alt_response(404, schema=ErrorSchema, description="Unknown number or wrong date of birth")
def certificate_photo(query, number):
    """The holder's photo on the certificate, for the verifier to compare faces."""
    limited("verify")
    certificate = certs.lookup(
        db.session,
        number=number,
        date_of_birth=query["date_of_birth"],
        channel="photo",
        now=now(),
    )
    db.session.commit()
    photo = certs.certificate_photo(db.session, found_or_404(certificate))
    if photo is None:
        raise NotFound(N_("This certificate has no photo."), code="no_photo")
    return send_file(io.BytesIO(photo), mimetype="image/jpeg", max_age=0)


@blp.route("/certificates/<number>/revoke", methods=["POST"])
@require_roles(Role.OPERATOR, Role.ADMIN)
@require_recent_sign_in
@blp.arguments(RevokeSchema)
@blp.response(200, CertificateStatusSchema)
@blp.doc(security=SECURITY)
def revoke(data, number):
    """Revoke a certificate (misconduct found later, ...); the holder is notified."""
    found = certs.certificate_for_staff(db.session, requester(), number)  # their centres only
    certificate = certs.revoke(
        db.session,
        number=found.number,
        category=data["category"],
        reason=data["reason"],
        actor=requester(),
        now=now(),
    )
    db.session.commit()
    return certs.status_payload(db.session, certificate)


@blp.route("/certificates/<number>/share", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.arguments(ShareSchema)
@blp.response(201, ShareLinkSchema)
@blp.doc(security=SECURITY)
def share(data, number):
    """A link showing this certificate's status to whoever has it, until it expires."""
    certificate = certs.own_certificate(db.session, number, requester())
    link = certs.share(db.session, certificate, data["days"], now())
    db.session.commit()
    return share_link_payload(link)


def share_link_payload(link) -> dict:
    return {
        "url": certs.share_url(link),
        "token": link.token,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
    }


@blp.route("/certificates/<number>/share", methods=["GET"])
@require_roles(Role.CANDIDATE)
@blp.response(200, ShareLinkSchema(many=True))
@blp.doc(security=SECURITY)
def share_links(number):
    """The holder's share links of this certificate that still work, newest first."""
    certificate = certs.own_certificate(db.session, number, requester())
    live = certs.live_share_links(db.session, [certificate.id], now())
    return [share_link_payload(link) for link in live.get(certificate.id, [])]


@blp.route("/certificates/<number>/share/withdraw", methods=["POST"])
@require_roles(Role.CANDIDATE)
@blp.arguments(WithdrawShareSchema)
@blp.response(204)
@blp.alt_response(404, schema=ErrorSchema, description="No such certificate or live link")
@blp.doc(security=SECURITY)
def withdraw_share(data, number):
    """End a share link before it expires; it then answers like an unknown link."""
    user = requester()
    certificate = certs.own_certificate(db.session, number, user)
    certs.withdraw_share(db.session, certificate, data["token"], user, now())
    db.session.commit()


@blp.route("/certificates/<number>/badge", methods=["GET"])
@require_roles(Role.CANDIDATE)
@blp.response(200, BadgeSchema)
@blp.doc(security=SECURITY)
def badge(number):
    """The certificate as an Open Badges 3.0 credential, signed as a JWT."""
    certificate = certs.own_certificate(db.session, number, requester())
    return certs.badge_export(db.session, certificate, now(), jwks_url())


def jwks_url() -> str:
    return f"{certs.public_base_url()}{url_for('certificates.keys')}"


@blp.route("/attempts/<attempt_id>/certificate.pdf", methods=["GET"])
@require_roles(Role.CANDIDATE)
@blp.alt_response(404, schema=ErrorSchema, description="No such attempt or no certificate yet")
@blp.doc(security=SECURITY)
def attempt_certificate(attempt_id):
    """The certificate of a proctored attempt, or the practice report of a practice one."""
    attempt = owned_attempt(db.session, attempt_id, requester())
    if attempt.status != AttemptStatus.FINISHED:
        raise NotFound(N_("This attempt has no result to print."), code="no_result")
    if attempt.booking_id is None:
        pdf, name = certs.practice_pdf(db.session, attempt, now()), f"practice-{attempt.id[:8]}"
    else:
        certificate = db.session.scalar(
            select(Certificate).where(
                Certificate.attempt_id == attempt.id,
                Certificate.status == CertificateStatus.VALID,
            )
        )
        if certificate is None or not results_released(db.session, attempt):
            raise NotFound(N_("The certificate has not been issued yet."), code="not_issued")
        pdf, name = certs.certificate_pdf(db.session, certificate), certificate.number
    return send_file(io.BytesIO(pdf), mimetype="application/pdf", download_name=f"{name}.pdf")


# ---- employers ------------------------------------------------------------------------


@blp.route("/employer/verifications", methods=["POST"])
@require_roles(Role.EMPLOYER)
@blp.arguments(BatchSchema)
@blp.response(201, BatchReportSchema)
@blp.doc(security=SECURITY)
def verify_batch(data):
    """Check up to 500 certificates (number + date of birth) at once; kept in the history."""
    batch, results = certs.check_batch(db.session, data["items"], requester(), now())
    db.session.commit()
    return {"batch": batch, "checked_at": now(), "results": results}


@blp.route("/employer/verifications", methods=["GET"])
@require_roles(Role.EMPLOYER)
@blp.response(200, BatchSummarySchema(many=True))
@blp.doc(security=SECURITY)
def batch_history():
    """The employer's earlier batch checks, newest first."""
    return certs.batch_history(db.session, requester())


@blp.route("/employer/verifications/<batch>.csv", methods=["GET"])
@require_roles(Role.EMPLOYER)
@blp.doc(security=SECURITY)
def batch_csv(batch):
    """One earlier batch as CSV: number, status, holder, exam, date, total, result."""
    report = certs.batch_report(db.session, requester(), batch)
    return Response(
        certs.batch_csv_text(report),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=verification-{batch}.csv"},
    )
