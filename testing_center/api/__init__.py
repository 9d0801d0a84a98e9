"""The JSON API under ``/api/v1`` and ``/healthz``, documented at ``/api/v1/openapi.json``.

flask-smorest turns the marshmallow schemas into both request validation and the
OpenAPI document, so the two cannot drift apart. Errors use the application's one
JSON error format (``testing_center.errors``), which is also what the document shows.
"""

from __future__ import annotations

from flask import Flask, request
from flask_smorest import Api
from werkzeug.exceptions import UnsupportedMediaType

from testing_center.api import (
    attempts,
    auth,
    certificates,
    exams,
    health,
    operations,
    privacy,
    reports,
)
from testing_center.api.schemas import ErrorSchema
from testing_center.extensions import csrf


class TestingCenterApi(Api):
    """flask-smorest's Api, with errors left to the application's own handlers."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        """Do nothing: ``testing_center.errors`` renders every error, API and pages alike."""


def init_app(app: Flask) -> None:
    api = TestingCenterApi(
        app,
        spec_kwargs={
            "info": {"description": "Public contract v1 of the testing engine."},
        },
    )
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "Token from POST /api/v1/auth/token"},
    )
    for blueprint in (
        health.blp,
        auth.blp,
        exams.blp,
        attempts.blp,
        operations.blp,
        certificates.blp,
        privacy.blp,
        reports.blp,
    ):
        # Bearer clients cannot be forged cross-site; cookie sessions are checked in
        # testing_center.access.requester, which demands the CSRF header for them.
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint)
    app.extensions["api"] = api
    app.before_request(require_json_body)


def require_json_body() -> None:
    """Refuse API bodies that are not JSON with 415, instead of reading them as empty."""
    if (
        request.path.startswith("/api/")
        and request.method in ("POST", "PUT", "PATCH")
        and request.content_length
        and not request.is_json
    ):
        raise UnsupportedMediaType("Send the body as JSON (Content-Type: application/json).")
