"""The erasure form: the password again, and a plain confirmation."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField
from wtforms.validators import DataRequired, Length

from testing_center.accounts.services import MAX_PASSWORD_LENGTH


class ErasureForm(FlaskForm):
    password = PasswordField(
        _l("Your password"), validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    confirm = BooleanField(
        _l("I understand: my account is closed for good and this cannot be undone."),
        validators=[DataRequired()],
    )
