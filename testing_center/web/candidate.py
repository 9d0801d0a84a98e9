"""The candidate's pages: home, catalogue, the exam player and the result."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_babel import get_locale
from flask_login import current_user

from exam_templates.services import catalogue as exam_catalogue
from testing_center.access import requester, require_roles
from testing_center.accounts.models import Role
from testing_center.api.exams import exam_payload
from testing_center.attempts.models import AttemptStatus
from testing_center.attempts.presenters import attempt_result, attempt_review
from testing_center.attempts.services import (
    blueprint_of,
    current_attempt,
    results_released,
    reviewable_attempt,
    start_practice,
)
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.web.certificates import certificates_of

bp = Blueprint("candidate", __name__)


@bp.route("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("account.login"))
    if current_user.role == Role.CANDIDATE:
        return redirect(url_for("candidate.catalogue"))
    return render_template("home.html")


@bp.route("/exams")
@require_roles(Role.CANDIDATE)
def catalogue():
    locale = str(get_locale())
    exams = [exam_payload(entry, locale) for entry in exam_catalogue(db.session)]
    return render_template("candidate/catalogue.html", exams=exams)


@bp.route("/exams/<code>/start", methods=["POST"])
@require_roles(Role.CANDIDATE)
def start(code: str):
    attempt, _ = start_practice(db.session, requester(), code, now())
    db.session.commit()
    return redirect(url_for("candidate.player", attempt_id=attempt.id))


@bp.route("/attempts/<attempt_id>")
@require_roles(Role.CANDIDATE)
def player(attempt_id: str):
    attempt = current_attempt(db.session, attempt_id, requester(), now())
    db.session.commit()
    if attempt.status != AttemptStatus.IN_PROGRESS:
        return redirect(url_for("candidate.result", attempt_id=attempt.id))
    return render_template(
        "candidate/player.html", attempt=attempt, blueprint=blueprint_of(attempt)
    )


@bp.route("/attempts/<attempt_id>/result")
@require_roles(Role.CANDIDATE)
def result(attempt_id: str):
    attempt = current_attempt(db.session, attempt_id, requester(), now())
    db.session.commit()
    if attempt.status == AttemptStatus.IN_PROGRESS:
        return redirect(url_for("candidate.player", attempt_id=attempt.id))
    blueprint = blueprint_of(attempt)
    summary = attempt_result(
        attempt, blueprint, str(get_locale()), released=results_released(db.session, attempt)
    )
    return render_template(
        "candidate/result.html",
        result=summary,
        has_review=blueprint.review,
        certificates=certificates_of([attempt.id]).get(attempt.id, []),
    )


@bp.route("/attempts/<attempt_id>/review")
@require_roles(Role.CANDIDATE)
def review(attempt_id: str):
    attempt = reviewable_attempt(db.session, attempt_id, requester(), now())
    db.session.commit()
    data = attempt_review(attempt, blueprint_of(attempt), str(get_locale()))
    return render_template("candidate/review.html", review=data)
