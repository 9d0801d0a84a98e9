"""Reports for operators: the fraud signals (``testing_center.operations.fraud``)."""

from __future__ import annotations

from flask import current_app
from marshmallow import Schema, fields, validate

from testing_center.access import requester, require_roles
from testing_center.accounts.models import Role
from testing_center.api.blueprint import Blueprint
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.operations.fraud import DEFAULT_WINDOW_DAYS, KINDS, fraud_report

blp = Blueprint("reports", __name__, url_prefix="/api/v1/reports", description="Reports")
SECURITY = [{"bearerAuth": []}]


class FraudQuerySchema(Schema):
    days = fields.Integer(
        load_default=DEFAULT_WINDOW_DAYS,
        validate=validate.Range(min=1, max=3660),
        metadata={"description": "answer similarity and pass rates: sessions of these days"},
    )


class SignalSchema(Schema):
    kind = fields.String(metadata={"description": ", ".join(KINDS)})
    why = fields.String(metadata={"description": "in the request's language"})
    accounts = fields.List(fields.Integer())
    admission_numbers = fields.List(fields.String())
    sessions = fields.List(fields.Integer())
    photos = fields.List(fields.Integer(), metadata={"description": "GET /api/v1/photos/{id}"})
    centres = fields.List(fields.String())
    details = fields.Dict(metadata={"description": "the numbers behind the signal"})


class FraudReportSchema(Schema):
    generated_at = fields.AwareDateTime()
    since = fields.AwareDateTime()
    parameters = fields.Dict()
    tested = fields.Dict()
    signals = fields.List(fields.Nested(SignalSchema))


@blp.route("/fraud", methods=["GET"])
@require_roles(Role.OPERATOR, Role.ADMIN)
@blp.arguments(FraudQuerySchema, location="query")
@blp.response(200, FraudReportSchema)
@blp.doc(security=SECURITY)
def fraud(query):
    """Duplicate identities (ID, phone, photo), similar answers of neighbouring seats and
    anomalous pass rates, for the centres the requester works for."""
    report = fraud_report(db.session, requester(), now(), current_app.config, query["days"])
    return report.as_dict()
