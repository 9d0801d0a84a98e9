"""The employers' pages: check many certificates at once from a CSV file, see the results
and download them as CSV, and find earlier checks in the history.

A batch calls the same services as ``POST /api/v1/employer/verifications``: every line
is looked up by number AND date of birth and logged under the batch in the employer's
history. A file with a malformed line is refused whole, line by line, and nothing is
looked up or logged.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_babel import gettext as _

from testing_center.access import requester, require_roles
from testing_center.accounts.models import Role
from testing_center.certification import services as certs
from testing_center.certification.forms import BatchForm
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.web.certificates import register_labels

bp = Blueprint("employer", __name__, url_prefix="/employer")
register_labels(bp)
MAX_UPLOAD = 256 * 1024  # 500 lines are about 20 kB


def page(form: BatchForm, status: int = 200, errors: list[str] | None = None):
    return render_template(
        "employer/verifications.html",
        form=form,
        errors=errors or [],
        history=certs.batch_history(db.session, requester()),
        max_lines=certs.MAX_BATCH,
    ), status


@bp.route("/verifications")
@require_roles(Role.EMPLOYER)
def verifications():
    """The upload form and the history of earlier checks, newest first."""
    return page(BatchForm())


@bp.route("/verifications", methods=["POST"])
@require_roles(Role.EMPLOYER)
def check():
    """Check every line of the uploaded file (or the pasted text), then show the results."""
    form = BatchForm()
    if not form.validate_on_submit():
        return page(form, 422, [error for field in form for error in field.errors])
    text = uploaded_text(form)
    if text is None:
        return page(form, 413, [_("The file is too large: at most 500 lines are checked.")])
    try:
        items = certs.parse_batch_csv(text)
    except certs.BatchError as error:
        lines = [
            _("Line %(line)d: %(problem)s", line=line["line"], problem=_(line["message"]))
            for line in error.details or []
        ]
        return page(form, 422, [error.translated(), *lines])
    batch, _results = certs.check_batch(db.session, items, requester(), now())
    db.session.commit()
    return redirect(url_for("employer.batch", batch=batch))


def uploaded_text(form: BatchForm) -> str | None:
    """The uploaded file's text (UTF-8, with or without a byte-order mark), else the
    pasted text; None when the file is too large."""
    upload = form.document.data
    if upload and getattr(upload, "filename", ""):
        data = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            return None
        # numbers and dates are ASCII; a header in another encoding just reads oddly
        return data.decode("utf-8-sig", errors="replace")
    return form.text.data or ""


@bp.route("/verifications/<batch>")
@require_roles(Role.EMPLOYER)
def batch(batch: str):
    """One batch as checked: a line per certificate, with a CSV download."""
    report = certs.batch_report(db.session, requester(), batch)
    return render_template(
        "employer/batch.html", batch=batch, report=report, checked_at=report[0]["checked_at"]
    )
