"""A proctored exam world for the operations and certificates tests: a small bank, a
proctored template, a Tashkent centre with a room, an operator and a proctor."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from exam_templates.services import load_templates
from item_bank.bundle import Bundle
from item_bank.services import import_bundles
from testing_center.accounts.models import Role
from testing_center.extensions import db
from testing_center.operations.models import Centre, CentreStaff

from .conftest import START

EXAM = "ops-exam"
TASHKENT = "Asia/Tashkent"  # UTC+5, no daylight saving


def bundle() -> Bundle:
    return Bundle(
        items=[
            {
                "ref": f"ops-{n}",
                "type": "single_choice",
                "exam_family": "ops",
                "level": "A2",
                "section": "all",
                "topic": "work",
                "stem": f"<p>問題 {n}</p>",
                "options": [{"id": k, "html": k} for k in "ABC"],
                "key": "A",
            }
            for n in range(4)
        ],
        origin="operations-test",
    )


TEMPLATE = {
    "code": EXAM,
    "version": 1,
    "title": {"en": "Operations check"},
    "modes": ["practice", "proctored"],
    "clock": {"kind": "shared", "duration_seconds": 1800},
    "shuffle": {"items": False, "options": False},
    "sections": [
        {
            "code": "all",
            "title": {"en": "All"},
            "select": {"exam_family": "ops", "section": "all", "count": 4},
        }
    ],
    "scoring": {"rule": "percent", "pass_percent": 60},
}


@pytest.fixture
def world(app, client, clock, make_staff, auth_headers):
    """A proctored exam, a Tashkent centre with a room, an operator and a proctor.

    Tokens outlive the week between booking and the exam day these tests jump.
    """
    app.config["API_TOKEN_TTL_SECONDS"] = 30 * 24 * 3600
    with app.app_context():
        import_bundles(db.session, [bundle()], status="approved", now=clock())
        load_templates(db.session, [TEMPLATE], now=clock())
        db.session.commit()
    operator = make_staff(Role.OPERATOR)
    proctor = make_staff(Role.PROCTOR)
    staff = {"operator": auth_headers(operator), "proctor": auth_headers(proctor)}
    created = client.post(
        "/api/v1/centers",
        json={
            "code": "TAS",
            "name": "Tashkent Testing Centre",
            "city": "Tashkent",
            "address": "1 Amir Temur Street",
            "timezone": TASHKENT,
        },
        headers=staff["operator"],
    )
    assert created.status_code == 201, created.json
    room = client.post(
        "/api/v1/centers/TAS/rooms", json={"name": "A", "seats": 30}, headers=staff["operator"]
    )
    assert room.status_code == 201, room.json
    return {"operator": operator, "proctor": proctor, "headers": staff}


def schedule(client, world, starts_at: dt.datetime, capacity: int = 20, **extra) -> dict:
    response = client.post(
        "/api/v1/sessions",
        json={
            "exam_code": EXAM,
            "center_code": "TAS",
            "starts_at": starts_at.isoformat(),
            "capacity": capacity,
            **extra,
        },
        headers=world["headers"]["operator"],
    )
    assert response.status_code == 201, response.json
    client.post(
        f"/api/v1/sessions/{response.json['id']}/proctors",
        json={"email": world["proctor"].email},
        headers=world["headers"]["operator"],
    )
    return response.json


NEXT_WEEK = START + dt.timedelta(days=7)  # Thursday 3 December, 09:00 UTC = 14:00 Tashkent


def other_centre_operator(app, client, world, make_staff):
    """An operator tied to a second centre (Samarkand), who must see nothing of the
    world's centre."""
    created = client.post(
        "/api/v1/centers",
        json={
            "code": "SKD",
            "name": "Samarkand Testing Centre",
            "city": "Samarkand",
            "address": "2 Registan Street",
            "timezone": "Asia/Samarkand",
        },
        headers=world["headers"]["operator"],
    )
    assert created.status_code == 201, created.json
    account = make_staff(Role.OPERATOR)
    with app.app_context():
        centre = db.session.scalar(select(Centre).where(Centre.code == "SKD"))
        db.session.add(CentreStaff(centre_id=centre.id, user_id=account.id))
        db.session.commit()
    return account
