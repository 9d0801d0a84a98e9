"""The candidate's certificate actions, beside their results: share a link that expires,
withdraw it early, download the Open Badges credential. The PDF itself (certificate or
practice report) is the API's ``GET /api/v1/attempts/{id}/certificate.pdf``, which the
session cookie opens.

Each action calls the same service as the JSON API; another holder's certificate answers
"not found", exactly like a number that does not exist.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from testing_center.access import requester, require_roles
from testing_center.accounts.models import Role
from testing_center.certification import services as certs
from testing_center.certification.forms import (
    SHARE_DAYS,
    ShareForm,
    WithdrawShareForm,
    certificate_status_label,
    revocation_label,
)
from testing_center.clock import now
from testing_center.extensions import db
from testing_center.web.operations import act, flash_form_errors

bp = Blueprint("my_certificates", __name__, url_prefix="/results/certificates")


def register_labels(blueprint: Blueprint) -> None:
    """The certificate words for every template (each blueprint using them registers
    them, so none depends on another being registered)."""
    blueprint.add_app_template_filter(revocation_label, "revocation_label")
    blueprint.add_app_template_filter(certificate_status_label, "certificate_status")
    blueprint.add_app_template_global(SHARE_DAYS, "share_days")


register_labels(bp)


@bp.route("/<number>/share", methods=["POST"])
@require_roles(Role.CANDIDATE)
def share(number: str):
    """Create a share link and show it, with its expiry, ready to copy."""
    user = requester()
    certificate = certs.own_certificate(db.session, number, user)
    form = ShareForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("bookings.results"))
    ok, link = act(lambda: certs.share(db.session, certificate, form.days.data, now()))
    if not ok:
        return redirect(url_for("bookings.results"))
    return render_template(
        "certificates/shared_link.html",
        number=certificate.number,
        url=certs.share_url(link),
        expires_at=link.expires_at,
    )


@bp.route("/<number>/share/withdraw", methods=["POST"])
@require_roles(Role.CANDIDATE)
def withdraw_share(number: str):
    """End a share link now: whoever opens it from then on reads "expired or unknown"."""
    user = requester()
    certificate = certs.own_certificate(db.session, number, user)
    form = WithdrawShareForm()
    if not form.validate_on_submit():
        flash_form_errors(form)
        return redirect(url_for("bookings.results"))
    ok, _link = act(
        lambda: certs.withdraw_share(db.session, certificate, form.token.data, user, now())
    )
    if ok:
        flash(_("The link was withdrawn: it no longer shows your certificate."), "info")
    return redirect(url_for("bookings.results"))


@bp.route("/<number>/badge.json")
@require_roles(Role.CANDIDATE)
def badge(number: str):
    """The certificate as an Open Badges 3.0 credential (JSON file, signed as a JWT)."""
    certificate = certs.own_certificate(db.session, number, requester())
    exported = certs.badge_export(
        db.session,
        certificate,
        now(),
        f"{certs.public_base_url()}{url_for('certificates.keys')}",
    )
    return Response(
        json.dumps(exported, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers={
            "Content-Disposition": f"attachment; filename={certificate.number}-open-badge.json"
        },
    )


def certificates_of(attempt_ids: list[str]) -> dict[str, list[dict]]:
    """What the results pages show of each attempt's certificates."""
    return certs.holder_certificates(db.session, attempt_ids, now())
