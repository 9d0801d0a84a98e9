"""The proctors' pages: their sessions, check-in, and the console of a sitting.

A proctor sees only the sessions they are assigned to (others answer 404, as in the
API); operators and admins may act as proctors at their centres. The console's roster
refreshes itself from ``GET /api/v1/sessions/{id}/roster`` (``static/js/console.js``);
every action is a form posted here that calls the proctoring service with a reason,
which writes the audit entry.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from testing_center.access import require_roles
from testing_center.accounts.models import Role
from testing_center.attempts.models import Attempt
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.operations import proctoring, reports
from testing_center.operations import services as ops
from testing_center.operations.forms import (
    INCIDENT_LABELS,
    CheckInForm,
    ExtendForm,
    IncidentForm,
    ReasonForm,
    VoidForm,
)
from testing_center.operations.models import BookingStatus, ExamSession
from testing_center.web import formatting
from testing_center.web.formatting import centre_time, status_labels
from testing_center.web.operations import act, flash_form_errors

bp = Blueprint("proctor", __name__, url_prefix="/staff/proctor")
formatting.register(bp)
SUPERVISORS = (Role.PROCTOR, Role.OPERATOR, Role.ADMIN)


def session_or_404(session_id: int) -> ExamSession:
    return ops.session_for_staff(db.session, current_user, session_id)


def console(session_id: int):
    return redirect(url_for("proctor.console_page", session_id=session_id))


@bp.route("/")
@require_roles(*SUPERVISORS)
def sessions():
    return render_template(
        "proctor/sessions.html",
        sessions=reports.proctor_sessions(db.session, current_user, now()),
        locale=str(get_locale()),
    )


# ---- check-in ---------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>/check-in", methods=["GET", "POST"])
@require_roles(*SUPERVISORS)
def check_in(session_id: int):
    exam_session = session_or_404(session_id)
    form = CheckInForm()
    admitted = None
    if form.validate_on_submit():
        admitted = admit(exam_session, form)
        if admitted is not None:
            form = CheckInForm(formdata=None)  # ready for the next candidate
    elif form.is_submitted():
        flash_form_errors(form)
    return render_template(
        "proctor/check_in.html",
        exam_session=exam_session,
        form=form,
        admitted=admitted,
        roster=reports.roster_view(db.session, exam_session),
        title=reports.exam_title(exam_session, str(get_locale())),
    )


def admit(exam_session: ExamSession, form: CheckInForm):
    """Check one candidate in; flash the refusal (ID mismatch, late, too early) if any."""
    ok, booking = act(lambda: ops.booking_by_admission(db.session, form.admission_number.data))
    if not ok:
        return None
    if booking.session_id != exam_session.id:
        other = booking.session
        flash(
            _(
                "This admission number is for another session: %(start)s at %(centre)s.",
                start=centre_time(other.starts_at, other.centre.timezone),
                centre=other.centre.name,
            ),
            "error",
        )
        return None
    photo = form.photo.data.read() if form.photo.data else None
    ok, booking = act(
        lambda: ops.check_in(
            db.session,
            actor=current_user,
            booking=booking,
            id_document_number=form.id_document_number.data,
            photo=photo or None,
            seat=(form.seat.data or "").strip() or None,
            now=now(),
            opens_before=dt.timedelta(minutes=current_app.config["CHECK_IN_OPENS_MINUTES"]),
        )
    )
    if not ok:
        return None
    if booking.status == BookingStatus.REFUSED:  # recorded (committed) as refused
        flash(_("Check-in has closed: late arrivals are refused."), "error")
        return None
    flash(
        _(
            "Checked in: %(name)s, admission number %(number)s.",
            name=booking.user.display_name,
            number=booking.admission_number,
        ),
        "info",
    )
    if booking.arrived_late:
        flash(_("Arrived less than 15 minutes before the start: recorded as late."), "info")
    return booking


# ---- the console ------------------------------------------------------------------------


@bp.route("/sessions/<int:session_id>")
@require_roles(*SUPERVISORS)
def console_page(session_id: int):
    exam_session = session_or_404(session_id)
    config = {
        "rosterUrl": url_for("operations.roster", session_id=session_id),
        "attemptUrl": url_for("proctor.attempt_page", session_id=session_id, attempt_id="__ID__"),
        "timezone": exam_session.centre.timezone,
        "strings": {
            "statuses": status_labels(),
            "actions": _("Actions"),
            "pending": _("extra time waiting for approval"),
            "updated": _("Updated at %(time)s", time="%(time)s"),
            "failed": _("The roster could not be refreshed; retrying."),
            "empty": _("No candidates are booked yet."),
            "retries": _("%(count)s, last at %(time)s", count="%(count)s", time="%(time)s"),
        },
    }
    return render_template(
        "proctor/console.html",
        exam_session=exam_session,
        roster=reports.roster_view(db.session, exam_session),
        room_pause_form=ReasonForm(prefix="room-pause"),
        room_resume_form=ReasonForm(prefix="room-resume"),
        incident_form=IncidentForm(),
        incidents=reports.session_incidents(db.session, exam_session),
        incident_labels=INCIDENT_LABELS,
        config=config,
        moment=now(),
        title=reports.exam_title(exam_session, str(get_locale())),
    )


@bp.route("/sessions/<int:session_id>/open", methods=["POST"])
@require_roles(*SUPERVISORS)
def open_session(session_id: int):
    exam_session = session_or_404(session_id)
    ok, _result = act(lambda: ops.open_session(db.session, exam_session, current_user, now()))
    if ok:
        flash(_("The session is open: checked-in candidates can start."), "info")
    return console(session_id)


@bp.route("/sessions/<int:session_id>/close", methods=["POST"])
@require_roles(*SUPERVISORS)
def close_session(session_id: int):
    exam_session = session_or_404(session_id)
    ok, _result = act(lambda: ops.close_session(db.session, exam_session, current_user, now()))
    if ok:
        flash(_("The session is closed: no new starts. Exams under way run to their end."))
    return console(session_id)


@bp.route("/sessions/<int:session_id>/<any(pause,resume):step>", methods=["POST"])
@require_roles(*SUPERVISORS)
def room_step(session_id: int, step: str):
    """Pause or resume every running attempt of the room, with one reason."""
    exam_session = session_or_404(session_id)
    form = ReasonForm(prefix=f"room-{step}")
    if not form.validate_on_submit():
        flash_form_errors(form)
        return console(session_id)
    service = proctoring.pause_room if step == "pause" else proctoring.resume_room
    ok, count = act(
        lambda: service(db.session, current_user, exam_session, form.reason.data, now())
    )
    if ok:
        message = (
            _("%(count)d candidates paused.", count=count)
            if step == "pause"
            else _("%(count)d candidates resumed.", count=count)
        )
        flash(message, "info")
    return console(session_id)


@bp.route("/sessions/<int:session_id>/incidents", methods=["POST"])
@require_roles(*SUPERVISORS)
def record_incident(session_id: int):
    exam_session = session_or_404(session_id)
    form = IncidentForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return console(session_id)

    def record():
        booking = None
        if form.admission_number.data:
            booking = ops.booking_by_admission(db.session, form.admission_number.data)
        return proctoring.record_incident(
            db.session,
            current_user,
            exam_session,
            category=form.category.data,
            text=form.text.data,
            now=now(),
            booking=booking,
        )

    ok, _result = act(record)
    if ok:
        flash(_("Incident recorded."), "info")
    return console(session_id)


# ---- one candidate ----------------------------------------------------------------------


def attempt_or_404(session_id: int, attempt_id: str) -> Attempt:
    """A proctored attempt of this session (locked for the action that follows)."""
    session_or_404(session_id)
    attempt = proctoring.attempt_for_staff(db.session, current_user, attempt_id)
    if reports.attempt_booking(db.session, attempt).session_id != session_id:
        abort(404)
    return attempt


@bp.route("/sessions/<int:session_id>/attempts/<attempt_id>")
@require_roles(*SUPERVISORS)
def attempt_page(session_id: int, attempt_id: str):
    attempt = attempt_or_404(session_id, attempt_id)
    exam_session = session_or_404(session_id)
    view = reports.roster_view(db.session, exam_session)
    row = next(r for r in view.rows if r.attempt is not None and r.attempt.id == attempt.id)
    return render_template(
        "proctor/attempt.html",
        exam_session=exam_session,
        view=view,
        row=row,
        moment=now(),
        pause_form=ReasonForm(prefix="pause"),
        resume_form=ReasonForm(prefix="resume"),
        extend_form=ExtendForm(prefix="extend"),
        void_form=VoidForm(prefix="void"),
    )


def attempt_action(session_id: int, attempt_id: str, prefix: str, form_class, service, done):
    attempt = attempt_or_404(session_id, attempt_id)
    form = form_class(prefix=prefix)
    if not form.validate_on_submit():
        flash_form_errors(form)
        db.session.rollback()
        return redirect(
            url_for("proctor.attempt_page", session_id=session_id, attempt_id=attempt_id)
        )
    ok, _result = act(lambda: service(attempt, form))
    if ok:
        flash(done, "info")
    return console(session_id)


@bp.route("/sessions/<int:session_id>/attempts/<attempt_id>/pause", methods=["POST"])
@require_roles(*SUPERVISORS)
def pause(session_id: int, attempt_id: str):
    return attempt_action(
        session_id,
        attempt_id,
        "pause",
        ReasonForm,
        lambda attempt, form: proctoring.pause(
            db.session, current_user, attempt, form.reason.data, now()
        ),
        _("Paused: the candidate's clock is stopped."),
    )


@bp.route("/sessions/<int:session_id>/attempts/<attempt_id>/resume", methods=["POST"])
@require_roles(*SUPERVISORS)
def resume(session_id: int, attempt_id: str):
    return attempt_action(
        session_id,
        attempt_id,
        "resume",
        ReasonForm,
        lambda attempt, form: proctoring.resume(
            db.session, current_user, attempt, form.reason.data, now()
        ),
        _("Resumed with the time the candidate had left."),
    )


@bp.route("/sessions/<int:session_id>/attempts/<attempt_id>/extend", methods=["POST"])
@require_roles(*SUPERVISORS)
def extend(session_id: int, attempt_id: str):
    operator = current_user.role in (Role.OPERATOR, Role.ADMIN)
    return attempt_action(
        session_id,
        attempt_id,
        "extend",
        ExtendForm,
        lambda attempt, form: proctoring.request_extension(
            db.session, current_user, attempt, form.minutes.data * 60, form.reason.data, now()
        ),
        _("Extra time given.")
        if operator
        else _("Extra time requested: another proctor or an operator must approve it."),
    )


@bp.route(
    "/sessions/<int:session_id>/attempts/<attempt_id>/extensions/<int:extension_id>/approve",
    methods=["POST"],
)
@require_roles(*SUPERVISORS)
def approve(session_id: int, attempt_id: str, extension_id: int):
    attempt = attempt_or_404(session_id, attempt_id)
    ok, _result = act(
        lambda: proctoring.approve_extension(db.session, current_user, attempt, extension_id, now())
    )
    if ok:
        flash(_("Extra time approved and given."), "info")
    return console(session_id)


@bp.route("/sessions/<int:session_id>/attempts/<attempt_id>/void", methods=["POST"])
@require_roles(*SUPERVISORS)
def void(session_id: int, attempt_id: str):
    return attempt_action(
        session_id,
        attempt_id,
        "void",
        VoidForm,
        lambda attempt, form: proctoring.void(
            db.session, current_user, attempt, form.reason.data, now()
        ),
        _("The attempt is void: it gets no result and no certificate."),
    )
