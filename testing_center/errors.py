"""Application errors and their single mapping to HTTP responses.

    AppError                 base: ``code`` (stable), ``status`` (HTTP), message
    ├── NotFound             404: also used for other users' objects, so ids are not confirmed
    ├── Unauthenticated      401
    ├── Forbidden            403: a signed-in user whose role may not do this
    ├── Conflict             409: the request is valid but the state forbids it
    └── InvalidInput         422: input that passed the schema but breaks a rule

Domain packages raise their own errors (each with a ``code``); ``DOMAIN_STATUS`` maps
them to statuses here, in one place. API requests get
``{"error": {"code", "message"[, "details"]}}``; pages get an HTML error page.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import BadRequest, HTTPException

from exam_templates.errors import AssemblyError, InvalidTemplate
from item_bank.errors import InvalidItem, InvalidResponse


class AppError(Exception):
    """An error with a stable code, an HTTP status and a message for the client."""

    code = "error"
    status = 400

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, **params: Any
    ) -> None:
        super().__init__(message % params if params else message)
        self.message = message
        self.params = params
        if code:
            self.code = code
        self.details = details

    def translated(self) -> str:
        """Return the message in the request's language (messages are marked with ``N_``)."""
        return gettext(self.message, **self.params)


class NotFound(AppError):
    code, status = "not_found", 404


class Unauthenticated(AppError):
    code, status = "unauthenticated", 401


class Forbidden(AppError):
    code, status = "forbidden", 403


class Conflict(AppError):
    code, status = "conflict", 409


class InvalidInput(AppError):
    code, status = "invalid_input", 422


class TooManyRequests(AppError):
    code, status = "rate_limited", 429


DOMAIN_STATUS: dict[type[Exception], int] = {
    InvalidResponse: 422,
    InvalidItem: 422,
    InvalidTemplate: 422,
    AssemblyError: 409,
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def wants_json() -> bool:
    """API paths always answer JSON, whatever the client accepts."""
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    """Render an error as JSON for the API or as a page for the browser."""
    if wants_json():
        body: dict[str, Any] = {"code": code, "message": message}
        if details:
            body["details"] = details
        response = jsonify(error=body)
    else:
        response = Response(
            render_template("error.html", status=status, message=message), mimetype="text/html"
        )
    response.status_code = status
    return response


def handle_app_error(error: AppError) -> Response:
    if isinstance(error, Unauthenticated):
        if not wants_json():
            return redirect(url_for("account.login", next=request.full_path))
        response = error_response(error.status, error.code, error.translated(), error.details)
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return error_response(error.status, error.code, error.translated(), error.details)


def handle_domain_error(error: Exception) -> Response:
    status = next(s for cls, s in DOMAIN_STATUS.items() if isinstance(error, cls))
    details = getattr(error, "problems", None)
    return error_response(status, error.code, str(error), details)


def handle_http_exception(error: HTTPException) -> Response:
    """Turn werkzeug's errors, including webargs validation failures, into our format."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    details = data.get("messages") or data.get("errors")
    message = data.get("message") or error.description or error.name
    if details and status == 422:
        message = "The request is not valid; see details."
    response = error_response(status, HTTP_CODES.get(status, "error"), message, details)
    for name, value in [*error.get_headers(), *(data.get("headers") or {}).items()]:
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def handle_unexpected(error: Exception) -> Response:
    """Never show a stack trace: log it and answer a plain 500."""
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "An internal error occurred.")


DATABASE_RETRY_AFTER_SECONDS = 2


def database_unavailable(error: DBAPIError) -> bool:
    """Whether the database could not be reached or could not serve the request now (a
    lost or refused connection, a server shutting down or starting up, SQLite's lock),
    as opposed to a fault of the statement (which stays a 500)."""
    if error.connection_invalidated:
        return True
    if not isinstance(error, OperationalError):
        return False
    if type(error.orig).__module__.startswith("sqlite3"):  # "no such table" is ours
        return "locked" in str(error.orig) or "busy" in str(error.orig)
    return True


def handle_database_error(error: DBAPIError) -> Response:
    """A database that cannot be reached (restart, failover, network) answers 503 with
    Retry-After, which clients and the exam page retry; other database errors are 500.

    A save is safe to retry: its ``client_seq`` makes a repeat of a stored save a no-op.
    """
    if not database_unavailable(error):
        return handle_unexpected(error)
    current_app.logger.warning(
        "database unavailable on %s %s: %s", request.method, request.path, type(error.orig).__name__
    )
    response = error_response(
        503, "database_unavailable", "The service is briefly unavailable; try again."
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


TEXT_BODIES = {
    "application/json": (b"\x00", b"\\u0000"),
    "application/x-www-form-urlencoded": (b"\x00", b"%00"),
}


def refuse_nul_characters() -> None:
    """Refuse NUL characters in paths, query strings and text bodies.

    No text field may hold one, and PostgreSQL cannot store them: without this check the
    request would fail as a 500 deep in the database instead of a clear 400. Binary
    uploads (multipart) are not text bodies and are left alone.
    """
    markers = TEXT_BODIES.get(request.mimetype, ())
    body = request.get_data(cache=True) if markers else b""
    if (
        "\x00" in request.path
        or b"%00" in request.query_string
        or any(marker in body for marker in markers)
    ):
        raise BadRequest("The request contains a NUL character, which no field may hold.")


def init_app(app: Flask) -> None:
    app.before_request(refuse_nul_characters)
    app.register_error_handler(AppError, handle_app_error)
    for error_class in DOMAIN_STATUS:
        app.register_error_handler(error_class, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
