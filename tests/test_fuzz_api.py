"""Fuzzing the JSON API from its own OpenAPI document (schemathesis, in-process WSGI).

Every operation of ``/api/v1/openapi.json`` gets a bounded number of generated requests
(valid and invalid bodies, queries and path values), sent with the token of a staff
member, a candidate or an employer (whichever the operation's role takes) over a world
with real records. No answer may be a 5xx, and every error is the contract's JSON error.
"""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from testing_center.accounts.models import Role

from .operations_setup import NEXT_WEEK, schedule

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def fuzz_world(app, client, clock, world, make_candidate, make_staff, auth_headers):
    """Tokens of every kind of user, a published session with a checked-in booking."""
    created = schedule(client, world, NEXT_WEEK)
    clock.current = NEXT_WEEK - dt.timedelta(days=6)
    candidate = make_candidate()
    headers = auth_headers(candidate)
    booked = client.post(f"/api/v1/sessions/{created['id']}/bookings", headers=headers)
    assert booked.status_code == 201, booked.json
    client.post("/api/v1/attempts", json={"exam_code": "ops-exam"}, headers=headers)
    return [
        world["headers"]["operator"],
        headers,
        auth_headers(make_staff(Role.EMPLOYER)),
        auth_headers(make_staff(Role.ADMIN)),
    ]


def is_json_error(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def test_no_generated_request_gets_a_server_error(app, fuzz_world):
    """No request generated from the OpenAPI document is answered with a 5xx, and
    every 4xx is a JSON error with a code and a message."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40

    for operation in operations:
        fuzz(operation, fuzz_world, failures)
    assert failures == []


def fuzz(operation, tokens: list[dict], failures: list[str]) -> None:
    """Send the operation's generated requests; note every 5xx and non-JSON error."""

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def exercise(case) -> None:
        for headers in tokens:  # the first whose role the operation takes
            response = case.call(headers=headers)
            if response.status_code != 403:
                break
        where = f"{case.method} {case.formatted_path} -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{where}: {response.text[:200]}")
        elif response.status_code >= 400 and not is_json_error(response):
            failures.append(f"{where}: not a JSON error: {response.text[:200]}")

    exercise()


def test_an_id_past_the_database_integer_range_is_not_found(client, fuzz_world):
    """A path id too large for the database is a 404 (found by this fuzzing: a 500)."""
    operator, candidate, *_ = fuzz_world
    for path, headers in (
        (f"/api/v1/sessions/{2**31}/pause", operator),
        (f"/api/v1/sessions/{2**70}/roster", operator),
        (f"/api/v1/bookings/{2**63}/admission.pdf", candidate),
    ):
        response = client.open(
            path,
            method="POST" if path.endswith("pause") else "GET",
            json={"reason": "x"} if path.endswith("pause") else None,
            headers=headers,
        )
        assert response.status_code == 404, path
    moved = client.post(
        "/api/v1/bookings/1/reschedule", json={"session_id": 2**40}, headers=candidate
    )
    assert moved.status_code == 422
