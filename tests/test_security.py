"""Accounts under attack: sign-in throttling and lockout, password change ending every
token and session."""

from __future__ import annotations

import ipaddress
import re

from testing_center import create_app
from testing_center.accounts.models import Role
from testing_center.extensions import db

from .conftest import PASSWORD, settings_for


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


def token_from(client, address: str, email: str, password: str, **headers: str):
    return client.post(
        "/api/v1/auth/token",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def test_a_hall_behind_one_centre_address_is_not_locked_out(app, client, make_candidate):
    """Candidates of a trusted centre network share a larger per-client allowance, so a
    few dozen typing mistakes there lock nobody else out; elsewhere the limit holds."""
    app.config["LOGIN_FAILURES_PER_CLIENT"] = 4
    app.config["TRUSTED_CENTRE_NETWORKS"] = (ipaddress.ip_network("203.0.113.0/24"),)
    app.config["CENTRE_LOGIN_FAILURES_PER_CLIENT"] = 10
    hall = [make_candidate() for _ in range(9)]
    for candidate in hall:
        assert token_from(client, "203.0.113.9", candidate.email, "typo-typo-1").status_code == 401
    assert token_from(client, "203.0.113.9", hall[0].email, PASSWORD).status_code == 200
    assert token_from(client, "203.0.113.9", hall[1].email, "typo-typo-1").status_code == 401
    locked = token_from(client, "203.0.113.9", hall[2].email, PASSWORD)
    assert locked.status_code == 429  # the centre's allowance of 10 is used up
    outside = [make_candidate().email for _ in range(5)]
    codes = [token_from(client, "198.51.100.4", e, "typo-typo-1").status_code for e in outside]
    assert codes == [401, 401, 401, 401, 429]


def test_the_per_account_limit_holds_inside_a_centre(app, client, make_candidate):
    """A trusted centre address raises only the per-client allowance: one account still
    locks after LOGIN_FAILURES_PER_ACCOUNT failures."""
    app.config["TRUSTED_CENTRE_NETWORKS"] = (ipaddress.ip_network("203.0.113.0/24"),)
    candidate = make_candidate()
    for _ in range(5):
        assert (
            token_from(client, "203.0.113.9", candidate.email, "guess-guess-1").status_code == 401
        )
    assert token_from(client, "203.0.113.9", candidate.email, PASSWORD).status_code == 429


def test_a_forwarded_for_header_cannot_escape_the_client_limit(app, client, make_candidate):
    """Without TRUSTED_PROXIES the client's address is the connection's: a guesser who
    writes X-Forwarded-For (a new address each time, or a centre's) is still one client."""
    app.config["LOGIN_FAILURES_PER_CLIENT"] = 4
    app.config["TRUSTED_CENTRE_NETWORKS"] = (ipaddress.ip_network("203.0.113.0/24"),)
    emails = [make_candidate().email for _ in range(5)]
    codes = [
        token_from(
            client, "198.51.100.4", email, "guess-guess-1", **{"X-Forwarded-For": f"203.0.113.{i}"}
        ).status_code
        for i, email in enumerate(emails)
    ]
    assert codes == [401, 401, 401, 401, 429]


def test_behind_a_trusted_proxy_the_forwarded_address_counts(database_url, clock, make_candidate):
    """With TRUSTED_PROXIES=1 the address the proxy appended is the client's: each client
    has its own allowance, and an address the client wrote before it is ignored."""
    proxied = create_app(
        settings_for(database_url, CLOCK=clock, TRUSTED_PROXIES=1, LOGIN_FAILURES_PER_CLIENT=4)
    )
    client = proxied.test_client()
    emails = [make_candidate().email for _ in range(5)]

    def through_proxy(email: str, forwarded: str) -> int:
        return token_from(
            client, "10.0.0.2", email, "guess-guess-1", **{"X-Forwarded-For": forwarded}
        ).status_code

    spoofed = [through_proxy(e, f"192.0.2.{i}, 198.51.100.4") for i, e in enumerate(emails)]
    assert spoofed == [401, 401, 401, 401, 429]
    assert through_proxy(emails[0], "198.51.100.5") == 401  # another client, its own count
    with proxied.app_context():
        db.engine.dispose()
