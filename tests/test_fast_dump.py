"""The compiled dumpers give exactly what the marshmallow schemas give, on the state of
every shipped practice exam (fresh, answered, flagged, after a section ends) and on the
save acknowledgement; a field kind they do not know is refused, not guessed."""

from __future__ import annotations

import datetime as dt

import pytest
from marshmallow import Schema, fields
from sqlalchemy import select

from exam_templates.blueprint import parse_blueprint
from exam_templates.models import ExamTemplate
from testing_center.accounts.models import User
from testing_center.api.fast_dump import compile_dumper
from testing_center.api.schemas import AttemptClockSchema, AttemptStateSchema, SaveAckSchema
from testing_center.attempts.presenters import attempt_state
from testing_center.attempts.services import blueprint_of, current_attempt
from testing_center.extensions import db
from testing_center.seed import seed_content


def same_as_schema(schema: Schema, obj: dict) -> None:
    assert compile_dumper(schema)(obj) == schema.dump(obj)


def practice_codes(app) -> list[str]:
    with app.app_context():
        templates = db.session.scalars(select(ExamTemplate).where(ExamTemplate.is_active)).all()
        return sorted(
            t.code for t in templates if "practice" in parse_blueprint(t.definition).modes
        )


def presented(app, user_id: int, attempt_id: str, moment: dt.datetime) -> dict:
    with app.app_context():
        user = db.session.get(User, user_id)
        attempt = current_attempt(db.session, attempt_id, user, moment, player_view=True)
        state = attempt_state(attempt, blueprint_of(attempt), moment, "en")
        db.session.rollback()
        return state


def answer(item: dict) -> dict:
    """A save for an item: the first option of a choice, else only a flag."""
    if item["type"] == "single_choice":
        return {"response": item["options"][0]["id"], "client_seq": 1}
    return {"response": None, "client_seq": 1, "flagged": True}


def test_states_of_every_practice_exam_dump_as_the_schema_does(
    app, client, clock, make_candidate, auth_headers
):
    with app.app_context():
        seed_content(db.session, clock())
        db.session.commit()
    schema = AttemptStateSchema()
    covered = []
    for code in practice_codes(app):
        candidate = make_candidate()
        headers = auth_headers(candidate)
        started = client.post("/api/v1/attempts", json={"exam_code": code}, headers=headers)
        if started.status_code == 409 and started.json["error"]["code"] == "exam_unavailable":
            continue  # the sample bank is too small for this full-length form
        assert started.status_code == 201, (code, started.json)
        covered.append(started.json["clock"])
        attempt_id = started.json["id"]
        same_as_schema(schema, presented(app, candidate.id, attempt_id, clock()))
        items = [item for section in started.json["sections"] for item in section["items"]]
        for item in items[:6]:
            saved = client.put(
                f"/api/v1/attempts/{attempt_id}/responses/{item['ref']}",
                json=answer(item),
                headers=headers,
            )
            assert saved.status_code == 200, (code, saved.json)
        same_as_schema(schema, presented(app, candidate.id, attempt_id, clock()))
        first = started.json["sections"][0]["code"]
        ended = client.post(
            f"/api/v1/attempts/{attempt_id}/sections/{first}/finish", headers=headers
        )
        assert ended.status_code == 200, (code, ended.json)
        state = presented(app, candidate.id, attempt_id, clock())
        same_as_schema(schema, state)
        fetched = client.get(f"/api/v1/attempts/{attempt_id}", headers=headers).json
        assert fetched == schema.dump(state)
    # JFT-Basic style, sector skills, the item-type tour; JLPT-style sections with clocks
    assert len(covered) >= 8 and {"shared", "per_section"} <= set(covered), covered


@pytest.mark.parametrize("saved_at", [None, dt.datetime(2026, 11, 27, 9, 0, 0, 123456, dt.UTC)])
def test_the_save_acknowledgement_dumps_as_the_schema_does(saved_at):
    ack = {
        "item_ref": "q7",
        "accepted": True,
        "client_seq": 3,
        "response": ["B", "A", "C"],
        "flagged": False,
        "saved_at": saved_at,
        "server_time": dt.datetime(2026, 11, 27, 9, 0, 1, tzinfo=dt.UTC),
    }
    same_as_schema(SaveAckSchema(), ack)


@pytest.mark.parametrize("status", ["open", "break"])
def test_the_clock_dumps_as_the_schema_does(status):
    moment = dt.datetime(2026, 11, 27, 9, 0, 1, tzinfo=dt.UTC)
    clock = {
        "id": "0123456789abcdef0123456789abcdef",
        "status": "in_progress",
        "paused": False,
        "server_time": moment,
        "deadline_at": moment + dt.timedelta(minutes=50),
        "remaining_seconds": 600 if status == "open" else 0,
        "current_section": {
            "code": "listening",
            "status": status,
            "deadline_at": moment + dt.timedelta(minutes=10) if status == "open" else None,
            "remaining_seconds": 600 if status == "open" else 0,
            "break_until": moment + dt.timedelta(minutes=5) if status == "break" else None,
        },
    }
    same_as_schema(AttemptClockSchema(), clock)


def test_an_unknown_field_kind_is_refused():
    class Computed(Schema):
        total = fields.Method("add")

        def add(self, obj: dict) -> int:
            return obj["a"] + obj["b"]

    with pytest.raises(TypeError, match="Method"):
        compile_dumper(Computed())
