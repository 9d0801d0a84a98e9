"""The public contract: paths in the OpenAPI document, the JSON error format, /healthz."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.exc import OperationalError

CONTRACT_PATHS = {
    "/healthz": {"get"},
    "/api/v1/auth/register": {"post"},
    "/api/v1/auth/token": {"post"},
    "/api/v1/exams": {"get"},
    "/api/v1/attempts": {"post"},
    "/api/v1/attempts/{attempt_id}": {"get"},
    "/api/v1/attempts/{attempt_id}/responses/{item_ref}": {"put"},
    "/api/v1/attempts/{attempt_id}/finish": {"post"},
    "/api/v1/attempts/{attempt_id}/result": {"get"},
    # test-centre operations (issue 6)
    "/api/v1/centers": {"post"},
    "/api/v1/sessions": {"post", "get"},
    "/api/v1/sessions/{session_id}/bookings": {"post"},
    "/api/v1/bookings": {"get"},
    "/api/v1/bookings/{booking_id}/reschedule": {"post"},
    "/api/v1/bookings/{booking_id}/admission.pdf": {"get"},
    "/api/v1/bookings/{booking_id}/check-in": {"post"},
    "/api/v1/sessions/{session_id}/open": {"post"},
    "/api/v1/sessions/{session_id}/close": {"post"},
    "/api/v1/sessions/{session_id}/roster": {"get"},
    "/api/v1/attempts/{attempt_id}/pause": {"post"},
    "/api/v1/attempts/{attempt_id}/resume": {"post"},
    "/api/v1/attempts/{attempt_id}/extend": {"post"},
    "/api/v1/attempts/{attempt_id}/void": {"post"},
    # certificates (issue 7)
    "/api/v1/attempts/{attempt_id}/certificate.pdf": {"get"},
    "/api/v1/certificates/{number}": {"get"},
    "/api/v1/certificates/keys": {"get"},
}


def test_openapi_document_lists_the_contract_paths(client):
    """Every contract path of this release is in /api/v1/openapi.json with its method."""
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    for path, methods in CONTRACT_PATHS.items():
        assert methods <= set(document["paths"][path]), path


def test_openapi_matches_the_routes(client, app):
    """The document lists exactly the API routes the application serves."""
    document = client.get("/api/v1/openapi.json").json
    served = {
        re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(("/api/v1/", "/healthz")) and "openapi" not in rule.rule
    }
    assert served == set(document["paths"])


def test_openapi_documents_the_error_format(client):
    """Documented error responses use the {"error": {code, message}} schema."""
    document = client.get("/api/v1/openapi.json").json
    error = document["components"]["schemas"]["Error"]
    assert error["properties"]["error"]["$ref"].endswith("/ErrorBody")
    save = document["paths"]["/api/v1/attempts/{attempt_id}/responses/{item_ref}"]["put"]
    assert {"200", "404", "409", "422"} <= set(save["responses"])


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/api/v1/no-such-thing", 404, "not_found"),
        ("delete", "/api/v1/exams", 405, "method_not_allowed"),
        ("post", "/api/v1/auth/token", 415, "unsupported_media_type"),
    ],
)
def test_api_errors_are_json(client, method, path, status, code):
    """API errors are JSON with a stable code, never an HTML page."""
    response = getattr(client, method)(path, data="x", content_type="text/plain")
    assert response.status_code == status
    assert response.is_json
    assert response.json["error"]["code"] == code


def test_unexpected_error_is_a_plain_500(client, app, monkeypatch):
    """An unexpected failure answers a JSON 500 without a stack trace."""

    def explode(_session):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("testing_center.api.exams.catalogue", explode)
    response = client.get("/api/v1/exams")
    assert response.status_code == 500
    assert response.json == {
        "error": {"code": "internal_error", "message": "An internal error occurred."}
    }
    assert "secret" not in response.get_data(as_text=True)


def test_healthz(client):
    """/healthz answers ok with the database reachable."""
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok"}


def test_healthz_reports_database_failure(client, monkeypatch):
    """/healthz answers 503 when the database does not answer."""
    from testing_center.api import health

    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("down"))

    monkeypatch.setattr(health.db.session, "execute", broken)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json == {"status": "error", "database": "error"}


def test_exam_catalogue_payload(client, seeded):
    """GET /api/v1/exams describes each exam: modes, sections, scale, pass rule, availability."""
    exam = next(e for e in client.get("/api/v1/exams").json if e["code"] == "jft-basic-practice")
    assert exam["modes"] == ["practice"]
    assert exam["available"] is True
    assert exam["scoring"]["pass_rule"] == {"total_min": 200.0, "section_minimums": {}}
    assert exam["scoring"]["scale"]["max"] == 250
    assert [s["item_count"] for s in exam["sections"]] == [4, 4, 4, 4]


def test_catalogue_titles_follow_language(client, seeded):
    """Exam titles come in the language the client asks for."""
    exams = client.get("/api/v1/exams", headers={"Accept-Language": "ja"}).json
    exam = next(e for e in exams if e["code"] == "jft-basic-practice")
    assert exam["title"] == "JFT-Basic形式 練習テスト（短縮版）"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/auth/token", '{"email": "a\\u0000b@c.test", "password": "x"}'),
        ("get", "/api/v1/attempts/ab%00cd", None),
        ("post", "/api/v1/auth/register", '{"full_name": "\\u0000"}'),
    ],
)
def test_nul_characters_are_refused(client, method, path, body):
    """A NUL character in a path or JSON body gets a JSON 400, not a database error."""
    response = getattr(client, method)(path, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "bad_request"


def test_nul_in_login_form_is_refused(client):
    """A NUL character typed into the sign-in form gets a 400 page."""
    response = client.post("/login", data={"email": "a\x00@b.test", "password": "x"})
    assert response.status_code == 400


def test_error_headers(client):
    """405 names the allowed methods; 401 on the API asks for a bearer token."""
    not_allowed = client.delete("/api/v1/exams")
    assert "GET" in not_allowed.headers["Allow"]
    unauthenticated = client.get("/api/v1/attempts/x")
    assert unauthenticated.headers["WWW-Authenticate"] == "Bearer"


def test_healthz_errors_are_json(client):
    """/healthz answers its errors in JSON too."""
    response = client.post("/healthz")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
