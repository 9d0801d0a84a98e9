"""Registration, sign-in, tokens and roles."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import update

from testing_center.accounts.models import ApiToken, Role, User
from testing_center.extensions import db

from .conftest import PASSWORD

GOOD = {
    "email": "Dilnoza@Example.com",
    "password": "a-long-enough-password",
    "full_name": "Dilnoza  Rashidova",
    "date_of_birth": "2001-05-17",
    "nationality": "UZ",
    "id_document_number": "ad 1234-567",
}


def user_count(app) -> int:
    with app.app_context():
        return db.session.query(User).count()


def test_register_creates_candidate_with_normalised_profile(client, app):
    """Registration stores the candidate with e-mail, name and ID number normalised."""
    response = client.post("/api/v1/auth/register", json=GOOD)
    assert response.status_code == 201
    assert response.json["role"] == "candidate"
    with app.app_context():
        user = db.session.query(User).one()
        profile = user.profile
    assert user.email == "dilnoza@example.com"
    assert profile.full_name == "Dilnoza Rashidova"
    assert profile.id_document_number == "AD1234567"
    assert user.password_hash.startswith("$argon2id$")
    assert "password" not in response.json


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"email": "not-an-address"}, 422, "validation_error"),
        ({"password": "short"}, 422, "weak_password"),
        ({"password": "dilnoza@example.com"}, 422, "weak_password"),
        ({"nationality": "XX"}, 422, "invalid_nationality"),
        ({"date_of_birth": "2025-01-01"}, 422, "invalid_date_of_birth"),
        ({"date_of_birth": "17.05.2001"}, 422, "validation_error"),
        ({"id_document_number": "AB/12345"}, 422, "invalid_id_document"),
        ({"full_name": None}, 422, "validation_error"),
        ({"role": "admin"}, 422, "validation_error"),
    ],
)
def test_register_refuses_bad_input_and_writes_nothing(app, client, change, status, code):
    """Bad registration input gets a clear JSON error and leaves no account behind."""
    response = client.post("/api/v1/auth/register", json={**GOOD, **change})
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert response.json["error"]["message"]
    assert user_count(app) == 0


def test_register_refuses_missing_fields_naming_them(client):
    """A registration without fields lists every missing field."""
    response = client.post("/api/v1/auth/register", json={"email": "a@b.test"})
    assert response.status_code == 422
    details = response.json["error"]["details"]["json"]
    assert {"password", "full_name", "date_of_birth", "nationality"} <= set(details)


def test_register_refuses_non_json_body(client):
    """A body that is not JSON is refused with a JSON error, not an HTML page."""
    response = client.post(
        "/api/v1/auth/register", data="email=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code in (415, 422)
    assert "error" in response.json


def test_register_refuses_taken_email_case_insensitively(app, client):
    """A second account with the same address (any case) is refused with 409."""
    assert client.post("/api/v1/auth/register", json=GOOD).status_code == 201
    again = client.post("/api/v1/auth/register", json={**GOOD, "email": "DILNOZA@example.com"})
    assert again.status_code == 409
    assert again.json["error"]["code"] == "email_taken"
    assert user_count(app) == 1


def test_token_for_good_credentials(client, make_candidate, clock):
    """The token endpoint returns a token and its expiry for the right password."""
    user = make_candidate()
    response = client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json["token"]
    assert response.json["expires_at"].startswith("2026-11-26T21:00:00")


@pytest.mark.parametrize("email", ["candidate-unknown@example.test", None])
def test_token_refused_for_wrong_credentials(client, make_candidate, email):
    """A wrong password or an unknown address gets the same 401 answer."""
    user = make_candidate()
    response = client.post(
        "/api/v1/auth/token", json={"email": email or user.email, "password": "wrong-password!"}
    )
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_credentials"


def test_token_expires(client, make_candidate, auth_headers, clock, app):
    """A token stops working once its lifetime has passed on the server clock."""
    headers = auth_headers(make_candidate())
    assert client.get("/api/v1/attempts/none", headers=headers).status_code == 404
    clock.advance(seconds=app.config["API_TOKEN_TTL_SECONDS"])
    response = client.get("/api/v1/attempts/none", headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_forged_token_refused(client):
    """An unknown bearer token is refused with 401."""
    response = client.get("/api/v1/attempts/x", headers={"Authorization": "Bearer forged"})
    assert response.status_code == 401


def test_anonymous_api_call_refused(client):
    """The attempt API needs a signed-in candidate."""
    response = client.post("/api/v1/attempts", json={"exam_code": "jft-basic-practice"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.CANDIDATE])
def test_staff_roles_cannot_take_exams(client, make_staff, auth_headers, seeded, role):
    """Only candidates start attempts: every other role gets 403."""
    headers = auth_headers(make_staff(role))
    response = client.post(
        "/api/v1/attempts", json={"exam_code": "jft-basic-practice"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"


def test_disabled_account_cannot_get_token(client, app, make_candidate):
    """A disabled account cannot sign in."""
    user = make_candidate()
    with app.app_context():
        db.session.get(User, user.id).is_enabled = False
        db.session.commit()
    response = client.post("/api/v1/auth/token", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 401


def disable(app, user) -> None:
    with app.app_context():
        db.session.get(User, user.id).is_enabled = False
        db.session.commit()


def revoke_tokens(app, user) -> None:
    with app.app_context():
        db.session.execute(
            update(ApiToken)
            .where(ApiToken.user_id == user.id)
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
        db.session.commit()


@pytest.mark.parametrize("withdraw", [disable, revoke_tokens])
@pytest.mark.parametrize("path", ["/api/v1/attempts/none", "/api/v1/me/data"])
def test_live_token_stops_working_when_withdrawn(
    client, app, make_candidate, auth_headers, withdraw, path
):
    """A token that worked is refused with 401 once it is revoked or its account is
    disabled, on the attempt API (which reads the holder as a row) and on the others
    (which load the user)."""
    user = make_candidate()
    headers = auth_headers(user)
    assert client.get(path, headers=headers).status_code in (200, 404)
    withdraw(app, user)
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_attempt_api_loads_no_user_object(app, client, make_candidate, auth_headers):
    """A bearer request to the attempt API checks its token as a row: no ``User`` object
    is built (issue 8: it cost a save about a sixth of its CPU), and the token is read
    once."""
    from sqlalchemy import event

    headers = auth_headers(make_candidate())
    loaded, statements = [], []
    with app.app_context():
        engine = db.engine

    def record(_connection, _cursor, statement, *_args):
        statements.append(statement)

    def on_load(target, _context):
        loaded.append(target)

    event.listen(User, "load", on_load)
    event.listen(engine, "before_cursor_execute", record)
    try:
        assert client.get("/api/v1/attempts/none", headers=headers).status_code == 404
        assert client.get("/api/v1/me/data", headers=headers).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(User, "load", on_load)
    assert len(loaded) == 1  # by the second request only
    assert sum("api_tokens" in s for s in statements) == 2  # one per request


def test_web_register_signs_in_and_shows_catalogue(client, seeded):
    """Registering through the page signs the candidate in and opens the catalogue."""
    form = {**GOOD, "confirm": GOOD["password"], "consent": "y"}
    response = client.post("/register", data=form, follow_redirects=True)
    assert response.status_code == 200
    assert "JFT-Basic" in response.get_data(as_text=True)


def test_web_register_shows_errors_and_writes_nothing(app, client):
    """A page registration with a mismatched password repeat is re-shown with 422."""
    form = {**GOOD, "confirm": "something-else-entirely"}
    response = client.post("/register", data=form)
    assert response.status_code == 422
    assert user_count(app) == 0


def test_web_login_good_and_bad(client, make_candidate):
    """The sign-in page accepts the right password and refuses a wrong one."""
    user = make_candidate()
    bad = client.post("/login", data={"email": user.email, "password": "wrong-password!"})
    assert bad.status_code == 401
    good = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert good.status_code == 302
    assert client.get("/exams").status_code == 200


def test_web_pages_redirect_anonymous_to_login(client):
    """A candidate page asks an anonymous visitor to sign in."""
    response = client.get("/exams")
    assert response.status_code == 302
    assert "/login?next=" in response.headers["Location"]


def test_web_role_denial(client, make_staff):
    """A staff account opening the candidate catalogue gets a 403 page."""
    user = make_staff(Role.OPERATOR)
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    response = client.get("/exams")
    assert response.status_code == 403
    assert response.mimetype == "text/html"


def test_login_redirect_refuses_other_sites(client, make_candidate):
    """The ``next`` parameter cannot send a candidate to another site."""
    user = make_candidate()
    response = client.post(
        "/login?next=https://evil.example/x", data={"email": user.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/"


def test_logout_ends_copied_sessions(client, app, make_candidate):
    """After signing out, a session cookie copied before is refused too."""
    user = make_candidate()
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    assert copy.get("/exams").status_code == 200
    client.post("/logout")
    assert copy.get("/exams").status_code == 302


def test_chosen_language_survives_sign_in(client, make_candidate):
    """A language chosen on the sign-in page stays after signing in."""
    user = make_candidate()
    client.post("/language/ru", data={"next": "/login"})
    client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert "Экзамены" in client.get("/exams").get_data(as_text=True)
