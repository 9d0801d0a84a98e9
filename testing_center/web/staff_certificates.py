"""The operators' certificate pages (under Operations): recent certificates with a search
by number, one certificate with its facts and history, and its revocation.

Revoking calls ``certification.services.revoke`` like the JSON API, so the audit entry
and the holder's e-mail happen there. An operator tied to centres sees and revokes only
the certificates of exams sat at those centres; others answer "not found".
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from testing_center.access import require_recent_sign_in, require_roles
from testing_center.accounts.models import Role
from testing_center.certification import services as certs
from testing_center.certification.forms import CertificateSearchForm, RevokeForm
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.web.certificates import register_labels
from testing_center.web.operations import act, flash_form_errors

bp = Blueprint("staff_certificates", __name__, url_prefix="/staff/operations/certificates")
register_labels(bp)
OPERATORS = (Role.OPERATOR, Role.ADMIN)


@bp.route("")
@require_roles(*OPERATORS)
def certificates():
    """Recent certificates (number, holder, exam, date, status), newest first."""
    form = CertificateSearchForm(request.args)
    search = form.q.data or ""
    return render_template(
        "operations/certificates.html",
        form=form,
        search=search,
        certificates=certs.recent_certificates(db.session, current_user, search),
    )


@bp.route("/<number>")
@require_roles(*OPERATORS)
def certificate(number: str):
    found = certs.certificate_for_staff(db.session, current_user, number)
    return render_template(
        "operations/certificate.html",
        certificate=found,
        status=certs.status_payload(db.session, found),
        form=RevokeForm(),
    )


@bp.route("/<number>/revoke", methods=["POST"])
@require_roles(*OPERATORS)
@require_recent_sign_in
def revoke(number: str):
    found = certs.certificate_for_staff(db.session, current_user, number)
    form = RevokeForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("staff_certificates.certificate", number=found.number))
    ok, _result = act(
        lambda: certs.revoke(
            db.session,
            number=found.number,
            category=form.category.data,
            reason=form.reason.data,
            actor=current_user,
            now=now(),
        )
    )
    if ok:
        flash(
            _(
                "Certificate %(number)s is revoked: verification shows it as REVOKED, and "
                "the holder will be told by e-mail.",
                number=found.number,
            ),
            "info",
        )
    return redirect(url_for("staff_certificates.certificate", number=found.number))
