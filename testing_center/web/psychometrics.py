"""The operators' psychometrics pages: item analysis, calibration, corrections, re-scoring.

The same computations as the ``scoring`` CLI, run on an exam's finished attempts.
Plots are served as PNG from the data of the moment (nothing is cached: a page always
shows what a re-run of the CLI on the same attempts would print).
"""

from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from exam_templates.models import ExamTemplate
from scoring.analysis import prorated_totals
from scoring.irt import MODELS, parameters_from_document
from scoring.plots import item_characteristic_curves, score_distribution, test_information_curve
from testing_center.access import check_recent_sign_in, require_recent_sign_in, require_roles
from testing_center.accounts.models import Role
from testing_center.attempts.models import Attempt, AttemptStatus
from testing_center.attempts.services import rescore_attempts
from testing_center.clock import now
from testing_center.errors import AppError
from testing_center.extensions import db
from testing_center.psychometrics.models import CorrectionAction, ParameterSet, ScoringCorrection
from testing_center.psychometrics.services import (
    analyze_exam,
    calibrate_exam,
    correct_item,
    store_parameters,
    template_or_404,
)

bp = Blueprint("psychometrics", __name__, url_prefix="/staff/psychometrics")
PSYCHOMETRICIANS = (Role.OPERATOR, Role.ADMIN)


def png(data: bytes) -> Response:
    return Response(data, mimetype="image/png", headers={"Cache-Control": "no-store"})


def exam_or_404(code: str) -> ExamTemplate:
    try:
        return template_or_404(db.session, code)
    except AppError:
        abort(404)


def parameter_set_or_404(set_id: int) -> ParameterSet:
    parameter_set = db.session.get(ParameterSet, set_id)
    if parameter_set is None:
        abort(404)
    return parameter_set


@bp.route("/")
@require_roles(*PSYCHOMETRICIANS)
def exams():
    counts = dict(
        db.session.execute(
            select(ExamTemplate.code, func.count(Attempt.id))
            .join(Attempt, Attempt.template_id == ExamTemplate.id)
            .where(Attempt.status == AttemptStatus.FINISHED)
            .group_by(ExamTemplate.code)
        ).all()
    )
    codes = db.session.scalars(select(ExamTemplate.code).distinct().order_by(ExamTemplate.code))
    return render_template(
        "psychometrics/exams.html", rows=[(code, counts.get(code, 0)) for code in codes]
    )


@bp.route("/<code>")
@require_roles(*PSYCHOMETRICIANS)
def exam(code: str):
    template = exam_or_404(code)
    analysis = problem = None
    try:
        _data, analysis = analyze_exam(db.session, code)
    except AppError as error:
        problem = error.translated()
    sets = db.session.scalars(
        select(ParameterSet)
        .join(ExamTemplate)
        .where(ExamTemplate.code == code)
        .order_by(ParameterSet.id.desc())
    ).all()
    corrections = db.session.scalars(
        select(ScoringCorrection).order_by(ScoringCorrection.id.desc()).limit(50)
    ).all()
    return render_template(
        "psychometrics/exam.html",
        template=template,
        analysis=analysis,
        problem=problem,
        sets=sets,
        models=MODELS,
        corrections=corrections,
        actions=[action.value for action in CorrectionAction],
    )


@bp.route("/<code>/items.csv")
@require_roles(*PSYCHOMETRICIANS)
def items_csv(code: str):
    exam_or_404(code)
    try:
        _data, analysis = analyze_exam(db.session, code)
    except AppError:
        abort(404)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([*analysis.to_csv_rows(), [], *analysis.option_csv_rows()])
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={code}-items.csv"},
    )


@bp.route("/<code>/scores.png")
@require_roles(*PSYCHOMETRICIANS)
def scores_png(code: str):
    exam_or_404(code)
    try:
        data, _analysis = analyze_exam(db.session, code)
    except AppError:
        abort(404)
    return png(score_distribution(prorated_totals(data.scores)))


@bp.route("/<code>/calibrate", methods=["POST"])
@require_roles(*PSYCHOMETRICIANS)
def calibrate(code: str):
    exam_or_404(code)
    model = request.form.get("model", "")
    if model not in MODELS:
        abort(400)
    try:
        parameter_set = calibrate_exam(db.session, code, model, current_user, now())
    except AppError as error:
        db.session.rollback()
        flash(_("Calibration failed: %(reason)s", reason=error.translated()), "error")
        return redirect(url_for("psychometrics.exam", code=code))
    db.session.commit()
    return redirect(url_for("psychometrics.parameter_set", set_id=parameter_set.id))


@bp.route("/calibrations/<int:set_id>")
@require_roles(*PSYCHOMETRICIANS)
def parameter_set(set_id: int):
    parameter_set = parameter_set_or_404(set_id)
    return render_template(
        "psychometrics/calibration.html",
        parameter_set=parameter_set,
        document=parameter_set.document,
        document_json=json.dumps(parameter_set.document, indent=2),
    )


@bp.route("/calibrations/<int:set_id>/<any(icc,information):kind>.png")
@require_roles(*PSYCHOMETRICIANS)
def parameter_set_plot(set_id: int, kind: str):
    params = parameters_from_document(parameter_set_or_404(set_id).document)
    return png(
        item_characteristic_curves(params) if kind == "icc" else test_information_curve(params)
    )


@bp.route("/calibrations/<int:set_id>/store", methods=["POST"])
@require_roles(*PSYCHOMETRICIANS)
@require_recent_sign_in
def store(set_id: int):
    parameter_set = parameter_set_or_404(set_id)
    try:
        count = store_parameters(db.session, parameter_set, current_user, now())
    except AppError as error:
        db.session.rollback()
        flash(error.translated(), "error")
    else:
        db.session.commit()
        flash(_("Parameters stored on %(count)d item versions.", count=count), "info")
    return redirect(url_for("psychometrics.parameter_set", set_id=set_id))


@bp.route("/<code>/corrections", methods=["POST"])
@require_roles(*PSYCHOMETRICIANS)
@require_recent_sign_in
def correct(code: str):
    exam_or_404(code)
    form = request.form
    try:
        key = json.loads(form["key"]) if form.get("key", "").strip() else None
        version = int(form["version"]) if form.get("version", "").strip() else None
    except ValueError:
        flash(_("The key must be JSON and the version a number."), "error")
        return redirect(url_for("psychometrics.exam", code=code))
    try:
        correct_item(
            db.session,
            ref=form.get("ref", "").strip(),
            version=version,
            action=form.get("action", ""),
            answer_key=key,
            reason=form.get("reason", ""),
            actor=current_user,
            now=now(),
        )
    except AppError as error:
        db.session.rollback()
        flash(error.translated(), "error")
        return redirect(url_for("psychometrics.exam", code=code))
    db.session.commit()
    flash(_("Correction recorded. Check the re-scoring below before applying it."), "info")
    return redirect(url_for("psychometrics.rescore", code=code))


@bp.route("/<code>/rescore", methods=["GET", "POST"])
@require_roles(*PSYCHOMETRICIANS)
def rescore(code: str):
    exam_or_404(code)
    apply = request.method == "POST"
    if apply:
        check_recent_sign_in()
    reason = request.form.get("reason", "").strip()
    if apply and not reason:
        flash(_("Say why the results are re-scored."), "error")
        return redirect(url_for("psychometrics.rescore", code=code))
    checked, changes = rescore_attempts(
        db.session,
        reason=reason,
        now=now(),
        actor=current_user,
        template_code=code,
        apply=apply,
    )
    if not apply:
        db.session.rollback()
        return render_template(
            "psychometrics/rescore.html", code=code, checked=checked, changes=changes
        )
    db.session.commit()
    flash(
        _("%(changed)d of %(checked)d results changed.", changed=len(changes), checked=checked),
        "info",
    )
    return redirect(url_for("psychometrics.exam", code=code))
