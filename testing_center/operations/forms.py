"""Forms of the operations pages (operators, proctors, candidates); CSRF through Flask-WTF.

The forms check the shape of the input; the rules (capacity against the room, booking
windows, ID match...) are the services', so a page and the JSON API refuse alike.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

from testing_center.operations.proctoring import MAX_EXTENSION_SECONDS

INCIDENT_LABELS = {  # one per proctoring.INCIDENT_CATEGORIES, in its order
    "identity": _l("Identity: the person does not match the ID"),
    "cheating": _l("Cheating: notes, phone, talking, copying"),
    "disruption": _l("Disruption in the room"),
    "technical": _l("Technical: computer, network, power"),
    "health": _l("Health"),
    "other": _l("Other"),
}


def incident_choices() -> list[tuple[str, str]]:
    return [(code, str(label)) for code, label in INCIDENT_LABELS.items()]


REASON_VALIDATORS = [DataRequired(), Length(max=500)]


class CentreForm(FlaskForm):
    code = StringField(
        _l("Code (2-16 letters or digits, e.g. TAS)"),
        validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_-]{2,16}$")],
    )
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    city = StringField(_l("City"), validators=[DataRequired(), Length(max=100)])
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=500)])
    timezone = StringField(
        _l("Time zone (IANA name)"),
        default="Asia/Tashkent",
        validators=[DataRequired(), Length(max=64)],
    )


class RoomForm(FlaskForm):
    name = StringField(_l("Room"), validators=[DataRequired(), Length(max=100)])
    seats = IntegerField(_l("Seats"), validators=[DataRequired(), NumberRange(1, 10_000)])


class SessionForm(FlaskForm):
    exam = SelectField(_l("Exam"), validators=[DataRequired()])
    centre = SelectField(_l("Centre"), validators=[DataRequired()])
    room = SelectField(_l("Room"), validators=[Optional()])
    day = DateField(_l("Date (at the centre)"), validators=[DataRequired()])
    time = TimeField(_l("Start time (at the centre)"), validators=[DataRequired()])
    capacity = IntegerField(
        _l("Seats offered"), validators=[DataRequired(), NumberRange(1, 10_000)]
    )
    late_minutes = IntegerField(
        _l("Late arrivals admitted up to (minutes after the start)"),
        default=0,
        validators=[Optional(), NumberRange(0, 120)],
    )
    release_day = DateField(_l("Results released on (date, optional)"), validators=[Optional()])
    release_time = TimeField(_l("Results released at (time)"), validators=[Optional()])
    publish = BooleanField(_l("Publish now (candidates can book)"), default=True)


class MoveForm(FlaskForm):
    day = DateField(_l("New date (at the centre)"), validators=[DataRequired()])
    time = TimeField(_l("New start time (at the centre)"), validators=[DataRequired()])
    reason = StringField(_l("Reason"), validators=REASON_VALIDATORS)


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=REASON_VALIDATORS)


class EmailForm(FlaskForm):
    # no address syntax check: the account is looked up by it, and found or not
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])


class HoldForm(EmailForm):
    minutes = IntegerField(
        _l("Hold for (minutes)"),
        default=2 * 24 * 60,
        validators=[DataRequired(), NumberRange(1, 14 * 24 * 60)],
    )


class CheckInForm(FlaskForm):
    admission_number = StringField(
        _l("Admission number (type it or scan the ticket's code)"),
        validators=[DataRequired(), Length(max=40)],
    )
    id_document_number = StringField(
        _l("ID document number, as on the document shown"),
        validators=[DataRequired(), Length(max=40)],
    )
    photo = FileField(
        _l("Photo (optional, JPEG or PNG)"),
        validators=[FileAllowed(["jpg", "jpeg", "png"])],
    )
    seat = StringField(_l("Seat"), validators=[Optional(), Length(max=16)])


class ExtendForm(FlaskForm):
    minutes = IntegerField(
        _l("Extra minutes"),
        validators=[DataRequired(), NumberRange(1, MAX_EXTENSION_SECONDS // 60)],
    )
    reason = StringField(_l("Reason (the accommodation)"), validators=REASON_VALIDATORS)


class VoidForm(FlaskForm):
    reason = StringField(_l("Reason (what happened)"), validators=REASON_VALIDATORS)
    confirm = BooleanField(
        _l("I confirm: this attempt ends now and gets no result."), validators=[DataRequired()]
    )


class IncidentForm(FlaskForm):
    category = SelectField(_l("Category"), choices=incident_choices, validators=[DataRequired()])
    text = TextAreaField(_l("What happened"), validators=[DataRequired(), Length(max=5000)])
    admission_number = StringField(
        _l("Admission number of the candidate (optional)"),
        validators=[Optional(), Length(max=40)],
    )


class RescheduleForm(FlaskForm):
    session_id = SelectField(_l("Move to"), coerce=int, validators=[DataRequired()])
