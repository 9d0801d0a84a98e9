"""The candidate's test-centre pages: sessions to book, their bookings, their results.

Booking, moving a booking and starting a proctored exam call the same services as the
JSON API. There are no cancellations (FIELD.md): a booking can only be moved to another
session of the same exam while booking is open, and the pages say so plainly.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from testing_center.access import requester, require_roles
from testing_center.accounts.models import Role
from testing_center.attempts.models import AttemptStatus
from testing_center.attempts.presenters import attempt_result
from testing_center.attempts.services import blueprint_of, results_released, start_proctored
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.operations import reports
from testing_center.operations import services as ops
from testing_center.operations.forms import RescheduleForm
from testing_center.operations.models import Centre
from testing_center.web import formatting
from testing_center.web.certificates import certificates_of
from testing_center.web.formatting import centre_time
from testing_center.web.operations import act, flash_form_errors

bp = Blueprint("bookings", __name__)
formatting.register(bp)
FILTERS = ("exam", "city", "date")


def parse_day(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@bp.route("/sessions")
@require_roles(Role.CANDIDATE)
def sessions():
    """Sessions to come by exam, city and date, with seats left and whether booking is open."""
    filters = {name: request.args.get(name, "").strip() for name in FILTERS}
    day = parse_day(filters["date"])
    moment = now()
    listings = ops.list_sessions(
        db.session,
        moment,
        exam_code=filters["exam"] or None,
        city=filters["city"] or None,
        # a day at the centre lies within a day and a half either side of UTC midnight
        starts_from=dt.datetime.combine(day, dt.time(), dt.UTC) - dt.timedelta(hours=14)
        if day
        else None,
        starts_to=dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(hours=38)
        if day
        else None,
    )
    if day:
        listings = [
            item
            for item in listings
            if item.exam_session.starts_at.astimezone(
                zoneinfo.ZoneInfo(item.exam_session.centre.timezone)
            ).date()
            == day
        ]
    exams = reports.proctored_exams(db.session, str(get_locale()))
    return render_template(
        "bookings/sessions.html",
        listings=listings,
        filters=filters,
        exams=exams,
        titles=dict(exams),
        cities=db.session.scalars(select(Centre.city).distinct().order_by(Centre.city)).all(),
    )


@bp.route("/sessions/<int:session_id>/book", methods=["POST"])
@require_roles(Role.CANDIDATE)
def book(session_id: int):
    ok, booking = act(lambda: ops.book_seat(db.session, requester(), session_id, now()))
    if not ok:
        filters = {name: request.form.get(name, "") for name in FILTERS}
        return redirect(url_for("bookings.sessions", **{k: v for k, v in filters.items() if v}))
    flash(
        _(
            "Your seat is booked. Your admission number is %(number)s. "
            "Download the admission ticket below and bring it with your original ID document.",
            number=booking.admission_number,
        ),
        "info",
    )
    return redirect(url_for("bookings.my_bookings"))


@bp.route("/bookings")
@require_roles(Role.CANDIDATE)
def my_bookings():
    entries = reports.candidate_bookings(db.session, requester(), now())
    forms = {}
    for entry in entries:
        if entry.targets:
            form = RescheduleForm(prefix=f"move-{entry.booking.id}")
            form.session_id.choices = [
                (s.id, f"{centre_time(s.starts_at, s.centre.timezone)} · {s.centre.name}")
                for s in entry.targets
            ]
            forms[entry.booking.id] = form
    return render_template(
        "bookings/bookings.html",
        entries=entries,
        forms=forms,
        locale=str(get_locale()),
        exam_title=reports.exam_title,
    )


@bp.route("/bookings/<int:booking_id>/reschedule", methods=["POST"])
@require_roles(Role.CANDIDATE)
def reschedule(booking_id: int):
    user = requester()
    booking = ops.candidate_booking(db.session, user, booking_id)
    form = RescheduleForm(prefix=f"move-{booking.id}")
    form.session_id.choices = [
        (s.id, str(s.id)) for s in reports.reschedule_targets(db.session, booking, now())
    ]
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("bookings.my_bookings"))
    ok, moved = act(
        lambda: ops.reschedule(db.session, user, booking.id, form.session_id.data, now())
    )
    if ok:
        flash(
            _(
                "Your booking was moved. Your new admission number is %(number)s; "
                "download the new admission ticket.",
                number=moved.admission_number,
            ),
            "info",
        )
    return redirect(url_for("bookings.my_bookings"))


@bp.route("/bookings/<int:booking_id>/start", methods=["POST"])
@require_roles(Role.CANDIDATE)
def start(booking_id: int):
    """Start (or go back to) the proctored exam of a checked-in booking."""
    ok, started = act(lambda: start_proctored(db.session, requester(), booking_id, now()))
    if not ok:
        return redirect(url_for("bookings.my_bookings"))
    attempt, _how = started
    return redirect(url_for("candidate.player", attempt_id=attempt.id))


@bp.route("/results")
@require_roles(Role.CANDIDATE)
def results():
    """Every attempt, practice and proctored; scores only once released."""
    locale = str(get_locale())
    rows = []
    attempts = reports.candidate_attempts(db.session, requester())
    certificates = certificates_of([attempt.id for attempt in attempts])
    for attempt in attempts:
        released = attempt.status != AttemptStatus.IN_PROGRESS and results_released(
            db.session, attempt
        )
        rows.append(
            {
                "attempt": attempt,
                "result": attempt_result(attempt, blueprint_of(attempt), locale, released),
                "certificates": certificates.get(attempt.id, []),
            }
        )
    return render_template("bookings/results.html", rows=rows)
