"""Proctored sittings for the personal-data and fraud tests: candidates book a session of
the ``world`` fixture, are checked in (with a seat and a photo), answer and finish."""

from __future__ import annotations

import base64
import datetime as dt
import io
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

from testing_center.extensions import db
from testing_center.operations.models import ExamSession

from .operations_setup import NEXT_WEEK

START_OF_BOOKING = NEXT_WEEK - dt.timedelta(days=6)


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def face(seed: int, size: tuple[int, int] = (300, 400)) -> Image.Image:
    """A photo with detail (random blocks): photos of different seeds differ."""
    chooser = random.Random(seed)  # noqa: S311 - test pictures, not secrets
    small = Image.new("L", (12, 16))
    small.putdata([chooser.randrange(256) for _ in range(12 * 16)])
    return small.resize(size, Image.Resampling.BICUBIC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Seat:
    """A candidate's seat: their account, API headers, booking and (once sat) attempt."""

    account: object
    headers: dict
    booking_id: int
    admission_number: str
    attempt_id: str | None = None


def book(client, clock, session_id: int, candidate, headers: dict) -> Seat:
    clock.current = START_OF_BOOKING
    response = client.post(f"/api/v1/sessions/{session_id}/bookings", headers=headers)
    assert response.status_code == 201, response.json
    return Seat(candidate, headers, response.json["booking_id"], response.json["admission_number"])


def check_in(client, clock, world, booked: Seat, id_number: str, **extra) -> None:
    """Check in at the desk (``extra``: ``photo``, ``seat``), half an hour before."""
    clock.current = NEXT_WEEK - dt.timedelta(minutes=30)
    response = client.post(
        f"/api/v1/bookings/{booked.booking_id}/check-in",
        json={"id_document_number": id_number, **extra},
        headers=world["headers"]["proctor"],
    )
    assert response.status_code == 200, response.json


def open_session(app, clock, session_id: int) -> None:
    clock.current = NEXT_WEEK
    with app.app_context():
        exam_session = db.session.get(ExamSession, session_id)
        if exam_session.status == "published":
            exam_session.status = "open"
            db.session.commit()


def take(client, seat: Seat, answers: list[str | None] | Callable[[dict], str | None]) -> str:
    """Start the proctored attempt, answer (a list in form order, or a function of the
    item as the candidate sees it), finish."""
    state = client.post(
        "/api/v1/attempts", json={"booking_id": seat.booking_id}, headers=seat.headers
    ).json
    items = [item for section in state["sections"] for item in section["items"]]
    if callable(answers):
        answers = [answers(item) for item in items]
    for item, answer in zip(items, answers, strict=False):
        if answer is not None:
            saved = client.put(
                f"/api/v1/attempts/{state['id']}/responses/{item['ref']}",
                json={"response": answer, "client_seq": 1},
                headers=seat.headers,
            )
            assert saved.status_code == 200, saved.json
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=seat.headers)
    seat.attempt_id = state["id"]
    return state["id"]
