"""The candidate's "My data" pages: what is held, a download of all of it, and erasure
with the password and a confirmation.

They call the same services as ``/api/v1/me/data`` and ``/api/v1/me/deletion``.
"""

from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import logout_user

from testing_center.access import requester, require_roles
from testing_center.accounts.consent import CONSENT_VERSION, consent_sections
from testing_center.accounts.models import Role
from testing_center.clock import now
from testing_center.errors import AppError
from testing_center.extensions import db
from testing_center.privacy import services as privacy
from testing_center.privacy.forms import ErasureForm

bp = Blueprint("my_data", __name__, url_prefix="/my-data")


@bp.route("")
@require_roles(Role.CANDIDATE)
def overview():
    return render_template(
        "privacy/my_data.html",
        summary=privacy.data_summary(db.session, requester()),
        consent=consent_sections(current_app.config),
        consent_version=CONSENT_VERSION,
    )


@bp.route("/export.json")
@require_roles(Role.CANDIDATE)
def export():
    """Everything held about the candidate, as a JSON file to keep."""
    data = privacy.export_data(db.session, requester(), now())
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers={
            "Content-Disposition": "attachment; filename=my-data.json",
            "Cache-Control": "private, no-store",
        },
    )


@bp.route("/delete", methods=["GET", "POST"])
@require_roles(Role.CANDIDATE)
def delete():
    """Explain what erasure removes and keeps; erase after the password and a tick."""
    user = requester()
    form = ErasureForm()
    status = 200
    if form.validate_on_submit():
        try:
            privacy.erase_personal_data(db.session, user, form.password.data, now())
        except AppError as error:
            db.session.rollback()
            flash(error.translated(), "error")
            status = error.status
        else:
            db.session.commit()
            locale = session.get("locale")
            logout_user()
            session.clear()
            if locale:
                session["locale"] = locale
            flash(
                _(
                    "Your data was erased and your account is closed. Your results and "
                    "certificates stay verifiable."
                ),
                "info",
            )
            return redirect(url_for("account.login"))
    elif form.errors:
        status = 422
    return render_template(
        "privacy/delete.html",
        form=form,
        blocker=privacy.erasure_blocker(db.session, user),
    ), status
