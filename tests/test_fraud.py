"""Fraud signals (issue 9): duplicate ID document numbers, phone numbers and photos across
accounts, identical wrong answers of neighbouring seats, anomalous pass rates."""

from __future__ import annotations

import datetime as dt
import json
import random
import re

import pytest
from PIL import Image, ImageEnhance
from scipy.stats import binom
from sqlalchemy import select

from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.services import import_bundles
from testing_center.accounts.models import CandidateProfile, Role
from testing_center.attempts.models import Attempt
from testing_center.extensions import db
from testing_center.operations import imagehash
from testing_center.operations.fraud import (
    neighbours,
    poisson_binomial_tail,
    seat_position,
)
from testing_center.operations.models import (
    Booking,
    CandidatePhoto,
    Centre,
    CentreStaff,
    ExamSession,
)

from .conftest import PASSWORD
from .operations_setup import NEXT_WEEK, schedule
from .sittings import b64, book, check_in, face, jpeg, open_session, take

FRAUD_EXAM = "fraud-exam"
ITEMS = 20
REPORT = "/api/v1/reports/fraud"


def signals(client, headers, kind: str | None = None) -> list[dict]:
    response = client.get(REPORT, headers=headers)
    assert response.status_code == 200, response.json
    found = response.json["signals"]
    return [s for s in found if kind is None or s["kind"] == kind]


# ---- pure parts ---------------------------------------------------------------------------


def test_poisson_binomial_tail_agrees_with_the_binomial():
    """With equal probabilities the tail is the binomial one (scipy)."""
    for n, p, k in [(10, 1 / 3, 10), (20, 0.36, 9), (15, 0.5, 0), (8, 0.2, 3)]:
        assert poisson_binomial_tail(k, [p] * n) == pytest.approx(binom.sf(k - 1, n, p))


def test_near_pairs_finds_exactly_the_close_hashes():
    """The pigeonhole search finds every pair within the distance, as brute force does."""
    chooser = random.Random(7)  # noqa: S311 - test data
    hashes = {n: chooser.getrandbits(64) for n in range(300)}
    for n in range(300, 340):  # near copies: a few bits flipped
        flipped = hashes[n - 300]
        for bit in chooser.sample(range(64), chooser.randrange(0, 9)):
            flipped ^= 1 << bit
        hashes[n] = flipped
    as_text = {n: f"{h:016x}" for n, h in hashes.items()}
    for limit in (0, 3, 6):
        brute = sorted(
            (a, b, (hashes[a] ^ hashes[b]).bit_count())
            for a in hashes
            for b in hashes
            if a < b and (hashes[a] ^ hashes[b]).bit_count() <= limit
        )
        assert imagehash.near_pairs(as_text, limit) == brute


def test_difference_hash_matches_copies_not_other_photos():
    """A re-encoded, resized, brightened copy stays within a few bits; another face does
    not; a featureless picture is not compared at all."""
    original = face(1)
    copy = ImageEnhance.Brightness(original.resize((240, 320))).enhance(1.15)
    first = imagehash.difference_hash(jpeg(original))
    assert imagehash.distance(first, imagehash.difference_hash(jpeg(copy))) <= 6
    assert imagehash.distance(first, imagehash.difference_hash(jpeg(face(2)))) > 12
    blank = imagehash.difference_hash(jpeg(Image.new("RGB", (300, 400), (180, 150, 120))))
    assert not imagehash.is_comparable(blank)
    assert imagehash.difference_hash(b"not an image") is None


def test_neighbours_are_the_same_row_one_seat_apart():
    """ "A1"-"A2" are neighbours; "A1"-"B1", "A1"-"A3" and unlabelled seats are not."""
    assert seat_position("a-12") == ("A", 12) and seat_position("C 3") == ("C", 3)
    assert seat_position("12") is None and seat_position(None) is None

    class Seated:
        def __init__(self, seat):
            self.seat = seat

    seated = [Seated(s) for s in ("A1", "A2", "A4", "B1", "b2", "7", None, "A5")]
    pairs = {(a.seat, b.seat) for a, b in neighbours(seated)}
    assert pairs == {("A1", "A2"), ("A4", "A5"), ("B1", "b2")}


# ---- duplicate identities -----------------------------------------------------------------


@pytest.fixture
def duplicates(app, client, clock, world, make_candidate, auth_headers):
    """Two accounts with one ID document number (typed differently), two with one phone
    number, one ordinary candidate: all booked into a Tashkent session."""
    people = {
        "id_a": make_candidate(id_document_number="AB 1234567"),
        "id_b": make_candidate(id_document_number="ab-1234567"),
        "phone_a": make_candidate(phone_number="+998 90 000 11 22"),
        "phone_b": make_candidate(phone_number="00998900001122"),
        "ordinary": make_candidate(phone_number="+998 90 555 44 33"),
    }
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    seats = {
        name: book(client, clock, session_id, person, auth_headers(person))
        for name, person in people.items()
    }
    return {"people": people, "seats": seats, "session_id": session_id}


def test_shared_id_document_and_phone_numbers_are_flagged(client, world, duplicates):
    """One ID number or one phone number on several accounts is a signal naming the
    accounts and their admission numbers, with the number masked."""
    people, seats = duplicates["people"], duplicates["seats"]
    operator = world["headers"]["operator"]
    (by_id,) = signals(client, operator, "duplicate_id_document")
    assert by_id["accounts"] == sorted([people["id_a"].id, people["id_b"].id])
    assert set(by_id["admission_numbers"]) == {
        seats["id_a"].admission_number,
        seats["id_b"].admission_number,
    }
    assert by_id["details"]["ending"] == "…4567" and "2 accounts" in by_id["why"]
    (by_phone,) = signals(client, operator, "duplicate_phone")
    assert by_phone["accounts"] == sorted([people["phone_a"].id, people["phone_b"].id])
    text = client.get(REPORT, headers=operator).text
    assert "AB1234567" not in text and "998900001122" not in text
    assert people["ordinary"].email not in text and "Candidate Number" not in text


def test_fraud_report_is_for_operators_of_the_centres_concerned(
    app, client, clock, world, duplicates, make_staff, auth_headers
):
    """Operators and admins see the report; an operator tied to another centre does not
    see this centre's signals; candidates and proctors are refused."""
    elsewhere, here = make_staff(Role.OPERATOR), make_staff(Role.OPERATOR)
    with app.app_context():
        samarkand = Centre(
            code="SAM",
            name="Samarkand Testing Centre",
            city="Samarkand",
            address="2 Registan Street",
            timezone="Asia/Tashkent",
            created_at=clock(),
        )
        db.session.add(samarkand)
        db.session.flush()
        tashkent = db.session.scalar(select(Centre.id).where(Centre.code == "TAS"))
        db.session.add(CentreStaff(centre_id=samarkand.id, user_id=elsewhere.id))
        db.session.add(CentreStaff(centre_id=tashkent, user_id=here.id))
        db.session.commit()
    assert len(signals(client, auth_headers(here))) == 2
    assert signals(client, auth_headers(elsewhere)) == []
    assert len(signals(client, auth_headers(make_staff(Role.ADMIN)))) == 2
    candidate = duplicates["seats"]["ordinary"].headers
    assert client.get(REPORT, headers=candidate).status_code == 403
    assert client.get(REPORT, headers=world["headers"]["proctor"]).status_code == 403
    assert client.get(REPORT).status_code == 401


def test_fraud_page_lists_the_signals(client, world, duplicates):
    """The operator's page at /staff/operations/fraud shows each signal and why."""
    client.post("/login", data={"email": world["operator"].email, "password": PASSWORD})
    page = client.get("/staff/operations/fraud?days=365")
    assert page.status_code == 200
    assert "…4567" in page.text and duplicates["seats"]["id_a"].admission_number in page.text
    assert "AB1234567" not in page.text


def test_same_photo_on_two_accounts_is_flagged(
    app, client, clock, world, make_candidate, auth_headers
):
    """Check-in photos get a difference hash; the same face photo (re-encoded, resized,
    brighter) on two accounts is flagged with both; other photos and blank ones are not."""
    session_id = schedule(client, world, NEXT_WEEK)["id"]
    original = face(11)
    brighter = ImageEnhance.Brightness(original.resize((270, 360))).enhance(1.1)
    photos = {
        "first": jpeg(original),
        "second": jpeg(brighter),
        "other": jpeg(face(12)),
        "blank_a": jpeg(Image.new("RGB", (300, 400), (200, 200, 200))),
        "blank_b": jpeg(Image.new("RGB", (300, 400), (120, 120, 120))),
    }
    people = {}
    for name, data in photos.items():
        person = make_candidate()
        seat = book(client, clock, session_id, person, auth_headers(person))
        with app.app_context():
            number = db.session.get(CandidateProfile, person.id).id_document_number
        check_in(client, clock, world, seat, number, photo=b64(data))
        people[name] = person
    with app.app_context():
        hashes = db.session.scalars(select(CandidatePhoto.image_hash)).all()
    assert all(re.fullmatch(r"[0-9a-f]{16}", h) for h in hashes)
    (same,) = signals(client, world["headers"]["operator"], "duplicate_photo")
    assert same["accounts"] == sorted([people["first"].id, people["second"].id])
    assert len(same["photos"]) == 2 and len(same["admission_numbers"]) == 2
    shown = client.get(f"/api/v1/photos/{same['photos'][0]}", headers=world["headers"]["operator"])
    assert shown.status_code == 200


# ---- neighbours' answers ------------------------------------------------------------------


@pytest.fixture
def fraud_exam(app, clock, world):
    """A proctored exam of 20 four-option items, key A, in a fixed order."""
    items = [
        {
            "ref": f"fr-{n:02d}",
            "type": "single_choice",
            "exam_family": "fraud",
            "level": "A2",
            "section": "all",
            "topic": "work",
            "stem": f"<p>問題 {n}</p>",
            "options": [{"id": k, "html": k} for k in "ABCD"],
            "key": "A",
        }
        for n in range(ITEMS)
    ]
    with app.app_context():
        import_bundles(
            db.session, [Bundle(items=items, origin="fraud-test")], status="approved", now=clock()
        )
        load_templates(
            db.session,
            [
                {
                    "code": FRAUD_EXAM,
                    "version": 1,
                    "title": {"en": "Fraud check"},
                    "modes": ["proctored"],
                    "clock": {"kind": "shared", "duration_seconds": 1800},
                    "shuffle": {"items": False, "options": False},
                    "sections": [
                        {
                            "code": "all",
                            "title": {"en": "All"},
                            "select": {"exam_family": "fraud", "section": "all", "count": ITEMS},
                        }
                    ],
                    "scoring": {"rule": "percent", "pass_percent": 60},
                }
            ],
            now=clock(),
        )
        db.session.commit()
    return FRAUD_EXAM


def number_of(item: dict) -> int:
    return int(re.search(r"問題 (\d+)", item["stem"]).group(1))


COPIED = "BCDBCDBCDB"  # the wrong answers on items 10-19
OTHER = "CDBCDBCDBC"  # different wrong answers on the same items


def answering(wrong: str):
    """Right on items 0-9, the given wrong answers on items 10-19."""
    return lambda item: "A" if number_of(item) < 10 else wrong[number_of(item) - 10]


def test_neighbours_with_the_same_wrong_answers_are_flagged(
    app, client, clock, world, fraud_exam, make_candidate, auth_headers
):
    """A1 and A2 share ten wrong answers: flagged, with a small p-value. A2 and A3 are
    neighbours with different wrong answers: not flagged. B1 answers like A1 but sits in
    another row: not a neighbour, not flagged."""
    session_id = schedule(client, world, NEXT_WEEK, exam_code=fraud_exam)["id"]
    plan = {"A1": COPIED, "A2": COPIED, "A3": OTHER, "B1": COPIED}
    seats = {}
    for label in plan:
        person = make_candidate()
        seats[label] = book(client, clock, session_id, person, auth_headers(person))
    for label, seat in seats.items():
        with app.app_context():
            number = db.session.get(CandidateProfile, seat.account.id).id_document_number
        check_in(client, clock, world, seat, number, seat=label)
    open_session(app, clock, session_id)
    for label, seat in seats.items():
        take(client, seat, answering(plan[label]))
    response = client.get(REPORT, headers=world["headers"]["operator"]).json
    assert response["tested"]["neighbour_pairs"] == 2  # A1-A2, A2-A3
    (pair,) = [s for s in response["signals"] if s["kind"] == "similar_answers"]
    assert pair["admission_numbers"] == [seats["A1"].admission_number, seats["A2"].admission_number]
    assert pair["sessions"] == [session_id]
    details = pair["details"]
    assert details["identical"] == details["both_wrong"] == 10
    # others' wrong answers per item: A3 and B1, one each, over 3 distractors (+1 each)
    expected = (2 / 5) ** 2 * 2 + (1 / 5) ** 2
    assert details["p_value"] == pytest.approx(expected**10)
    assert "A1" in pair["why"] and "A2" in pair["why"]


# ---- pass rates ---------------------------------------------------------------------------


def seat_results(app, clock, session_id: int, outcomes: list[bool], make_candidate) -> None:
    """Finished proctored attempts with the given pass/fail outcomes, written directly."""
    accounts = [make_candidate() for _ in outcomes]
    with app.app_context():
        exam_session = db.session.get(ExamSession, session_id)
        for n, (account, passed) in enumerate(zip(accounts, outcomes, strict=True)):
            booking = Booking(
                session_id=session_id,
                user_id=account.id,
                admission_number=f"T{session_id:03d}-{n:04d}",
                status="checked_in",
                booked_at=clock(),
                checked_in_at=exam_session.starts_at,
            )
            db.session.add(booking)
            db.session.flush()
            db.session.add(
                Attempt(
                    id=f"{session_id:04d}{n:028d}",
                    user_id=account.id,
                    template_id=exam_session.template_id,
                    mode="proctored",
                    status="finished",
                    seed=n,
                    started_at=exam_session.starts_at,
                    deadline_at=exam_session.starts_at + dt.timedelta(minutes=30),
                    finished_at=exam_session.starts_at + dt.timedelta(minutes=20),
                    result={"passed": passed, "total": 80 if passed else 30},
                    booking_id=booking.id,
                )
            )
        db.session.commit()


def test_sessions_and_centres_with_near_total_pass_rates_are_flagged(
    app, client, clock, world, make_candidate
):
    """A Tashkent session where 12 of 12 pass, against 8 of 24 at Samarkand, is flagged
    with its rate and binomial p-value; so is the centre; the ordinary sessions are not."""
    operator = world["headers"]["operator"]
    created = client.post(
        "/api/v1/centers",
        json={
            "code": "SAM",
            "name": "Samarkand Testing Centre",
            "city": "Samarkand",
            "address": "2 Registan Street",
            "timezone": "Asia/Tashkent",
        },
        headers=operator,
    )
    assert created.status_code == 201, created.json
    suspicious = schedule(client, world, NEXT_WEEK)["id"]
    ordinary = [
        schedule(client, world, NEXT_WEEK + dt.timedelta(days=d), center_code="SAM")["id"]
        for d in (1, 2)
    ]
    seat_results(app, clock, suspicious, [True] * 12, make_candidate)
    for session_id in ordinary:
        seat_results(app, clock, session_id, [True] * 4 + [False] * 8, make_candidate)
    clock.current = NEXT_WEEK + dt.timedelta(days=5)
    found = signals(client, operator)
    (session_signal,) = [s for s in found if s["kind"] == "session_pass_rate"]
    (centre_signal,) = [s for s in found if s["kind"] == "centre_pass_rate"]
    assert session_signal["sessions"] == [suspicious]
    assert centre_signal["centres"] == ["TAS"]
    baseline = (8 + 0.5) / (24 + 1)
    for signal in (session_signal, centre_signal):
        details = signal["details"]
        assert details["rate"] == 100 and details["attempts"] == 12
        assert details["baseline"] == pytest.approx(100 * baseline)
        assert details["p_value"] == pytest.approx(binom.sf(11, 12, baseline))
        assert "12 of 12" in signal["why"]
    report = client.get(REPORT, headers=operator).json
    assert report["tested"]["pass_rate_groups"] == 5  # three sessions, two centres
    narrow = client.get(REPORT, query_string={"days": 1}, headers=operator).json
    assert not [s for s in narrow["signals"] if s["kind"].endswith("pass_rate")]
    assert json.dumps(report).count("Candidate Number") == 0


def test_report_json_shape(client, world):
    """An empty world gives an empty list of signals, with the parameters used."""
    report = client.get(REPORT, headers=world["headers"]["operator"]).json
    assert report["signals"] == []
    assert set(report["parameters"]) >= {"days", "alpha", "min_attempts", "photo_max_distance"}
