"""Forms of the certificate pages (candidates, employers, operators) and the words for
certificate states; CSRF through Flask-WTF.

The forms check the shape of the input; the rules (who may share, which certificate may
be revoked, what a batch line must hold) are the services', so a page and the JSON API
refuse alike.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

REVOCATION_LABELS = {  # one per models.REVOCATION_REASONS, in its order
    "misconduct": _l("Misconduct (cheating or impersonation found after the exam)"),
    "identity": _l("Identity (the holder is not the person the certificate names)"),
    "scoring_error": _l("Scoring error (withdrawn without a replacement)"),
    "administrative": _l("Administrative"),
}

SHARE_DAYS = (7, 30, 90, 365)


def revocation_label(code: str | None) -> str:
    """A revocation category in the reader's language (the code itself when unknown)."""
    label = REVOCATION_LABELS.get(code or "")
    return str(label) if label is not None else str(code or "")


def certificate_status_label(status: str) -> str:
    """A certificate's or a batch line's status, in plain words."""
    labels = {
        "valid": _("Valid"),
        "revoked": _("REVOKED"),
        "superseded": _("Superseded (replaced by a newer certificate)"),
        "not_found": _("Not found: no certificate with this number and date of birth"),
    }
    return labels.get(str(status), str(status))


class ShareForm(FlaskForm):
    days = SelectField(
        _l("The link works for"),
        coerce=int,
        default=30,
        choices=lambda: [(d, _("%(num)d days", num=d)) for d in SHARE_DAYS],
        validators=[DataRequired()],
    )


class WithdrawShareForm(FlaskForm):
    token = HiddenField(validators=[DataRequired(), Length(max=64)])


class BatchForm(FlaskForm):
    document = FileField(_l("CSV file (number,date_of_birth on each line)"))
    text = TextAreaField(
        _l("Or paste the lines here"), validators=[Optional(), Length(max=100_000)]
    )


class CertificateSearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search

    q = StringField(_l("Certificate number (whole or part)"), validators=[Length(max=40)])


class RevokeForm(FlaskForm):
    category = SelectField(
        _l("Category"),
        choices=lambda: [(code, str(label)) for code, label in REVOCATION_LABELS.items()],
        validators=[DataRequired()],
    )
    reason = TextAreaField(
        _l("Reason (what was found; kept in the audit log)"),
        validators=[DataRequired(), Length(max=500)],
    )
    confirm = BooleanField(
        _l(
            "I confirm: verification will show this certificate as REVOKED from now on, "
            "and the holder is told by e-mail."
        ),
        validators=[DataRequired()],
    )
