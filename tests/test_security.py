"""Accounts under attack: sign-in throttling and lockout, password change ending every
token and session."""

from __future__ import annotations

import re

from testing_center.accounts.models import Role

from .conftest import PASSWORD


def token(client, email: str, password: str):
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def test_failed_sign_ins_lock_the_account_for_the_window(app, client, clock, make_candidate):
    candidate = make_candidate()
    other = make_candidate()
    for _ in range(5):
        assert token(client, candidate.email, "wrong-password-1").status_code == 401
    locked = token(client, candidate.email, PASSWORD)
    assert locked.status_code == 429 and locked.json["error"]["code"] == "login_locked"
    assert "15 minutes" in locked.json["error"]["message"]
    assert token(client, other.email, PASSWORD).status_code == 200  # others unaffected
    clock.advance(minutes=15)
    assert token(client, candidate.email, PASSWORD).status_code == 200


def test_one_client_guessing_many_accounts_is_stopped(app, client, clock, make_candidate):
    app.config["LOGIN_FAILURES_PER_CLIENT"] = 4
    emails = [make_candidate().email for _ in range(5)]
    codes = [token(client, email, "wrong-password-1").status_code for email in emails]
    assert codes == [401, 401, 401, 401, 429]


def test_the_web_form_is_throttled_too(app, client, make_candidate):
    candidate = make_candidate()
    for _ in range(5):
        client.post("/login", data={"email": candidate.email, "password": "nope-nope-nope"})
    page = client.post("/login", data={"email": candidate.email, "password": PASSWORD})
    assert page.status_code == 429 and "Too many failed sign-ins" in page.text


def test_password_change_revokes_tokens_and_sessions(app, client, make_candidate):
    candidate = make_candidate()
    old = {"Authorization": f"Bearer {token(client, candidate.email, PASSWORD).json['token']}"}
    browser = app.test_client()
    page = browser.get("/login")
    assert re.search("csrf_token", page.text)
    browser.post("/login", data={"email": candidate.email, "password": PASSWORD})
    assert browser.get("/exams").status_code == 200
    wrong = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-it-at-all", "new_password": "a-new-secret-2026"},
        headers=old,
    )
    assert wrong.status_code == 401
    weak = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short"},
        headers=old,
    )
    assert weak.status_code == 422 and weak.json["error"]["code"] == "weak_password"
    changed = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a-new-secret-2026"},
        headers=old,
    )
    assert changed.status_code == 204
    assert client.get("/api/v1/bookings", headers=old).status_code == 401
    assert browser.get("/exams").status_code in (302, 401)
    assert token(client, candidate.email, PASSWORD).status_code == 401
    assert token(client, candidate.email, "a-new-secret-2026").status_code == 200


def test_irreversible_staff_actions_need_a_recent_sign_in(app, client, clock, make_staff, seeded):
    """A page session left open on a centre computer cannot apply a re-scoring."""
    operator = make_staff(Role.OPERATOR)
    client.post("/login", data={"email": operator.email, "password": PASSWORD})
    clock.advance(minutes=16)
    stale = client.post("/staff/psychometrics/jft-basic/rescore", data={"reason": "fix"})
    assert stale.status_code == 302 and "/login" in stale.headers["Location"]
    client.post("/login", data={"email": operator.email, "password": PASSWORD})
    fresh = client.post("/staff/psychometrics/jft-basic/rescore", data={"reason": "fix"})
    assert fresh.status_code == 302 and "/login" not in fresh.headers["Location"]
