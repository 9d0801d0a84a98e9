"""Certificates in the app: issued on release, verified publicly and offline, revoked,
re-issued after a re-score, never for voided or practice attempts; sharing, badges,
employers' batch checks and the rate limit."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from sqlalchemy import event, func, select, text

from certificates import codes, links, signing
from certificates.verify import verify_document
from testing_center.accounts.models import Role, User
from testing_center.attempts.services import rescore_attempts
from testing_center.certification import services as certs
from testing_center.certification.models import Certificate, Verification
from testing_center.extensions import db
from testing_center.operations.models import ExamSession, Notification
from testing_center.operations.scheduler import run_cycle
from testing_center.privacy.logs import redact
from testing_center.psychometrics.services import correct_item

from .operations_setup import EXAM, NEXT_WEEK, schedule
from .test_certificate_package import decode_qr

BORN = dt.date(1998, 5, 17)


def photo_base64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (300, 400), (180, 150, 120)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def sit(app, client, world, clock, make_candidate, auth_headers):
    """Factory: a candidate books, is checked in with a photo, takes the exam (answers
    A to the first ``right`` items) and finishes. Returns (headers, attempt id)."""
    created = schedule(client, world, NEXT_WEEK)
    proctor = world["headers"]["proctor"]

    def take(right: int = 4, dob: dt.date = BORN) -> tuple[dict, str, int]:
        clock.current = START_OF_BOOKING
        candidate = make_candidate(date_of_birth=dob, full_name="Dilnoza Oʻrinboyeva")
        headers = auth_headers(candidate)
        booking = client.post(f"/api/v1/sessions/{created['id']}/bookings", headers=headers).json
        clock.current = NEXT_WEEK - dt.timedelta(minutes=30)
        admitted = client.post(
            f"/api/v1/bookings/{booking['booking_id']}/check-in",
            json={
                "id_document_number": candidate_id_number(app, candidate.id),
                "photo": photo_base64(),
            },
            headers=proctor,
        )
        assert admitted.status_code == 200, admitted.json
        clock.current = NEXT_WEEK
        with app.app_context():
            exam_session = db.session.get(ExamSession, created["id"])
            if exam_session.status == "published":
                exam_session.status = "open"
                db.session.commit()
        state = client.post(
            "/api/v1/attempts", json={"booking_id": booking["booking_id"]}, headers=headers
        ).json
        items = [item for section in state["sections"] for item in section["items"]]
        for n, item in enumerate(items):
            client.put(
                f"/api/v1/attempts/{state['id']}/responses/{item['ref']}",
                json={"response": "A" if n < right else "B", "client_seq": 1},
                headers=headers,
            )
        client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers)
        return headers, state["id"], created["id"]

    return take


START_OF_BOOKING = NEXT_WEEK - dt.timedelta(days=6)


def candidate_id_number(app, user_id: int) -> str:
    from testing_center.accounts.models import CandidateProfile

    with app.app_context():
        return db.session.get(CandidateProfile, user_id).id_document_number


def release(app, clock, session_id: int) -> None:
    """Close the session, release its results and let the scheduler issue certificates."""
    with app.app_context():
        exam_session = db.session.get(ExamSession, session_id)
        exam_session.status = "closed"
        exam_session.results_release_at = clock()
        db.session.commit()
        run_cycle(db.session, clock)


def test_released_result_gets_a_certificate_that_verifies(app, client, clock, sit):
    headers, attempt_id, session_id = sit(right=3)
    before = client.get(f"/api/v1/attempts/{attempt_id}/result", headers=headers).json
    assert not before["released"] and before["certificate_number"] is None
    assert (
        client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).status_code
        == 404
    )
    release(app, clock, session_id)
    result = client.get(f"/api/v1/attempts/{attempt_id}/result", headers=headers).json
    number = result["certificate_number"]
    assert result["released"] and number.startswith("JP-")
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(pdf.data)).pages[0].extract_text()
    assert number in text and "Dilnoza Oʻrinboyeva" in text
    jwks = client.get("/api/v1/certificates/keys").json
    checked = verify_document(pdf.data, jwks, clock())
    assert checked.is_valid and checked.claims.number == number
    assert checked.claims.total == result["percent"]  # a percent-correct exam: 0-100
    with app.app_context():  # issuing again changes nothing
        run_cycle(db.session, clock)
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 1


def test_public_lookup_needs_the_date_of_birth(app, client, clock, sit):
    _headers, _attempt_id, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
    found = client.get(f"/api/v1/certificates/{number}", query_string={"date_of_birth": BORN})
    assert found.status_code == 200 and found.json["status"] == "valid"
    assert found.json["full_name"] == "Dilnoza Oʻrinboyeva" and found.json["has_photo"]
    typed = number.lower().replace("-", " ")
    assert (
        client.get(
            f"/api/v1/certificates/{typed}", query_string={"date_of_birth": BORN}
        ).status_code
        == 200
    )
    wrong_dob = client.get(
        f"/api/v1/certificates/{number}", query_string={"date_of_birth": "1998-05-18"}
    )
    unknown = client.get(
        "/api/v1/certificates/JP-00000-00000-00000", query_string={"date_of_birth": BORN}
    )
    assert wrong_dob.status_code == unknown.status_code == 404
    assert wrong_dob.json == unknown.json
    photo = client.get(f"/api/v1/certificates/{number}/photo", query_string={"date_of_birth": BORN})
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    with app.app_context():
        outcomes = db.session.scalars(select(Verification.outcome)).all()
        assert outcomes.count("not_found") == 2 and outcomes.count("valid") >= 2
        assert all(
            c is None or len(c) == 40 for c in db.session.scalars(select(Verification.client))
        )


def test_verification_is_rate_limited(app, client, clock, sit):
    app.config["VERIFY_RATE_LIMIT"] = 3
    codes = [
        client.get(
            "/api/v1/certificates/JP-00000-00000-00000", query_string={"date_of_birth": BORN}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [404, 404, 404, 429]
    clock.advance(seconds=61)
    again = client.get(
        "/api/v1/certificates/JP-00000-00000-00000", query_string={"date_of_birth": BORN}
    )
    assert again.status_code == 404


def test_revoked_certificate_shows_revoked(app, client, clock, sit, world, auth_headers):
    headers, _attempt_id, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
    refused = client.post(
        f"/api/v1/certificates/{number}/revoke",
        json={"category": "misconduct", "reason": "impersonation found on video"},
        headers=headers,
    )
    assert refused.status_code == 403
    stale = client.post(  # the operator signed in a week ago: give the password again
        f"/api/v1/certificates/{number}/revoke",
        json={"category": "misconduct", "reason": "impersonation found on video"},
        headers=world["headers"]["operator"],
    )
    assert stale.status_code == 401
    assert stale.json["error"]["code"] == "reauthentication_required"
    revoked = client.post(
        f"/api/v1/certificates/{number}/revoke",
        json={"category": "misconduct", "reason": "impersonation found on video"},
        headers=auth_headers(world["operator"]),
    )
    assert revoked.status_code == 200 and revoked.json["status"] == "revoked"
    shown = client.get(f"/api/v1/certificates/{number}", query_string={"date_of_birth": BORN}).json
    assert shown["status"] == "revoked" and shown["revocation_reason"] == "misconduct"
    page = client.get(f"/verify?t={revoked_token(app)}")
    assert "REVOKED" in page.text
    with app.app_context():
        assert "certificate_revoked" in db.session.scalars(select(Notification.kind)).all()


def revoked_token(app) -> str:
    with app.app_context():
        return db.session.scalar(select(Certificate.token))


def test_rescore_reissues_and_supersedes(app, client, clock, sit, make_staff):
    headers, attempt_id, session_id = sit(right=2)
    release(app, clock, session_id)
    with app.app_context():
        old = db.session.scalar(select(Certificate))
        old_number, old_total = old.number, old.facts["total"]
        correct_item(
            db.session,
            ref="ops-3",
            version=None,
            action="credit_all",
            answer_key=None,
            reason="ambiguous item",
            actor=None,
            now=clock(),
        )
        rescore_attempts(db.session, reason="ambiguous item", now=clock())
        db.session.commit()
        run_cycle(db.session, clock)
        new = db.session.scalar(select(Certificate).where(Certificate.status == "valid"))
        assert new.number != old_number and new.facts["total"] > old_total
    old_view = client.get(
        f"/api/v1/certificates/{old_number}", query_string={"date_of_birth": BORN}
    ).json
    assert old_view["status"] == "superseded" and old_view["superseded_by"] == new.number
    result = client.get(f"/api/v1/attempts/{attempt_id}/result", headers=headers).json
    assert result["certificate_number"] == new.number
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    assert verify_document(pdf, client.get("/api/v1/certificates/keys").json, clock()).is_valid


def test_void_and_practice_get_no_certificate(
    app, client, clock, sit, world, make_candidate, auth_headers
):
    headers, attempt_id, session_id = sit()
    voided = client.post(
        f"/api/v1/attempts/{attempt_id}/void",
        json={"reason": "phone"},
        headers=world["headers"]["proctor"],
    )
    assert voided.status_code == 200
    release(app, clock, session_id)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Certificate)) == 0
    assert (
        client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).status_code
        == 404
    )
    practice_headers = auth_headers(make_candidate())
    state = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=practice_headers).json
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=practice_headers)
    report = client.get(f"/api/v1/attempts/{state['id']}/certificate.pdf", headers=practice_headers)
    assert report.status_code == 200
    assert "PRACTICE" in PdfReader(io.BytesIO(report.data)).pages[0].extract_text()
    assert verify_document(report.data, {"keys": []}, clock()).status == "invalid"


def test_share_link_badge_and_verify_page(app, client, clock, sit, make_candidate, auth_headers):
    headers, _attempt_id, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        certificate = db.session.scalar(select(Certificate))
        number, token = certificate.number, certificate.token
    qr_page = client.get("/verify", query_string={"t": token})
    assert (
        qr_page.status_code == 200
        and "Valid certificate" in qr_page.text
        and number in qr_page.text
    )
    forged = client.get("/verify", query_string={"t": token[:-4] + "AAAA"})
    assert "NOT genuine" in forged.text
    form = client.post("/verify", data={"number": number, "date_of_birth": BORN.isoformat()})
    assert form.status_code == 200 and "Valid certificate" in form.text
    wrong = client.post("/verify", data={"number": number, "date_of_birth": "2001-01-01"})
    assert wrong.status_code == 404 and "No certificate matches" in wrong.text

    someone = auth_headers(make_candidate())
    assert (
        client.post(f"/api/v1/certificates/{number}/share", json={}, headers=someone).status_code
        == 404
    )
    shared = client.post(f"/api/v1/certificates/{number}/share", json={"days": 7}, headers=headers)
    assert shared.status_code == 201
    path = shared.json["url"].split("127.0.0.1:5000", 1)[1]
    assert "Valid certificate" in client.get(path).text
    clock.advance(days=8)
    assert client.get(path).status_code == 404

    badge = client.get(f"/api/v1/certificates/{number}/badge", headers=headers).json
    assert "OpenBadgeCredential" in badge["credential"]["type"]
    jwks = client.get("/api/v1/certificates/keys").json
    verified = signing.verify(badge["jwt"], jwks, clock(), typ="JWT")
    assert verified.payload["sub"]


def test_holder_withdraws_a_share_link_through_the_api(
    app, client, clock, sit, make_candidate, auth_headers
):
    """The holder lists their live links and withdraws one; it then answers 404 like an
    unknown link. Another candidate can neither list nor withdraw it (404)."""
    headers, _attempt_id, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
    shared = client.post(f"/api/v1/certificates/{number}/share", json={"days": 7}, headers=headers)
    token, path = shared.json["token"], shared.json["url"].split("127.0.0.1:5000", 1)[1]
    links = f"/api/v1/certificates/{number}/share"
    withdraw = f"/api/v1/certificates/{number}/share/withdraw"
    assert [link["token"] for link in client.get(links, headers=headers).json] == [token]
    someone = auth_headers(make_candidate())
    assert client.get(links, headers=someone).status_code == 404
    assert client.post(withdraw, json={"token": token}, headers=someone).status_code == 404
    assert client.get(path).status_code == 200
    assert client.post(withdraw, json={"token": token}, headers=headers).status_code == 204
    assert client.get(path).status_code == 404
    assert client.get(links, headers=headers).json == []
    again = client.post(withdraw, json={"token": token}, headers=headers)
    assert again.status_code == 404 and again.json["error"]["code"] == "share_link_not_found"


def test_employer_checks_many_at_once(app, client, clock, sit, make_staff, auth_headers):
    _headers, _attempt_id, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
    employer = auth_headers(make_staff(Role.EMPLOYER))
    checked = client.post(
        "/api/v1/employer/verifications",
        json={
            "items": [
                {"number": number, "date_of_birth": BORN.isoformat()},
                {"number": number, "date_of_birth": "1990-01-01"},
                {"number": "JP-12345", "date_of_birth": BORN.isoformat()},
            ]
        },
        headers=employer,
    )
    assert checked.status_code == 201, checked.json
    assert [r["status"] for r in checked.json["results"]] == ["valid", "not_found", "not_found"]
    history = client.get("/api/v1/employer/verifications", headers=employer).json
    assert history[0]["batch"] == checked.json["batch"] and history[0]["count"] == 3
    report = client.get(
        f"/api/v1/employer/verifications/{checked.json['batch']}.csv", headers=employer
    )
    lines = report.text.strip().splitlines()
    assert lines[0].startswith("number,status") and lines[1].startswith(f"{number},valid")
    assert lines[3].startswith("JP-12345,not_found")
    other = auth_headers(make_staff(Role.EMPLOYER))
    assert (
        client.get(
            f"/api/v1/employer/verifications/{checked.json['batch']}.csv", headers=other
        ).status_code
        == 404
    )


def test_cli_verifies_a_pdf_offline(app, client, clock, sit, runner, tmp_path):
    headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    (tmp_path / "c.pdf").write_bytes(pdf)
    (tmp_path / "keys.json").write_text(json.dumps(client.get("/api/v1/certificates/keys").json))
    ok = runner.invoke(
        args=[
            "certificates",
            "verify",
            str(tmp_path / "c.pdf"),
            "--jwks",
            str(tmp_path / "keys.json"),
        ]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["status"] == "valid"
    with app.app_context():
        token = db.session.scalar(select(Certificate.token))
    tampered = token[:-6] + ("A" * 6 if not token.endswith("AAAAAA") else "B" * 6)
    bad = runner.invoke(args=["certificates", "verify", tampered])
    assert bad.exit_code == 1 and '"status": "invalid"' in bad.output
    rendered = runner.invoke(args=["certificates", "render", "--out", str(tmp_path / "all")])
    assert rendered.exit_code == 0 and len(list((tmp_path / "all").glob("*.pdf"))) == 1


def test_cli_checks_a_qr_codes_short_link(app, client, clock, sit, runner):
    """The short link's signature is checked offline; a changed number is not genuine."""
    headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    link = "http://127.0.0.1:5000" + qr_path(pdf)
    ok = runner.invoke(args=["certificates", "verify", link, "--online", "https://tc.example"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
    checked = json.loads(ok.output.split("status online:")[0])
    assert checked == {**checked, "number": number, "status": "genuine link"}
    assert "status online: see https://tc.example/verify?n=" in ok.output
    # rebuilt from the parsed link: a check symbol such as "*" or "=" is %-encoded in it
    signature = parse_qs(urlsplit(link).query)["s"][0]
    changed = number[:-1] + ("A" if number[-1] != "A" else "B")
    other = links.verification_link("http://127.0.0.1:5000", changed, signature)
    forged = runner.invoke(args=["certificates", "verify", other])
    assert forged.exit_code == 1, forged.output
    assert json.loads(forged.output) == {**json.loads(forged.output), "number": changed}
    assert json.loads(forged.output)["status"] == "invalid"


def qr_path(pdf: bytes) -> str:
    """The path and query of the address in a certificate's QR code."""
    link = decode_qr(pdf)
    assert link.startswith("http://127.0.0.1:5000/verify?n="), link
    return link.split("127.0.0.1:5000", 1)[1]


def test_the_qr_code_opens_the_online_record(app, client, clock, sit):
    """The QR code's short link (number and its signature) shows the certificate's status,
    holder and photo, and the check is logged like a typed one."""
    headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    shown = client.get(qr_path(pdf))
    assert shown.status_code == 200 and "Valid certificate" in shown.text
    assert "Dilnoza Oʻrinboyeva" in shown.text and "/verify/photo?g=" in shown.text
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
        assert db.session.scalars(select(Verification.channel)).all() == ["qr"]
    assert number in shown.text


def test_a_changed_qr_link_is_not_genuine(app, client, clock, sit):
    """Another number, a changed signature or a key that is not ours: refused like a
    forged token, nothing shown, nothing logged."""
    headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    path = qr_path(pdf)
    query = parse_qs(urlsplit(path).query)
    number, signature = query["n"][0], query["s"][0]
    other = codes.new_certificate_number()
    stranger = signing.generate_key(clock() - dt.timedelta(days=1))
    changed = ("B" if signature[0] == "A" else "A") + signature[1:]
    for n, s in (
        (other, signature),
        (number, changed),
        (number, links.sign_link(number, stranger)),
        (number, signature[:20]),
    ):
        refused = client.get("/verify", query_string={"n": n, "s": s})
        assert refused.status_code == 200 and "NOT genuine" in refused.text
        assert "Valid certificate" not in refused.text and "Dilnoza" not in refused.text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Verification)) == 0


def test_the_qr_link_of_a_revoked_certificate_shows_it_revoked(app, client, clock, sit, world):
    headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    with app.app_context():
        certs.revoke(
            db.session,
            number=db.session.scalar(select(Certificate.number)),
            category="misconduct",
            reason="impersonation found on video",
            actor=db.session.get(User, world["operator"].id),
            now=clock(),
        )
        db.session.commit()
    shown = client.get(qr_path(pdf))
    assert "REVOKED" in shown.text and "Valid certificate" not in shown.text


def test_an_uploaded_pdf_is_checked_by_the_token_in_its_metadata(app, client, clock, sit):
    """The upload check reads the signed token from the metadata, not the QR code: the
    same page without its metadata carries no signature."""
    headers, attempt_id, session_id = sit()
    release(app, clock, session_id)
    pdf = client.get(f"/api/v1/attempts/{attempt_id}/certificate.pdf", headers=headers).data
    checked = client.post("/verify", data={"document": (io.BytesIO(pdf), "c.pdf")})
    assert checked.status_code == 200 and "Valid certificate" in checked.text
    writer = PdfWriter()
    writer.add_page(PdfReader(io.BytesIO(pdf)).pages[0])
    stripped = io.BytesIO()
    writer.write(stripped)
    assert decode_qr(stripped.getvalue()) == decode_qr(pdf)  # the QR code is still there
    refused = client.post("/verify", data={"document": (io.BytesIO(stripped.getvalue()), "c.pdf")})
    assert "carries no signature" in refused.text and "Valid certificate" not in refused.text


def test_the_qr_link_signature_stays_out_of_request_logs():
    """Whoever has the signature sees the holder's record: access logs redact it."""
    line = "GET /verify?n=JP-4N7QX-B2K9M-TW3D0&s=q1w2_e3-r4 HTTP/1.1"
    assert redact(line) == "GET /verify?n=JP-4N7QX-B2K9M-TW3D0&s=[redacted] HTTP/1.1"


@pytest.mark.parametrize("window", ["first", "again"])
def test_a_lookup_commits_without_waiting_for_the_disk(app, client, clock, sit, window):
    """A public lookup writes only its count and log row, the count in one statement
    whether or not it is the client's first in the window: on PostgreSQL its transaction
    sets synchronous_commit off (a crash may lose the last of those rows), and the
    setting ends with that transaction."""
    _headers, _attempt_id, session_id = sit()
    release(app, clock, session_id)
    with app.app_context():
        number = db.session.scalar(select(Certificate.number))
        engine = db.engine
        is_postgresql = engine.dialect.name == "postgresql"
    lookup = {"date_of_birth": BORN}
    client.get(f"/api/v1/certificates/{number}", query_string=lookup)
    if window == "first":
        clock.advance(seconds=app.config["VERIFY_RATE_WINDOW_SECONDS"])
    statements: list[str] = []

    def record(_connection, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        found = client.get(f"/api/v1/certificates/{number}", query_string=lookup)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert found.status_code == 200 and found.json["number"] == number
    assert ("SET LOCAL synchronous_commit = off" in statements) is is_postgresql
    assert len(statements) == 3 + is_postgresql  # count, read, log row: no re-read
    assert not any(statement.startswith("SAVEPOINT") for statement in statements)
    if is_postgresql:
        with app.app_context():
            assert db.session.scalar(text("SHOW synchronous_commit")) == "on"
