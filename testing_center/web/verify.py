"""Public verification pages: what an employer's phone opens from the QR code, the form
for a number and date of birth, an uploaded PDF, and links a candidate shared.

The QR code carries the certificate number and a signature of it (``?n=&s=``; codes
printed before these short links carry the whole signed token, ``?t=``): either is
checked against our public keys first (so a forgery fails before the database is asked),
then the number's current status is read (revoked or superseded since?). The form needs
the number AND the date of birth and answers the same "not found" when either is wrong.
Every check is logged and rate-limited per client like the API's.
"""

from __future__ import annotations

import datetime as dt
import io

from flask import Blueprint, abort, current_app, render_template, request, send_file
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from certificates import verify as offline
from certificates.errors import TokenError
from testing_center.certification import services as certs
from testing_center.certification.models import Certificate, ShareLink
from testing_center.clock import now
from testing_center.errors import TooManyRequests
from testing_center.extensions import db
from testing_center.i18n import N_
from testing_center.ratelimit import client_key, hit
from testing_center.web.certificates import register_labels

bp = Blueprint("verify", __name__, url_prefix="/verify")
register_labels(bp)
MAX_UPLOAD = 5 * 1024 * 1024
PHOTO_GRANT_SECONDS = 600


def within_limit() -> str:
    """Count this request against the client's verification budget (429 past it); the
    check's transaction writes only that count and a log row, so its commit does not
    wait for the disk (``certs.without_flush_wait``)."""
    certs.without_flush_wait(db.session)
    key = client_key("verify")
    config = current_app.config
    window = dt.timedelta(seconds=config["VERIFY_RATE_WINDOW_SECONDS"])
    if not hit(db.session, key, config["VERIFY_RATE_LIMIT"], window, now()):
        db.session.commit()
        raise TooManyRequests(
            N_("Too many verification requests; please wait a minute."), code="rate_limited"
        )
    return key.split(":", 1)[1]


def page(status: int = 200, **context):
    return render_template("verify/verify.html", **context), status


@bp.route("", methods=["GET"])
def verify_page():
    token = request.args.get("t")
    if not token:
        if request.args.get("n") and request.args.get("s"):
            return linked_page(request.args["n"], request.args["s"])
        return page()
    client = within_limit()
    moment = now()
    checked = offline.verify_document(token, certs.key_ring(moment).jwks(), moment)
    certificate = None
    if checked.is_valid:
        certificate = certs.find_certificate(db.session, checked.claims.number, from_replica=True)
        certs.log_verification(db.session, checked.claims.number, certificate, "qr", moment, client)
    result = status_before_commit(certificate)
    return page(
        offline_check=checked,
        result=result,
        photo_token=token if result and result["has_photo"] else None,
        not_found=checked.is_valid and certificate is None,
    )


def status_before_commit(certificate: Certificate | None) -> dict | None:
    """What the verifier is shown, read before the request's commit: the commit expires
    the certificate, and reading it afterwards would load it again from the primary,
    not from the replica it was read on (``DATABASE_REPLICA_URL``)."""
    result = certs.status_payload(db.session, certificate) if certificate else None
    db.session.commit()
    return result


def linked_page(number: str, signature: str):
    """What a certificate's QR code opens: the short link ``?n=<number>&s=<signature>``
    (``certificates.links``) shows the online record when a published key signed the
    link, else the same refusal as a forged token."""
    client = within_limit()
    moment = now()
    try:
        certificate = certs.linked_certificate(db.session, number, signature, moment, client)
    except TokenError as error:
        db.session.commit()  # the rate-limit count
        refused = offline.VerificationResult(
            offline.Status.INVALID, (offline.Problem(error.code, str(error)),)
        )
        return page(offline_check=refused)
    return found_page(certificate, number)


def found_page(certificate: Certificate | None, number: str):
    """The answer to a lookup by number: the record, with a grant to see the photo."""
    result = status_before_commit(certificate)
    if result is None:
        return page(404, not_found=True, number=number)
    grant = photo_grant(result["number"]) if result["has_photo"] else None
    return page(result=result, photo_grant=grant)


@bp.route("", methods=["POST"])
def verify_form():
    client = within_limit()
    moment = now()
    upload = request.files.get("document")
    if upload and upload.filename:
        data = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return page(413, error=_("The file is larger than 5 MB."))
        checked = offline.verify_document(data, certs.key_ring(moment).jwks(), moment)
        certificate = None
        if checked.claims is not None:
            certificate = certs.find_certificate(
                db.session, checked.claims.number, from_replica=True
            )
            certs.log_verification(
                db.session, checked.claims.number, certificate, "upload", moment, client
            )
        result = status_before_commit(certificate)
        return page(offline_check=checked, result=result if checked.is_valid else None)
    number = request.form.get("number", "").strip()
    try:
        born = dt.date.fromisoformat(request.form.get("date_of_birth", ""))
    except ValueError:
        return page(422, error=_("Enter the date of birth as on the certificate."), number=number)
    certificate = certs.lookup(
        db.session, number=number, date_of_birth=born, channel="page", now=moment, client=client
    )
    return found_page(certificate, number)


def grants() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt="verify-photo")


def photo_grant(number: str) -> str:
    """A signed, short-lived grant to see one certificate's photo, for the page that just
    checked its number and date of birth: the photo's URL then carries no date of birth."""
    return grants().dumps(number)


@bp.route("/photo")
def photo():
    """The holder's photo for a verifier holding a valid token (the QR code) or a grant
    from a successful check by number and date of birth (``g``, valid 10 minutes)."""
    moment = now()
    if request.args.get("g"):
        try:
            number = grants().loads(request.args["g"], max_age=PHOTO_GRANT_SECONDS)
        except BadSignature:
            abort(404)
    else:
        checked = offline.verify_document(
            request.args.get("t", ""), certs.key_ring(moment).jwks(), moment
        )
        if checked.status != "valid":
            abort(404)
        number = checked.claims.number
    certificate = db.session.scalar(select(Certificate).where(Certificate.number == number))
    data = certs.certificate_photo(db.session, certificate) if certificate else None
    if data is None:
        abort(404)
    return send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=0)


@bp.route("/shared/<token>")
def shared(token: str):
    """A result a candidate shared: shown until the link expires or is withdrawn; then it
    answers as a link that never existed."""
    link = db.session.get(ShareLink, token)
    moment = now()
    if link is None or not certs.is_live(link, moment):
        return page(404, expired=True)
    certs.log_verification(db.session, link.certificate.number, link.certificate, "share", moment)
    db.session.commit()
    return page(
        result=certs.status_payload(db.session, link.certificate), shared_until=link.expires_at
    )
