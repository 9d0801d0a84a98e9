"""Server-rendered pages (Jinja + WTForms), one blueprint per audience."""

from __future__ import annotations

from flask import Flask

from testing_center.web import (
    auth,
    author,
    bookings,
    candidate,
    certificates,
    employer,
    fraud,
    media,
    operations,
    privacy,
    proctor,
    psychometrics,
    staff_certificates,
    verify,
)


def init_app(app: Flask) -> None:
    app.register_blueprint(auth.bp)
    app.register_blueprint(candidate.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(author.bp)
    app.register_blueprint(psychometrics.bp)
    app.register_blueprint(operations.bp)
    app.register_blueprint(proctor.bp)
    app.register_blueprint(bookings.bp)
    app.register_blueprint(verify.bp)
    app.register_blueprint(privacy.bp)
    app.register_blueprint(fraud.bp)
    app.register_blueprint(certificates.bp)
    app.register_blueprint(employer.bp)
    app.register_blueprint(staff_certificates.bp)
