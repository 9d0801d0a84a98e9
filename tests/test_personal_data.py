"""Personal data (issue 9): consent at registration, the candidate's copy of their data,
erasure on request, retention periods, photos served only to those entitled, and no
personal data in logs or URLs."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
import re

import pytest
from sqlalchemy import func, select

from testing_center.accounts.consent import CONSENT_VERSION
from testing_center.accounts.models import ApiToken, CandidateProfile, Role, User
from testing_center.attempts.models import Attempt, AttemptItem, Response
from testing_center.certification.models import Certificate, Verification
from testing_center.config import ConfigError, build_config
from testing_center.extensions import db
from testing_center.operations.models import (
    AuditEntry,
    CandidatePhoto,
    Centre,
    CentreStaff,
    Notification,
)
from testing_center.operations.notify import queue_notification
from testing_center.operations.scheduler import SWEEPS, run_cycle
from testing_center.privacy.logs import redact

from .conftest import PASSWORD
from .operations_setup import EXAM, NEXT_WEEK, schedule
from .sittings import b64, book, check_in, face, jpeg, open_session, take
from .test_certificates import release

BORN = dt.date(1998, 5, 17)
ID_NUMBER = "AC7654321"
PHONE = "+998901234567"
LANGUAGES = ("ja", "uz", "ru", "en")
REGISTRATION = {
    "email": "Madina@Example.com",
    "password": "a-long-enough-password",
    "full_name": "Madina Yusupova",
    "date_of_birth": "1999-03-08",
    "nationality": "UZ",
    "id_document_number": "FA 9988776",
}


# ---- consent and phone at registration ---------------------------------------------------


def test_registration_page_shows_the_consent_text_in_every_language(client, app):
    """The registration form shows what is collected, why, how long and who sees it, in
    ja, uz, ru and en, with the configured retention periods."""
    days = app.config["RETENTION_PRACTICE_DAYS"]
    pages = {
        lang: client.get("/register", headers={"Accept-Language": lang}).text for lang in LANGUAGES
    }
    assert "What we collect" in pages["en"] and "Who sees it" in pages["en"]
    assert 'name="consent"' in pages["en"] and 'name="phone_number"' in pages["en"]
    for lang in LANGUAGES:
        assert f"{days}" in pages[lang], lang
    assert "What we collect" not in pages["ru"] and "Что мы собираем" in pages["ru"]
    assert "What we collect" not in pages["uz"] and "What we collect" not in pages["ja"]


def test_page_registration_requires_consent_and_records_it(client, app, clock):
    """Without the consent box the page refuses; with it, the version and time are kept,
    and the phone number is stored in E.164 form."""
    form = {
        **REGISTRATION,
        "confirm": REGISTRATION["password"],
        "phone_number": "+998 90 123-45-67",
    }
    refused = client.post("/register", data=form)
    assert refused.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(User)) == 0
    accepted = client.post("/register", data={**form, "consent": "y"})
    assert accepted.status_code == 302
    with app.app_context():
        profile = db.session.scalar(select(CandidateProfile))
        assert profile.consent_version == CONSENT_VERSION
        assert profile.consented_at == clock()
        assert profile.phone_number == PHONE


def test_api_registration_keeps_consent_and_phone_optional(client, app):
    """The API contract is unchanged: consent and phone are optional; ``consent: true``
    is recorded, a malformed phone number is refused with ``invalid_phone``."""
    plain = client.post("/api/v1/auth/register", json=REGISTRATION)
    assert plain.status_code == 201, plain.json
    agreed = client.post(
        "/api/v1/auth/register",
        json={
            **REGISTRATION,
            "email": "second@example.test",
            "consent": True,
            "phone_number": "00998 (90) 123 45 67",
        },
    )
    assert agreed.status_code == 201, agreed.json
    bad = client.post(
        "/api/v1/auth/register",
        json={**REGISTRATION, "email": "third@example.test", "phone_number": "90 123"},
    )
    assert bad.status_code == 422 and bad.json["error"]["code"] == "invalid_phone"
    with app.app_context():
        first, second = db.session.scalars(
            select(CandidateProfile).order_by(CandidateProfile.user_id)
        ).all()
    assert first.consented_at is None and first.phone_number is None
    assert second.consent_version == CONSENT_VERSION and second.phone_number == PHONE
    text = client.get("/api/v1/auth/consent", headers={"Accept-Language": "uz"}).json
    assert text["version"] == CONSENT_VERSION and len(text["sections"]) == 5
    assert text["sections"][0]["heading"] != "What we collect"


def test_retention_periods_are_validated_at_start():
    """A retention period below one day refuses to start."""
    with pytest.raises(ConfigError):
        build_config(None, {}, {"SECRET_KEY": "x" * 40, "RETENTION_PHOTOS_DAYS": 0})


# ---- a candidate with a history ---------------------------------------------------------


@pytest.fixture
def history(app, client, clock, world, make_candidate, auth_headers):
    """A candidate (with phone and consent) who took a practice test and a proctored
    exam (photo at check-in, released, certified), plus an older photo on no certificate."""
    candidate = make_candidate(
        date_of_birth=BORN, id_document_number=ID_NUMBER, phone_number=PHONE, consent=True
    )
    headers = auth_headers(candidate)
    practice = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers).json
    practice_item = practice["sections"][0]["items"][0]["ref"]
    client.put(
        f"/api/v1/attempts/{practice['id']}/responses/{practice_item}",
        json={"response": "C", "client_seq": 1},
        headers=headers,
    )
    client.post(f"/api/v1/attempts/{practice['id']}/finish", headers=headers)
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    seat = book(client, clock, session_id, candidate, headers)
    with app.app_context():
        db.session.add(
            CandidatePhoto(
                user_id=candidate.id,
                mime_type="image/jpeg",
                data=jpeg(face(99)),
                taken_at=clock() - dt.timedelta(days=1),
            )
        )
        db.session.commit()
    check_in(client, clock, world, seat, ID_NUMBER, photo=b64(jpeg(face(1))), seat="A1")
    open_session(app, clock, session_id)
    take(client, seat, ["A", "A", "B", None])
    unreleased = client.get("/api/v1/me/data", headers=headers).json
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
    return {
        "candidate": candidate,
        "headers": headers,
        "seat": seat,
        "practice_id": practice["id"],
        "session_id": session_id,
        "number": number,
        "unreleased": unreleased,
    }


def test_candidate_downloads_everything_held(client, history):
    """GET /api/v1/me/data holds the profile, bookings, attempts with their answers and
    released results, certificate numbers, photos (base64), never an answer key."""
    data = client.get("/api/v1/me/data", headers=history["headers"]).json
    profile = data["profile"]
    assert profile["id_document_number"] == ID_NUMBER and profile["phone_number"] == PHONE
    assert profile["date_of_birth"] == BORN.isoformat()
    assert profile["consent_version"] == CONSENT_VERSION
    assert [b["admission_number"] for b in data["bookings"]] == [history["seat"].admission_number]
    attempts = {a["mode"]: a for a in data["attempts"]}
    assert attempts["practice"]["answers"][0]["response"] == "C"
    proctored = attempts["proctored"]
    assert [a["response"] for a in proctored["answers"]] == ["A", "A", "B", None]
    assert proctored["result_released"] and proctored["result"]["total"] is not None
    assert [c["number"] for c in data["certificates"]] == [history["number"]]
    assert len(data["photos"]) == 2
    assert sum(p["on_certificate"] for p in data["photos"]) == 1
    assert base64.b64decode(data["photos"][0]["data_base64"])[:2] == b"\xff\xd8"
    assert "key" not in json.dumps(data["attempts"])
    held_back = {a["mode"]: a for a in history["unreleased"]["attempts"]}["proctored"]
    assert held_back["result"] is None and not held_back["result_released"]


def test_my_data_pages_show_and_download(app, client, history):
    """The "My data" page shows the profile and links a JSON download of everything."""
    client.post("/login", data={"email": history["candidate"].email, "password": PASSWORD})
    page = client.get("/my-data")
    assert page.status_code == 200 and ID_NUMBER in page.text and PHONE in page.text
    download = client.get("/my-data/export.json")
    assert download.status_code == 200
    assert "attachment" in download.headers["Content-Disposition"]
    assert json.loads(download.data)["profile"]["full_name"]
    assert client.get("/my-data/delete").status_code == 200


# ---- erasure ------------------------------------------------------------------------------


def audit_of(app, user_id: int) -> list[AuditEntry]:
    with app.app_context():
        return db.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "user", AuditEntry.entity_id == str(user_id))
            .order_by(AuditEntry.id)
        ).all()


def test_erasure_keeps_results_and_certificates_verifiable(app, client, clock, history):
    """Erasure blanks practice answers, deletes photos on no certificate, the phone and
    the notices, disables the login and revokes tokens; the certificate still verifies
    with its photo, and the audit log records request and erasure without personal data."""
    candidate, headers = history["candidate"], history["headers"]
    wrong = client.post(
        "/api/v1/me/deletion", json={"password": "not-my-password"}, headers=headers
    )
    assert wrong.status_code == 401
    erased = client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=headers)
    assert erased.status_code == 200, erased.json
    assert erased.json["photos"] == 1 and erased.json["profile"] == "identity kept"
    assert client.get("/api/v1/me/data", headers=headers).status_code == 401
    signed_in = client.post(
        "/api/v1/auth/token", json={"email": candidate.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 401
    with app.app_context():
        user = db.session.get(User, candidate.id)
        assert user.email == f"erased-{candidate.id}@erased.invalid" and not user.is_enabled
        assert user.erased_at == clock()
        profile = db.session.get(CandidateProfile, candidate.id)
        assert profile.phone_number is None and profile.id_document_number == ID_NUMBER
        answers = dict(
            db.session.execute(
                select(Attempt.mode, func.count(Response.value))
                .join(AttemptItem, AttemptItem.attempt_id == Attempt.id)
                .join(Response, Response.attempt_item_id == AttemptItem.id)
                .group_by(Attempt.mode)
            ).all()
        )
        assert answers.get("practice", 0) == 0 and answers["proctored"] == 3
        photos = db.session.scalars(select(CandidatePhoto.id)).all()
        certificate = db.session.scalar(select(Certificate))
        assert photos == [certificate.photo_id]
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(ApiToken)
                .where(ApiToken.user_id == candidate.id, ApiToken.revoked_at.is_(None))
            )
            == 0
        )
    found = client.get(
        f"/api/v1/certificates/{history['number']}", query_string={"date_of_birth": BORN}
    )
    assert found.status_code == 200 and found.json["status"] == "valid"
    assert found.json["has_photo"]
    photo = client.get(
        f"/api/v1/certificates/{history['number']}/photo", query_string={"date_of_birth": BORN}
    )
    assert photo.status_code == 200
    entries = audit_of(app, candidate.id)
    assert [e.action for e in entries] == ["account.erasure_requested", "account.erased"]
    recorded = json.dumps([[e.before, e.after, e.reason] for e in entries])
    for personal in (candidate.email, ID_NUMBER, PHONE, BORN.isoformat(), "Candidate"):
        assert personal not in recorded
    again = client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=headers)
    assert again.status_code == 401


def test_erased_account_gets_no_more_mail(app, client, clock, history):
    """Nothing is queued for an erased account (it has no address left)."""
    client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=history["headers"])
    with app.app_context():
        user = db.session.get(User, history["candidate"].id)
        queue_notification(db.session, user, "certificate_revoked", clock(), number="X")
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(Notification)) == 0


def test_erasure_without_a_proctored_exam_deletes_the_profile(
    app, client, make_candidate, auth_headers
):
    """A candidate who never sat at a test centre leaves no identity behind."""
    candidate = make_candidate(phone_number=PHONE)
    response = client.post(
        "/api/v1/me/deletion", json={"password": PASSWORD}, headers=auth_headers(candidate)
    )
    assert response.status_code == 200 and response.json["profile"] == "deleted"
    with app.app_context():
        assert db.session.get(CandidateProfile, candidate.id) is None
        assert db.session.get(User, candidate.id).erased_at is not None


def test_erasure_waits_while_a_seat_is_booked(
    app, client, clock, world, make_candidate, auth_headers
):
    """A booked seat in a session to come blocks erasure (409), and nothing changes."""
    candidate = make_candidate()
    headers = auth_headers(candidate)
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    book(client, clock, session_id, candidate, headers)
    response = client.post("/api/v1/me/deletion", json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 409 and response.json["error"]["code"] == "erasure_blocked"
    with app.app_context():
        assert db.session.get(User, candidate.id).is_enabled
        assert audit_of(app, candidate.id) == []


def test_staff_cannot_erase_through_the_candidate_route(client, world):
    """Erasure is for candidates; a staff account gets 403."""
    response = client.post(
        "/api/v1/me/deletion", json={"password": PASSWORD}, headers=world["headers"]["operator"]
    )
    assert response.status_code == 403


def test_erasure_page_asks_for_password_and_confirmation(app, client, make_candidate):
    """The page refuses without the tick, erases with it and signs the candidate out."""
    candidate = make_candidate()
    client.post("/login", data={"email": candidate.email, "password": PASSWORD})
    unticked = client.post("/my-data/delete", data={"password": PASSWORD})
    assert unticked.status_code == 422
    with app.app_context():
        assert db.session.get(User, candidate.id).erased_at is None
    done = client.post("/my-data/delete", data={"password": PASSWORD, "confirm": "y"})
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    assert client.get("/my-data").status_code == 302  # signed out
    with app.app_context():
        assert db.session.get(User, candidate.id).erased_at is not None


# ---- retention ----------------------------------------------------------------------------


def test_retention_sweep_erases_what_outlived_its_period(app, client, clock, history):
    """Practice answers, photos on no certificate and verification rows older than their
    periods are erased by the scheduler; certificate photos stay; a rerun does nothing."""
    client.get(f"/api/v1/certificates/{history['number']}", query_string={"date_of_birth": BORN})
    sweep = SWEEPS["apply_retention"]
    with app.app_context():
        assert sweep(db.session, clock()) == 0  # nothing is old enough yet
    clock.advance(days=app.config["RETENTION_PHOTOS_DAYS"] + 1)
    with app.app_context():
        assert sweep(db.session, clock()) == 1  # the photo on no certificate
        certificate = db.session.scalar(select(Certificate))
        assert db.session.scalars(select(CandidatePhoto.id)).all() == [certificate.photo_id]
    clock.advance(days=app.config["RETENTION_PRACTICE_DAYS"])
    with app.app_context():
        erased = sweep(db.session, clock())
        assert erased >= 2  # the practice attempt and the verification rows
        assert db.session.scalar(select(func.count()).select_from(Verification)) == 0
        practice_answers = db.session.scalar(
            select(func.count(Response.value))
            .join(AttemptItem, AttemptItem.id == Response.attempt_item_id)
            .where(AttemptItem.attempt_id == history["practice_id"])
        )
        assert practice_answers == 0
        assert db.session.get(Attempt, history["practice_id"]).result is not None
        assert sweep(db.session, clock()) == 0
        reports = run_cycle(db.session, clock)
        assert {r.name: r.errors for r in reports}["apply_retention"] == 0


# ---- photos -------------------------------------------------------------------------------


def test_photos_are_served_only_to_owner_and_staff_of_the_centre(
    app, client, clock, world, history, make_candidate, make_staff, auth_headers
):
    """A check-in photo goes to its owner, the assigned proctor, the centre's operators
    and admins; another candidate, an unassigned proctor, an operator of another centre
    and an anonymous client get nothing (404, or 401 without credentials). Verifiers get
    the certificate's photo by number and date of birth or the signed token only."""
    elsewhere = make_staff(Role.OPERATOR)
    with app.app_context():
        certificate = db.session.scalar(select(Certificate))
        photo_id, token = certificate.photo_id, certificate.token
        other_centre = Centre(
            code="SAM",
            name="Samarkand",
            city="Samarkand",
            address="1",
            timezone="Asia/Tashkent",
            created_at=clock(),
        )
        db.session.add(other_centre)
        db.session.flush()
        db.session.add(CentreStaff(centre_id=other_centre.id, user_id=elsewhere.id))
        db.session.commit()
    url = f"/api/v1/photos/{photo_id}"
    allowed = {
        "owner": history["headers"],
        "proctor": world["headers"]["proctor"],
        "operator": world["headers"]["operator"],
        "admin": auth_headers(make_staff(Role.ADMIN)),
    }
    refused = {
        "other candidate": auth_headers(make_candidate()),
        "unassigned proctor": auth_headers(make_staff(Role.PROCTOR)),
        "operator elsewhere": auth_headers(elsewhere),
    }
    for who, headers in allowed.items():
        response = client.get(url, headers=headers)
        assert response.status_code == 200 and response.mimetype == "image/jpeg", who
        assert "no-store" in response.headers["Cache-Control"]
    for who, headers in refused.items():
        assert client.get(url, headers=headers).status_code == 404, who
    assert client.get("/api/v1/photos/999999", headers=allowed["admin"]).status_code == 404
    assert client.get(url).status_code == 401
    by_number = f"/api/v1/certificates/{history['number']}/photo"
    assert client.get(by_number, query_string={"date_of_birth": BORN}).status_code == 200
    assert client.get(by_number, query_string={"date_of_birth": "1998-05-18"}).status_code == 404
    assert client.get("/verify/photo", query_string={"t": token}).status_code == 200
    assert client.get("/verify/photo", query_string={"t": token[:-4] + "AAAA"}).status_code == 404


def test_verify_page_shows_the_photo_without_the_date_of_birth_in_its_url(client, history):
    """After a check by number and date of birth, the page's photo address carries a
    short-lived grant, not the date of birth; a forged grant gets nothing."""
    page = client.post("/verify", data={"number": history["number"], "date_of_birth": BORN})
    assert page.status_code == 200
    (source,) = re.findall(r'<img src="([^"]+)"', page.text)
    assert BORN.isoformat() not in source and "date_of_birth" not in source
    assert "/verify/photo?g=" in source
    assert client.get(html.unescape(source)).status_code == 200
    assert client.get("/verify/photo", query_string={"g": "forged.grant"}).status_code == 404


# ---- logs and URLs ------------------------------------------------------------------------


def test_logs_never_hold_id_numbers_emails_or_dates_of_birth(
    app, client, clock, world, caplog, auth_headers
):
    """Registration, booking, a check-in with a wrong ID number and a verification with a
    wrong date of birth log nothing personal, even with SQL logging switched on."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    email, born, document, typed = "Log.Test@Example.com", "1997-02-03", "LG4455667", "LG4455668"
    registered = client.post(
        "/api/v1/auth/register",
        json={
            **REGISTRATION,
            "email": email,
            "password": PASSWORD,
            "date_of_birth": born,
            "id_document_number": document,
        },
    )
    assert registered.status_code == 201
    client.post(
        "/register",
        data={
            **REGISTRATION,
            "email": "page." + email,
            "confirm": REGISTRATION["password"],
            "date_of_birth": born,
            "id_document_number": document,
            "consent": "y",
        },
    )
    with app.app_context():
        candidate = db.session.scalar(select(User).where(User.email == email.lower()))
    headers = auth_headers(candidate)
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    seat = book(client, clock, session_id, candidate, headers)
    clock.current = NEXT_WEEK - dt.timedelta(minutes=30)
    refused = client.post(
        f"/api/v1/bookings/{seat.booking_id}/check-in",
        json={"id_document_number": typed},
        headers=world["headers"]["proctor"],
    )
    assert refused.status_code == 422 and refused.json["error"]["code"] == "id_mismatch"
    lookup = client.get(
        "/api/v1/certificates/JP-00000-00000-00000", query_string={"date_of_birth": born}
    )
    assert lookup.status_code == 404
    client.post("/verify", data={"number": "JP-00000-00000-00000", "date_of_birth": born})
    logging.getLogger("werkzeug").info(
        '127.0.0.1 - - "%s" 404 -',
        f"GET /api/v1/certificates/JP-1?date_of_birth={born}&t=eyJ.{email} HTTP/1.1",
    )
    assert caplog.records, "nothing was captured: the test would prove nothing"
    text = caplog.text
    for personal in (document, typed, email, email.lower(), born, "03.02.1997"):
        assert personal not in text, personal
    assert "date_of_birth=[redacted]" in text


def test_redaction_keeps_harmless_parameters():
    """Only sensitive query parameters are redacted."""
    line = "GET /verify?t=abc.def&lang=ru&date_of_birth=1990-01-01&days=30 HTTP/1.1"
    assert (
        redact(line) == "GET /verify?t=[redacted]&lang=ru&date_of_birth=[redacted]&days=30 HTTP/1.1"
    )
