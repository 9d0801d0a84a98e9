"""The requester's own data: a copy of everything held, erasure, and check-in photos.

A photo is served to its owner and to staff of the session it was taken at; anyone
else, and any id that does not exist, gets the same 404. Certificate verifiers see the
holder's photo through the certificate routes instead (number and date of birth, or
the signed token).
"""

from __future__ import annotations

import io

from flask import send_file
from marshmallow import Schema, fields, validate

from testing_center.access import requester, require_roles
from testing_center.accounts.services import MAX_PASSWORD_LENGTH
from testing_center.api.blueprint import Blueprint
from testing_center.api.schemas import ErrorSchema
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.privacy import services as privacy

blp = Blueprint("privacy", __name__, url_prefix="/api/v1", description="Personal data")
SECURITY = [{"bearerAuth": []}]


class ErasureRequestSchema(Schema):
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(max=MAX_PASSWORD_LENGTH)
    )


class ErasureSchema(Schema):
    practice_answers = fields.Integer(metadata={"description": "answers blanked"})
    photos = fields.Integer(metadata={"description": "photos deleted"})
    notifications = fields.Integer(metadata={"description": "e-mail notices deleted"})
    tokens = fields.Integer(metadata={"description": "API tokens revoked"})
    profile = fields.String(metadata={"description": "deleted, or identity kept"})


@blp.route("/me/data", methods=["GET"])
@require_roles()
@blp.response(200)
@blp.doc(security=SECURITY)
def my_data():
    """Everything held about the requester: account, profile, bookings, attempts with
    answers and released results, certificates, photos (base64), e-mails, lookups."""
    return privacy.export_data(db.session, requester(), now())


@blp.route("/me/deletion", methods=["POST"])
@require_roles()
@blp.arguments(ErasureRequestSchema)
@blp.response(200, ErasureSchema)
@blp.alt_response(401, schema=ErrorSchema, description="The password is wrong")
@blp.alt_response(409, schema=ErrorSchema, description="A seat or an exam is still ahead")
@blp.doc(security=SECURITY)
def request_deletion(data):
    """Erase what the centre need not keep and close the account for good (candidates).

    Results and certificates stay verifiable; the login ends with every token."""
    erasure = privacy.erase_personal_data(db.session, requester(), data["password"], now())
    db.session.commit()
    return erasure


@blp.route("/photos/<int:photo_id>", methods=["GET"])
@require_roles()
@blp.alt_response(404, schema=ErrorSchema, description="No such photo, or not yours to see")
@blp.doc(security=SECURITY)
def photo(photo_id):
    """A check-in photo (JPEG), for its owner and for staff of that session's centre."""
    found = privacy.photo_for(db.session, requester(), photo_id)
    response = send_file(io.BytesIO(found.data), mimetype=found.mime_type)
    response.headers["Cache-Control"] = "private, no-store"
    return response
