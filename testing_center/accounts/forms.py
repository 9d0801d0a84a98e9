"""Sign-in and registration forms (CSRF-protected through Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TelField,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, Optional

from testing_center.accounts.services import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    country_codes,
)

FIRST_COUNTRIES = ("UZ", "KZ", "KG", "TJ", "TM", "RU", "JP")


def country_choices() -> list[tuple[str, str]]:
    """Countries of most candidates first, then the rest by code."""
    rest = sorted(country_codes() - set(FIRST_COUNTRIES))
    return [(code, code) for code in (*FIRST_COUNTRIES, *rest)]


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )


class RegisterForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(), Email(), Length(max=254)])
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
    )
    confirm = PasswordField(
        _l("Repeat the password"), validators=[DataRequired(), EqualTo("password")]
    )
    full_name = StringField(
        _l("Full name exactly as on your ID document"),
        validators=[DataRequired(), Length(min=2, max=200)],
    )
    date_of_birth = DateField(_l("Date of birth"), validators=[DataRequired()])
    nationality = SelectField(
        _l("Nationality"), choices=country_choices, validators=[DataRequired()]
    )
    id_document_number = StringField(
        _l("ID document (passport) number"), validators=[DataRequired(), Length(min=5, max=40)]
    )
    phone_number = TelField(
        _l("Phone number with country code (optional)"),
        validators=[Optional(), Length(max=32)],
    )
    consent = BooleanField(
        _l("I have read how my personal data is used and I agree."),
        validators=[DataRequired(_l("You can register only if you agree."))],
    )
