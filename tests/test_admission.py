"""Admission tickets (PDF) through the API: who may download one, what it shows, that its
fonts are embedded, that its QR code is the admission number, and the candidate's photo.

PDFs are checked through extracted text, fonts and drawing operators, never bytes.
"""

from __future__ import annotations

import datetime as dt
import io
from collections import Counter

import pytest
from PIL import Image
from pypdf import PdfReader
from reportlab.graphics.barcode.qr import QrCodeWidget

from certificates import fonts
from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.services import import_bundles
from testing_center.accounts.models import Role, User
from testing_center.extensions import db
from testing_center.operations import admission
from testing_center.operations.models import CandidatePhoto, Centre

from .conftest import START

EXAM = "ticket-exam"
TITLE_JA = "日本語基礎テスト（模擬）"
TITLE_EN = "Basic Japanese test (mock)"
ADDRESS = "Amir Temur koʻchasi 1, Toshkent — Амир Темур кўчаси 1"
FULL_NAME = "Gʻulomova Oʻgʻiloy Ўлмасовна"
ID_NUMBER = "AB7654321"
NEXT_WEEK = START + dt.timedelta(days=7)  # Thursday 3 December, 09:00 UTC = 14:00 Tashkent
STANDARD_14 = {"Helvetica", "Times-Roman", "Courier", "Symbol", "ZapfDingbats"}

TEMPLATE = {
    "code": EXAM,
    "version": 1,
    "title": {"ja": TITLE_JA, "en": TITLE_EN},
    "modes": ["practice", "proctored"],
    "clock": {"kind": "shared", "duration_seconds": 1800},
    "shuffle": {"items": False, "options": False},
    "sections": [
        {
            "code": "all",
            "title": {"en": "All"},
            "select": {"exam_family": "ticket", "section": "all", "count": 2},
        }
    ],
    "scoring": {"rule": "percent", "pass_percent": 60},
}


def bundle() -> Bundle:
    return Bundle(
        items=[
            {
                "ref": f"ticket-{n}",
                "type": "single_choice",
                "exam_family": "ticket",
                "level": "A2",
                "section": "all",
                "topic": "work",
                "stem": f"<p>問題 {n}</p>",
                "options": [{"id": k, "html": k} for k in "ABC"],
                "key": "A",
            }
            for n in range(2)
        ],
        origin="admission-test",
    )


@pytest.fixture
def app_config():
    """Tokens that outlive the week between booking and the exam day."""
    return {"API_TOKEN_TTL_SECONDS": 30 * 24 * 3600}


@pytest.fixture
def world(app, client, clock, make_staff, auth_headers):
    """A proctored exam titled in Japanese and English, a Tashkent centre with room A."""
    with app.app_context():
        import_bundles(db.session, [bundle()], status="approved", now=clock())
        load_templates(db.session, [TEMPLATE], now=clock())
        db.session.commit()
    operator = auth_headers(make_staff(Role.OPERATOR))
    created = client.post(
        "/api/v1/centers",
        json={
            "code": "TAS",
            "name": "Tashkent Testing Centre",
            "city": "Tashkent",
            "address": ADDRESS,
            "timezone": "Asia/Tashkent",
        },
        headers=operator,
    )
    assert created.status_code == 201, created.json
    room = client.post(
        "/api/v1/centers/TAS/rooms", json={"name": "A", "seats": 30}, headers=operator
    )
    assert room.status_code == 201, room.json
    return {"operator": operator}


def schedule(client, world, starts_at: dt.datetime = NEXT_WEEK) -> int:
    response = client.post(
        "/api/v1/sessions",
        json={
            "exam_code": EXAM,
            "center_code": "TAS",
            "starts_at": starts_at.isoformat(),
            "capacity": 10,
            "room": "A",
        },
        headers=world["operator"],
    )
    assert response.status_code == 201, response.json
    return response.json["id"]


@pytest.fixture
def booked(client, world, make_candidate, auth_headers):
    """A candidate (named with Uzbek ʻ and Cyrillic Ў) holding a seat next week."""
    candidate = make_candidate(full_name=FULL_NAME, id_document_number=ID_NUMBER)
    headers = auth_headers(candidate)
    session_id = schedule(client, world)
    booking = client.post(f"/api/v1/sessions/{session_id}/bookings", headers=headers)
    assert booking.status_code == 201, booking.json
    return {"candidate": candidate, "headers": headers, "session_id": session_id, **booking.json}


def ticket_url(booking: dict) -> str:
    return f"/api/v1/bookings/{booking['booking_id']}/admission.pdf"


def download(client, booking: dict) -> PdfReader:
    response = client.get(ticket_url(booking), headers=booking["headers"])
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "application/pdf"
    return PdfReader(io.BytesIO(response.data))


def text_of(reader: PdfReader) -> str:
    """The text of every page, runs of white space (line ends) read as one space."""
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def test_the_ticket_shows_the_booking(client, booked):
    """One page: admission number, name, exam in Japanese and English, local time, centre."""
    reader = download(client, booked)
    assert len(reader.pages) == 1
    text = text_of(reader)
    for expected in (
        booked["admission_number"],
        FULL_NAME,
        "1999-01-01",
        TITLE_JA,
        TITLE_EN,
        "Tashkent Testing Centre",
        ADDRESS,
        "2026-12-03 14:00 +05 (Asia/Tashkent)",
        "Room",
    ):
        assert expected in text, expected


def test_the_id_document_number_is_masked(client, booked):
    """Only the last four characters of the ID document number are printed."""
    text = text_of(download(client, booked))
    assert "*****4321" in text
    assert ID_NUMBER not in text and "7654321" not in text


def test_the_rules_give_the_arrival_times(client, booked):
    """Arrive 15-30 minutes early (13:30-13:45 for a 14:00 start); refused after 14:00."""
    text = text_of(download(client, booked))
    assert "between 13:30 and 13:45" in text
    assert "no one is admitted after 14:00" in text
    assert "original ID document and this ticket" in text
    assert "Phones" in text


def test_rules_come_in_the_candidates_language_and_in_english(app, client, booked, monkeypatch):
    """A Russian-speaking candidate reads the rules in Russian, then again in English."""
    with app.app_context():
        db.session.get(User, booked["candidate"].id).locale = "ru"
        db.session.commit()
    english = admission.translate

    def fake_russian(message: str, locale: str, **params: str) -> str:
        text = english(message, "en", **params)
        return f"[ru] {text}" if locale == "ru" else text

    monkeypatch.setattr(admission, "translate", fake_russian)
    text = text_of(download(client, booked))
    assert "[ru] Admission ticket" in text
    assert "1. [ru] Arrive 15 to 30 minutes before the start: between 13:30" in text
    assert "1. Arrive 15 to 30 minutes before the start: between 13:30" in text
    assert "Узбекистан (UZ)" in text  # the nationality named in Russian


def test_an_english_ticket_prints_the_rules_once(client, booked):
    text = text_of(download(client, booked))
    assert text.count("Arrive 15 to 30 minutes") == 1
    assert "Uzbekistan (UZ)" in text


def test_only_the_owner_gets_the_ticket(client, booked, make_candidate, auth_headers):
    """Another candidate's request is answered as if the booking did not exist."""
    other = auth_headers(make_candidate())
    response = client.get(ticket_url(booked), headers=other)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "booking_not_found"
    assert client.get(ticket_url(booked)).status_code == 401


def test_a_moved_booking_has_no_ticket(client, world, booked):
    """After a reschedule the old booking's ticket is refused; the new one has a ticket."""
    later = schedule(client, world, NEXT_WEEK + dt.timedelta(days=1))
    moved = client.post(
        f"/api/v1/bookings/{booked['booking_id']}/reschedule",
        json={"session_id": later},
        headers=booked["headers"],
    )
    assert moved.status_code == 200, moved.json
    old = client.get(ticket_url(booked), headers=booked["headers"])
    assert old.status_code == 409 and old.json["error"]["code"] == "no_ticket"
    new = {**moved.json, "headers": booked["headers"]}
    assert "2026-12-04 14:00" in text_of(download(client, new))


def test_a_cancelled_booking_has_no_ticket(client, world, booked):
    cancelled = client.post(
        f"/api/v1/sessions/{booked['session_id']}/cancel",
        json={"reason": "power works"},
        headers=world["operator"],
    )
    assert cancelled.status_code == 200, cancelled.json
    response = client.get(ticket_url(booked), headers=booked["headers"])
    assert response.status_code == 409 and response.json["error"]["code"] == "no_ticket"


def test_every_font_is_embedded_truetype(client, booked):
    """No standard-14 font: each font carries its TrueType program (FontFile2)."""
    page = download(client, booked).pages[0]
    used = {}
    for font in page["/Resources"]["/Font"].values():
        font = font.get_object()
        name = str(font["/BaseFont"]).lstrip("/")
        assert name.split("+")[-1].split("-")[0] not in STANDARD_14, name
        assert font["/Subtype"] == "/TrueType", name
        descriptor = font["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, name
        used[name.split("+")[-1]] = font
    assert {"DejaVuSans", "DejaVuSans-Bold", "IPAexGothic"} <= set(used)


def qr_modules_drawn(page) -> set[tuple[int, int]]:
    """The dark modules of the QR code drawn on ``page``, read back from its rectangles.

    The QR code is drawn as runs of dark modules, each a filled rectangle one module
    high; they are the page's most common rectangle height.
    """
    rectangles = [
        [float(value) for value in operands]
        for operands, operator in page.get_contents().operations
        if operator == b"re"
    ]
    size = Counter(round(h, 3) for *_, h in rectangles).most_common(1)[0][0]
    runs = [r for r in rectangles if round(r[3], 3) == size]
    left = min(x for x, *_ in runs)
    top = max(y + h for x, y, w, h in runs)
    dark = set()
    for x, y, w, h in runs:
        row, column = round((top - y - h) / size), round((x - left) / size)
        dark.update((row, column + n) for n in range(round(w / size)))
    return dark


def qr_modules(value: str, level: str) -> set[tuple[int, int]]:
    code = QrCodeWidget(value, barLevel=level).qr
    code.make()
    return {(r, c) for r, row in enumerate(code.modules) for c, dark in enumerate(row) if dark}


def test_the_qr_code_is_the_admission_number(client, booked):
    """The drawn QR code is module for module the code of the admission number alone.

    No QR decoder is installed for the tests; the code is compared with ReportLab's own
    encoding of the number, at whichever error-correction level the ticket uses.
    """
    drawn = qr_modules_drawn(download(client, booked).pages[0])
    number = booked["admission_number"]
    assert any(drawn == qr_modules(number, level) for level in "LMQH")
    assert not any(drawn == qr_modules(number + " ", level) for level in "LMQH")


def photo_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (900, 1200), (180, 200, 230)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_the_photo_is_printed_when_there_is_one(app, client, clock, booked):
    """The newest photo is an image on the page; without one, an empty frame says why."""
    reader = download(client, booked)
    assert list(reader.pages[0].images) == []
    assert "Photo taken at check-in" in text_of(reader)
    with app.app_context():
        db.session.add(
            CandidatePhoto(
                user_id=booked["candidate"].id,
                mime_type="image/jpeg",
                data=photo_jpeg(),
                taken_at=clock(),
            )
        )
        db.session.commit()
    reader = download(client, booked)
    images = list(reader.pages[0].images)
    assert len(images) == 1
    assert images[0].image.height / images[0].image.width == pytest.approx(1200 / 900, 0.01)
    assert "Photo taken at check-in" not in text_of(reader)


def test_an_unreadable_photo_leaves_the_frame(app, client, clock, booked):
    with app.app_context():
        db.session.add(
            CandidatePhoto(
                user_id=booked["candidate"].id,
                mime_type="image/jpeg",
                data=b"not an image",
                taken_at=clock(),
            )
        )
        db.session.commit()
    reader = download(client, booked)
    assert list(reader.pages[0].images) == []
    assert "Photo taken at check-in" in text_of(reader)


def test_a_long_address_still_fits_one_page(app, client, booked):
    """The page shrinks to fit rather than spill onto a second page."""
    with app.app_context():
        centre = db.session.query(Centre).one()
        centre.address = ("Amir Temur koʻchasi, " * 24)[:500]
        db.session.commit()
    reader = download(client, booked)
    assert len(reader.pages) == 1
    assert "Amir Temur koʻchasi" in text_of(reader)


def test_each_character_goes_to_a_font_that_has_it():
    """Latin, Uzbek ʻ and Cyrillic Ў in DejaVu Sans; kana and kanji in IPAexGothic."""
    assert fonts.runs("Oʻzbek Ўлмас 日本語 N4") == [
        (fonts.SANS, "Oʻzbek Ўлмас "),
        (fonts.JAPANESE, "日本語 "),
        (fonts.SANS, "N4"),
    ]
    assert fonts.runs("受験", bold=True) == [(fonts.JAPANESE, "受験")]
    assert fonts.missing_characters("Gʻ Ғ ğ 試験 ก") == {"ก"}  # Thai
