"""The operators' pages: dashboard, centres and rooms, sessions, the day's roster, the
audit log.

Each action calls the same service function as the JSON API, so the audit log records
it alike; a refused action is rolled back and its reason shown on the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from testing_center.access import require_recent_sign_in, require_roles
from testing_center.accounts.models import Role, User
from testing_center.clock import now
from testing_center.errors import AppError, InvalidInput
from testing_center.extensions import db
from testing_center.i18n import N_
from testing_center.operations import notify, reports
from testing_center.operations import services as ops
from testing_center.operations.forms import (
    CentreForm,
    EmailForm,
    HoldForm,
    MoveForm,
    ReasonForm,
    RoomForm,
    SessionForm,
)
from testing_center.operations.models import Booking, ExamSession, Room, SessionStatus
from testing_center.web import formatting
from testing_center.web.formatting import from_centre_time

bp = Blueprint("operator", __name__, url_prefix="/staff/operations")
formatting.register(bp)
OPERATORS = (Role.OPERATOR, Role.ADMIN)
T = TypeVar("T")


# ---- helpers shared with the proctor and candidate pages ------------------------------


def act(action: Callable[[], T]) -> tuple[bool, T | None]:
    """Run one service call: commit it, or roll back and show why it was refused."""
    try:
        result = action()
    except AppError as error:
        db.session.rollback()
        flash(error.translated(), "error")
        return False, None
    db.session.commit()
    return True, result


def flash_form_errors(form: FlaskForm) -> None:
    for field in form:
        for error in field.errors:
            flash(f"{field.label.text}: {error}", "error")


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def scheduler_heartbeat(moment: dt.datetime) -> dict[str, Any] | None:
    """The scheduler's last heartbeat (``beat_at``, ``host``, ``pid``, ``stale``), ``{}``
    when it never beat, or None when the scheduler module is not installed (the
    dashboard then says "unknown")."""
    try:
        from testing_center.operations.scheduler import heartbeat_status
    except ImportError:
        return None
    status = heartbeat_status(db.session, moment)
    beat = getattr(status, "heartbeat", None)
    if beat is None:
        return {}
    return {
        "beat_at": beat.beat_at,
        "host": beat.host,
        "pid": beat.pid,
        "stale": bool(getattr(status, "is_stale", False)),
    }


# ---- dashboard --------------------------------------------------------------------------


@bp.route("/")
@require_roles(*OPERATORS)
def dashboard():
    moment = now()
    groups: dict[str, list[reports.SessionSummary]] = {"today": [], "upcoming": [], "recent": []}
    for summary in reports.dashboard(db.session, current_user, moment):
        groups[summary.day(moment)].append(summary)
    groups["recent"].reverse()
    return render_template(
        "operations/dashboard.html",
        groups=groups,
        heartbeat=scheduler_heartbeat(moment),
        outbox=notify.outbox_status(db.session),
        outbox_max_tries=notify.MAX_TRIES,
        moment=moment,
    )


# ---- centres ----------------------------------------------------------------------------


@bp.route("/centres")
@require_roles(*OPERATORS)
def centres():
    return render_template(
        "operations/centres.html",
        centres=reports.visible_centres(db.session, current_user),
        form=CentreForm(),
    )


@bp.route("/centres", methods=["POST"])
@require_roles(*OPERATORS)
def create_centre():
    form = CentreForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("operator.centres"))
    ok, centre = act(
        lambda: ops.create_centre(
            db.session,
            actor=current_user,
            code=form.code.data.strip().upper(),
            name=form.name.data.strip(),
            city=form.city.data.strip(),
            address=form.address.data.strip(),
            timezone=form.timezone.data.strip(),
            now=now(),
        )
    )
    if ok:
        flash(_("Centre %(code)s added. Add its rooms next.", code=centre.code), "info")
    return redirect(url_for("operator.centres"))


@bp.route("/centres/<code>/rooms", methods=["POST"])
@require_roles(*OPERATORS)
def add_room(code: str):
    form = RoomForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("operator.centres"))
    centre = ops.centre_by_code(db.session, code)
    ok, room = act(
        lambda: ops.add_room(
            db.session,
            actor=current_user,
            centre=centre,
            name=form.name.data.strip(),
            seats=form.seats.data,
            now=now(),
        )
    )
    if ok:
        flash(_("Room %(name)s added with %(seats)d seats.", name=room.name, seats=room.seats))
    return redirect(url_for("operator.centres"))


# ---- sessions ---------------------------------------------------------------------------


def session_or_404(session_id: int) -> ExamSession:
    return ops.session_for_staff(db.session, current_user, session_id)


def session_form() -> SessionForm:
    """The scheduling form with the exams, centres and rooms this operator may use."""
    form = SessionForm()
    locale = str(get_locale())
    form.exam.choices = [
        (code, f"{title} ({code})") for code, title in reports.proctored_exams(db.session, locale)
    ]
    centres = reports.visible_centres(db.session, current_user)
    form.centre.choices = [(c.code, f"{c.name} ({c.city})") for c in centres]
    form.room.choices = [("", _("No particular room"))] + [
        (str(room.id), f"{c.code} · {room.name} ({room.seats})")
        for c in centres
        for room in c.rooms
    ]
    return form


@bp.route("/sessions")
@require_roles(*OPERATORS)
def sessions():
    status = request.args.get("status", "")
    return render_template(
        "operations/sessions.html",
        sessions=reports.all_sessions(db.session, current_user, status or None),
        status=status,
        statuses=[s.value for s in SessionStatus],
    )


@bp.route("/sessions/new", methods=["GET", "POST"])
@require_roles(*OPERATORS)
def new_session():
    form = session_form()
    if request.method == "GET":
        return render_template("operations/new_session.html", form=form)
    if not form.validate_on_submit():
        return render_template("operations/new_session.html", form=form), 422
    ok, exam_session = act(lambda: schedule_from_form(form))
    if not ok:
        return render_template("operations/new_session.html", form=form), 422
    flash(_("Session scheduled."), "info")
    return redirect(url_for("operator.session_page", session_id=exam_session.id))


def schedule_from_form(form: SessionForm) -> ExamSession:
    """Read the local date and time at the chosen centre and schedule the session."""
    centre = ops.centre_by_code(db.session, form.centre.data)
    room_name = None
    if form.room.data:
        room = db.session.get(Room, int(form.room.data))
        if room is None or room.centre_id != centre.id:
            raise InvalidInput(N_("The room is not in the chosen centre."), code="room_not_found")
        room_name = room.name
    if (form.release_day.data is None) != (form.release_time.data is None):
        raise InvalidInput(
            N_("Give both the date and the time of the results release, or neither."),
            code="invalid_release",
        )
    release = None
    if form.release_day.data is not None:
        release = from_centre_time(form.release_day.data, form.release_time.data, centre.timezone)
    return ops.schedule_session(
        db.session,
        actor=current_user,
        exam_code=form.exam.data,
        centre_code=centre.code,
        starts_at=from_centre_time(form.day.data, form.time.data, centre.timezone),
        capacity=form.capacity.data,
        room_name=room_name,
        late_minutes=form.late_minutes.data or 0,
        results_release_at=release,
        publish=form.publish.data,
        now=now(),
    )


@bp.route("/sessions/<int:session_id>")
@require_roles(*OPERATORS)
def session_page(session_id: int):
    exam_session = session_or_404(session_id)
    return render_template(
        "operations/session.html",
        exam_session=exam_session,
        roster=reports.roster_view(db.session, exam_session),
        cancel_form=ReasonForm(prefix="cancel"),
        move_form=MoveForm(prefix="move"),
        proctor_form=EmailForm(prefix="proctor"),
        hold_form=HoldForm(prefix="hold"),
        title=reports.exam_title(exam_session, str(get_locale())),
    )


def back_to(session_id: int):
    return redirect(url_for("operator.session_page", session_id=session_id))


@bp.route("/sessions/<int:session_id>/publish", methods=["POST"])
@require_roles(*OPERATORS)
def publish(session_id: int):
    exam_session = session_or_404(session_id)
    ok, _result = act(lambda: ops.publish_session(db.session, exam_session, current_user, now()))
    if ok:
        flash(_("Session published: candidates can book now."), "info")
    return back_to(session_id)


@bp.route("/sessions/<int:session_id>/cancel", methods=["POST"])
@require_roles(*OPERATORS)
@require_recent_sign_in
def cancel(session_id: int):
    exam_session = session_or_404(session_id)
    form = ReasonForm(prefix="cancel")
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back_to(session_id)
    ok, count = act(
        lambda: ops.cancel_session(db.session, exam_session, current_user, form.reason.data, now())
    )
    if ok:
        flash(
            _("Session cancelled; %(count)d candidates will be told by e-mail.", count=count),
            "info",
        )
    return back_to(session_id)


@bp.route("/sessions/<int:session_id>/move", methods=["POST"])
@require_roles(*OPERATORS)
def move(session_id: int):
    exam_session = session_or_404(session_id)
    form = MoveForm(prefix="move")
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back_to(session_id)
    ok, _result = act(
        lambda: ops.move_session(
            db.session,
            exam_session,
            current_user,
            starts_at=from_centre_time(form.day.data, form.time.data, exam_session.centre.timezone),
            reason=form.reason.data,
            now=now(),
        )
    )
    if ok:
        flash(_("Session moved; booked candidates will be told by e-mail."), "info")
    return back_to(session_id)


@bp.route("/sessions/<int:session_id>/proctors", methods=["POST"])
@require_roles(*OPERATORS)
def assign_proctor(session_id: int):
    exam_session = session_or_404(session_id)
    form = EmailForm(prefix="proctor")
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back_to(session_id)
    proctor = user_by_email(form.email.data)
    if proctor is None:
        flash(_("There is no account with this e-mail."), "error")
        return back_to(session_id)
    ok, _result = act(
        lambda: ops.assign_proctor(db.session, exam_session, current_user, proctor, now())
    )
    if ok:
        flash(_("%(email)s proctors this session.", email=proctor.email), "info")
    return back_to(session_id)


@bp.route("/sessions/<int:session_id>/holds", methods=["POST"])
@require_roles(*OPERATORS)
def hold(session_id: int):
    exam_session = session_or_404(session_id)
    form = HoldForm(prefix="hold")
    if not form.validate_on_submit():
        flash_form_errors(form)
        return back_to(session_id)
    candidate = user_by_email(form.email.data)
    if candidate is None:
        flash(_("There is no account with this e-mail."), "error")
        return back_to(session_id)
    ok, booking = act(
        lambda: ops.hold_seat(
            db.session,
            actor=current_user,
            exam_session=exam_session,
            candidate=candidate,
            minutes=form.minutes.data,
            now=now(),
        )
    )
    if ok:
        flash(
            _(
                "Seat held for %(email)s: admission number %(number)s.",
                email=candidate.email,
                number=booking.admission_number,
            ),
            "info",
        )
    return back_to(session_id)


@bp.route("/bookings/<int:booking_id>/confirm", methods=["POST"])
@require_roles(*OPERATORS)
def confirm_hold(booking_id: int):
    booking = db.session.get(Booking, booking_id)
    if booking is None:
        abort(404)
    session_or_404(booking.session_id)
    ok, _result = act(lambda: ops.confirm_hold(db.session, booking, current_user, now()))
    if ok:
        flash(_("Hold confirmed: the seat is booked."), "info")
    return back_to(booking.session_id)


@bp.route("/sessions/<int:session_id>/roster")
@require_roles(*OPERATORS)
def roster(session_id: int):
    """The day's roster: who is booked, checked in, where they sit (printable)."""
    exam_session = session_or_404(session_id)
    return render_template(
        "operations/roster.html",
        exam_session=exam_session,
        roster=reports.roster_view(db.session, exam_session),
        title=reports.exam_title(exam_session, str(get_locale())),
    )


# ---- the audit log ----------------------------------------------------------------------


@bp.route("/audit")
@require_roles(*OPERATORS)
def audit_log():
    entity = request.args.get("entity", "").strip()
    entity_id = request.args.get("entity_id", "").strip()
    page = request.args.get("page", 1, type=int) or 1
    entries, has_more = reports.audit_entries(
        db.session, current_user, entity=entity or None, entity_id=entity_id or None, page=page
    )
    return render_template(
        "operations/audit.html",
        entries=entries,
        has_more=has_more,
        page=page,
        entity=entity,
        entity_id=entity_id,
        entities=reports.audit_entities(db.session),
    )
