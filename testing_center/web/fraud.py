"""The operators' fraud signals page (``testing_center.operations.fraud``): duplicate
identities, similar answers of neighbouring seats, anomalous pass rates; the same report
as ``GET /api/v1/reports/fraud``, for the centres the operator works for."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from testing_center.access import requester, require_roles
from testing_center.accounts.models import Role
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.operations.fraud import DEFAULT_WINDOW_DAYS, KINDS, fraud_report

bp = Blueprint("fraud", __name__, url_prefix="/staff/operations/fraud")
WINDOWS = (30, 90, 365, 1825)


@bp.route("")
@require_roles(Role.OPERATOR, Role.ADMIN)
def report():
    days = request.args.get("days", DEFAULT_WINDOW_DAYS, type=int)
    if days not in WINDOWS:
        days = DEFAULT_WINDOW_DAYS
    found = fraud_report(db.session, requester(), now(), current_app.config, days)
    return render_template(
        "operations/fraud.html",
        report=found,
        groups={kind: found.of_kind(kind) for kind in KINDS},
        days=days,
        windows=WINDOWS,
    )
