"""Marshmallow schemas of the test-centre operations API (centres, sessions, bookings,
check-in, proctor actions)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from testing_center.operations.proctoring import INCIDENT_CATEGORIES, MAX_EXTENSION_SECONDS

CODE = validate.Regexp(r"^[A-Za-z0-9_-]{2,16}$", error="2-16 letters, digits, - or _")
REASON = fields.String(required=True, validate=validate.Length(min=1, max=500))


class CentreSchema(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    city = fields.String(required=True, validate=validate.Length(min=1, max=100))
    address = fields.String(required=True, validate=validate.Length(min=1, max=500))
    timezone = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "IANA name, e.g. Asia/Tashkent"},
    )


class RoomSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    seats = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000))


class NewSessionSchema(Schema):
    exam_code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    center_code = fields.String(required=True, validate=CODE)
    starts_at = fields.AwareDateTime(required=True)
    capacity = fields.Integer(required=True, validate=validate.Range(min=1, max=10_000))
    room = fields.String(validate=validate.Length(min=1, max=100))
    late_minutes = fields.Integer(load_default=0, validate=validate.Range(min=0, max=120))
    results_release_at = fields.AwareDateTime()
    publish = fields.Boolean(load_default=True)


class SessionSchema(Schema):
    id = fields.Integer()
    exam_code = fields.String()
    center_code = fields.String()
    center_name = fields.String()
    city = fields.String()
    address = fields.String()
    timezone = fields.String()
    room = fields.String(allow_none=True)
    starts_at = fields.AwareDateTime()
    local_start = fields.String(metadata={"description": "the start in the centre's time zone"})
    capacity = fields.Integer()
    seats_left = fields.Integer()
    status = fields.String()
    booking_closes_at = fields.AwareDateTime()
    booking_open = fields.Boolean()
    results_release_at = fields.AwareDateTime(allow_none=True)


class SessionQuerySchema(Schema):
    exam_code = fields.String(validate=validate.Length(max=64))
    city = fields.String(validate=validate.Length(max=100))
    from_ = fields.AwareDateTime(data_key="from")
    to = fields.AwareDateTime()


class ReasonSchema(Schema):
    reason = REASON


class ResumeSchema(Schema):
    reason = REASON
    seat = fields.String(
        validate=validate.Length(min=1, max=16),
        metadata={"description": "another seat, when the candidate had to move"},
    )


class MoveSessionSchema(Schema):
    starts_at = fields.AwareDateTime(required=True)
    reason = REASON


class ProctorSchema(Schema):
    email = fields.Email(required=True)


class HoldSchema(Schema):
    email = fields.Email(required=True, metadata={"description": "the candidate's account"})
    minutes = fields.Integer(load_default=60 * 24, validate=validate.Range(min=1, max=20_160))


class BookingSchema(Schema):
    booking_id = fields.Integer()
    admission_number = fields.String()
    status = fields.String()
    session = fields.Nested(SessionSchema)
    booked_at = fields.AwareDateTime()
    hold_expires_at = fields.AwareDateTime(allow_none=True)
    checked_in_at = fields.AwareDateTime(allow_none=True)
    attempt_id = fields.String(allow_none=True)


class RescheduleSchema(Schema):
    session_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))


class CheckInSchema(Schema):
    id_document_number = fields.String(required=True, validate=validate.Length(min=1, max=32))
    photo = fields.String(
        validate=validate.Length(max=8_000_000),
        metadata={"description": "JPEG or PNG, base64; taken or confirmed at the desk"},
    )
    seat = fields.String(validate=validate.Length(min=1, max=16))


class CheckInByNumberSchema(CheckInSchema):
    admission_number = fields.String(required=True, validate=validate.Length(min=4, max=24))


class ExtendSchema(Schema):
    seconds = fields.Integer(
        required=True, validate=validate.Range(min=1, max=MAX_EXTENSION_SECONDS)
    )
    reason = REASON


class ExtensionSchema(Schema):
    id = fields.Integer()
    seconds = fields.Integer()
    reason = fields.String()
    approved = fields.Boolean()
    attempt_deadline_at = fields.AwareDateTime()


class IncidentSchema(Schema):
    category = fields.String(required=True, validate=validate.OneOf(INCIDENT_CATEGORIES))
    text = fields.String(required=True, validate=validate.Length(min=1, max=5000))
    admission_number = fields.String(validate=validate.Length(min=4, max=24))
    occurred_at = fields.AwareDateTime()


class ProctorAttemptSchema(Schema):
    attempt_id = fields.String()
    status = fields.String()
    paused = fields.Boolean()
    deadline_at = fields.AwareDateTime()
    extra_seconds = fields.Integer()
    paused_seconds = fields.Integer()


class RosterRowSchema(Schema):
    booking_id = fields.Integer()
    admission_number = fields.String()
    full_name = fields.String()
    seat = fields.String(allow_none=True)
    status = fields.String()
    arrived_late = fields.Boolean()
    attempt_id = fields.String(allow_none=True)
    section = fields.String(allow_none=True)
    answered = fields.Integer()
    items = fields.Integer()
    remaining_seconds = fields.Integer(allow_none=True)
    last_activity_at = fields.AwareDateTime(allow_none=True)
    save_retries = fields.Integer(
        metadata={"description": "Saves the candidate's page had to retry, as it reported"}
    )
    save_trouble_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "When the page last reported retries"}
    )
    pending_extensions = fields.List(fields.Nested(ExtensionSchema))


class CountSchema(Schema):
    count = fields.Integer()
