"""Sign in, register, sign out and choose the interface language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from testing_center.accounts.consent import consent_sections
from testing_center.accounts.forms import LoginForm, RegisterForm
from testing_center.accounts.models import User
from testing_center.accounts.services import (
    CandidateDetails,
    end_all_sessions,
    register_candidate,
)
from testing_center.accounts.throttle import sign_in
from testing_center.clock import now
from testing_center.errors import AppError
from testing_center.extensions import db

bp = Blueprint("account", __name__)


def safe_next(target: str | None) -> str:
    """Return ``target`` only if it is a path on this site (no open redirects)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/"):
            return target
    return url_for("candidate.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = sign_in(db.session, form.email.data, form.password.data, now())
        except AppError as error:
            db.session.rollback()
            flash(error.translated(), "error")
            return render_template("auth/login.html", form=form), error.status
        start_session(user)
        db.session.commit()
        return redirect(safe_next(request.args.get("next")))
    status = 422 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.route("/register", methods=["GET", "POST"])
def register():
    form = RegisterForm()
    if form.validate_on_submit():
        details = CandidateDetails(
            email=form.email.data,
            password=form.password.data,
            full_name=form.full_name.data,
            date_of_birth=form.date_of_birth.data,
            nationality=form.nationality.data,
            id_document_number=form.id_document_number.data,
            phone_number=form.phone_number.data,
            consent=form.consent.data,
        )
        try:
            user = register_candidate(db.session, details, now())
        except AppError as error:
            db.session.rollback()
            flash(error.translated(), "error")
            return register_page(form, error.status)
        start_session(user)
        db.session.commit()
        flash(_("Your account is ready."), "info")
        return redirect(url_for("candidate.catalogue"))
    return register_page(form, 422 if form.errors else 200)


def register_page(form: RegisterForm, status: int):
    """The registration form with the consent text it asks the candidate to accept."""
    return render_template(
        "auth/register.html", form=form, consent=consent_sections(current_app.config)
    ), status


def start_session(user: User) -> None:
    """Sign ``user`` in on a fresh session that keeps only the chosen language."""
    locale = session.get("locale")
    session.clear()
    if locale:
        session["locale"] = locale
        user.locale = locale
    session["signed_in_at"] = now().isoformat()
    login_user(user)


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated:
        end_all_sessions(current_user)
        db.session.commit()
    locale = session.get("locale")
    logout_user()
    session.clear()
    if locale:
        session["locale"] = locale
    return redirect(url_for("account.login"))


@bp.route("/language/<code>", methods=["POST"])
def set_language(code: str):
    """Remember the chosen interface language (for the account too, when signed in)."""
    if code in current_app.config["LANGUAGES"]:
        session["locale"] = code
        if current_user.is_authenticated:
            current_user.locale = code
            db.session.commit()
    return redirect(safe_next(request.form.get("next")))
