"""Section clocks: one shared clock or one per section, breaks, closing and moving on."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event, select, update

from exam_templates.services import load_templates
from testing_center.accounts.models import Role, User
from testing_center.attempts.models import Attempt
from testing_center.extensions import db
from testing_center.operations.proctoring import request_extension

from .test_attempts import items_of, rows_and_objects_present_alike

NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def tour_template(code, clock, navigation=None, break_seconds=0):
    document = {
        "code": code,
        "version": 1,
        "title": {"en": code},
        "modes": ["practice"],
        "clock": {"kind": clock, "break_seconds": break_seconds},
        "shuffle": {"items": False, "options": False},
        "sections": [
            {
                "code": "reading",
                "title": {"en": "Reading"},
                "parts": [
                    {"select": {"exam_family": "tour", "section": "tour_reading"}, "count": 2}
                ],
            },
            {
                "code": "skills",
                "title": {"en": "Skills"},
                "parts": [
                    {
                        "select": {"exam_family": "tour", "section": "tour_skills"},
                        "count": 2,
                        "score_as": "reading",
                    }
                ],
            },
        ],
        "scoring": {"rule": "percent", "pass_percent": 60},
    }
    if clock == "per_section":
        for section, seconds in zip(document["sections"], (120, 60), strict=True):
            section["duration_seconds"] = seconds
    else:
        document["clock"]["duration_seconds"] = 300
    if navigation:
        document["navigation"] = navigation
    return document


@pytest.fixture
def exam(app, client, make_candidate, auth_headers, seeded):
    """Start an attempt at a two-section template built over the tour items."""

    def start(document):
        with app.app_context():
            load_templates(db.session, [document], now=NOW)
            db.session.commit()
        headers = auth_headers(make_candidate())
        state = client.post(
            "/api/v1/attempts", json={"exam_code": document["code"]}, headers=headers
        ).json
        return headers, state

    return start


def get(client, headers, state):
    return client.get(f"/api/v1/attempts/{state['id']}", headers=headers).json


def save(client, headers, state, item, seq=1):
    return client.put(
        f"/api/v1/attempts/{state['id']}/responses/{item['ref']}",
        json={"response": first_answer(item), "client_seq": seq},
        headers=headers,
    )


def open_items(state) -> list[tuple[str, dict]]:
    """The items the candidate can answer now, each with its section's code."""
    return [
        (section["code"], item)
        for section in state["sections"]
        if section["status"] == "open"
        for item in section["items"]
    ]


def first_answer(item):
    if item["type"] == "true_false":
        return True
    if item["type"] == "multiple_response":
        return [item["options"][0]["id"]]
    if item["type"] == "ordering":
        return [o["id"] for o in item["options"]]
    if item["type"] == "text_entry":
        return "さむい"
    if item["type"] == "matching":
        return {item["prompts"][0]["id"]: item["choices"][0]["id"]}
    return item["options"][0]["id"]


def test_per_section_clock_closes_and_moves_on(exam, client, clock):
    """When section 1's time is up it closes, its saves are refused, section 2 runs."""
    headers, state = exam(tour_template("clocked", "per_section"))
    assert [s["status"] for s in state["sections"]] == ["open", "waiting"]
    assert state["remaining_seconds"] == 120
    assert state["sections"][1]["items"] == []  # no looking ahead
    first = state["sections"][0]["items"][0]
    assert save(client, headers, state, first).status_code == 200
    clock.advance(seconds=121)
    moved = get(client, headers, state)
    assert [s["status"] for s in moved["sections"]] == ["finished", "open"]
    assert moved["current_section"]["code"] == "skills"
    assert moved["remaining_seconds"] == 59  # section 2 started when section 1 ended
    late = save(client, headers, state, first, seq=2)
    assert late.status_code == 409
    assert late.json["error"]["code"] == "section_closed"
    second = moved["sections"][1]["items"][0]
    assert save(client, headers, state, second).status_code == 200


def test_saves_to_a_waiting_section_refused(exam, client):
    """An item of a section that has not started cannot be answered."""
    headers, state = exam(tour_template("clocked2", "per_section"))
    with_items = get(client, headers, state)
    assert with_items["sections"][1]["items"] == []
    response = client.put(
        f"/api/v1/attempts/{state['id']}/responses/q3",
        json={"response": True, "client_seq": 1},
        headers=headers,
    )
    assert response.status_code == 409
    assert response.json["error"]["code"] == "section_not_open"


def test_finish_section_early_then_last_finishes_attempt(exam, client, clock):
    """Finishing a section opens the next at once; finishing the last ends the attempt."""
    headers, state = exam(tour_template("clocked3", "per_section"))
    clock.advance(seconds=30)
    after = client.post(
        f"/api/v1/attempts/{state['id']}/sections/reading/finish", headers=headers
    ).json
    assert [s["status"] for s in after["sections"]] == ["finished", "open"]
    assert after["remaining_seconds"] == 60
    again = client.post(f"/api/v1/attempts/{state['id']}/sections/reading/finish", headers=headers)
    assert again.status_code == 409
    assert again.json["error"]["code"] == "section_not_open"
    done = client.post(
        f"/api/v1/attempts/{state['id']}/sections/skills/finish", headers=headers
    ).json
    assert done["status"] == "finished"
    result = client.get(f"/api/v1/attempts/{state['id']}/result", headers=headers).json
    assert result["finish_reason"] == "candidate"


def test_break_between_sections(exam, client, clock):
    """After a section there is a break; the next starts when it ends or when asked."""
    headers, state = exam(tour_template("breaks", "per_section", break_seconds=300))
    after = client.post(
        f"/api/v1/attempts/{state['id']}/sections/reading/finish", headers=headers
    ).json
    assert after["current_section"]["status"] == "break"
    assert after["current_section"]["break_until"].startswith("2026-11-26T09:05:00")
    clock.advance(seconds=100)
    started = client.post(
        f"/api/v1/attempts/{state['id']}/sections/skills/start", headers=headers
    ).json
    assert started["current_section"]["status"] == "open"
    assert started["remaining_seconds"] == 60


def test_a_read_from_rows_presents_sections_as_the_objects_do(app, exam, client, clock):
    """Per-section clocks, a finished section and a break: the state read as rows is the
    state of the ORM objects; once the break is over, a read moves the clock instead."""
    headers, state = exam(tour_template("breaks-rows", "per_section", break_seconds=300))
    assert rows_and_objects_present_alike(app, state["id"], clock())
    client.post(f"/api/v1/attempts/{state['id']}/sections/reading/finish", headers=headers)
    clock.advance(seconds=100)
    assert rows_and_objects_present_alike(app, state["id"], clock())
    clock.advance(seconds=250)  # the break ended 50 s ago: skills runs 60 s from then
    current = get(client, headers, state)["current_section"]
    assert (current["code"], current["status"], current["remaining_seconds"]) == (
        "skills",
        "open",
        10,
    )
    assert rows_and_objects_present_alike(app, state["id"], clock())


def clock_as_in_state(client, headers, state) -> dict:
    """Read the clock, then the state at the same moment; assert that the clock is the
    state's, without the exam and the items."""
    url = f"/api/v1/attempts/{state['id']}"
    clock = client.get(f"{url}/clock", headers=headers).json
    full = client.get(url, headers=headers).json
    current = {key: value for key, value in full["current_section"].items() if key != "title"}
    keys = ("id", "status", "paused", "server_time", "deadline_at", "remaining_seconds")
    assert clock == {**{key: full[key] for key in keys}, "current_section": current}
    return clock


def test_the_clock_is_the_state_without_its_items(app, exam, client, clock):
    """Through a section, its end (the clock read moves the clocks), a break, a pause, the
    next section and the end of the time, the clock says what the state says; without a
    clock step it is two statements after the token."""
    headers, state = exam(tour_template("clock-reads", "per_section", break_seconds=300))
    url = f"/api/v1/attempts/{state['id']}/clock"
    with app.app_context():
        statements = []
        listen = ("before_cursor_execute", lambda *args: statements.append(args[2]))
        event.listen(db.engine, *listen)
        first = client.get(url, headers=headers).json
        event.remove(db.engine, *listen)
    assert len(statements) == 3
    assert (first["current_section"]["code"], first["remaining_seconds"]) == ("reading", 120)
    clock.advance(seconds=121)  # the reading section's time ran out: a break follows
    in_break = clock_as_in_state(client, headers, state)
    assert in_break["current_section"]["status"] == "break"
    assert in_break["current_section"]["break_until"].startswith("2026-11-26T09:07:00")
    clock.advance(seconds=300)  # the break ended 1 s ago: skills runs 60 s from then
    assert clock_as_in_state(client, headers, state)["remaining_seconds"] == 59
    with app.app_context():
        db.session.execute(
            update(Attempt).where(Attempt.id == state["id"]).values(paused_at=clock())
        )
        db.session.commit()
    clock.advance(seconds=30)
    paused = clock_as_in_state(client, headers, state)
    assert (paused["paused"], paused["remaining_seconds"]) == (True, 59)  # stands still
    with app.app_context():
        db.session.execute(update(Attempt).where(Attempt.id == state["id"]).values(paused_at=None))
        db.session.commit()
    clock.advance(seconds=1000)
    ended = clock_as_in_state(client, headers, state)
    assert (ended["status"], ended["remaining_seconds"]) == ("finished", 0)


@pytest.mark.parametrize(
    ("clock_kind", "navigation"),
    [("per_section", None), ("shared", "free"), ("shared", "sequential")],
)
def test_a_save_tells_the_time_the_clock_tells(
    app, exam, client, clock, make_staff, clock_kind, navigation
):
    """Every acknowledged save carries what a clock read at its moment would say, through
    a section's time, more time given, and (own clocks) the next section after a break:
    the player keeps its countdown by its saves."""
    headers, state = exam(tour_template(f"acks-{clock_kind}-{navigation}", clock_kind, navigation))
    operator = make_staff(Role.OPERATOR)

    def ack_and_clock(item, seq):
        ack = save(client, headers, state, item, seq).json
        clock_read = client.get(f"/api/v1/attempts/{state['id']}/clock", headers=headers).json
        assert ack["server_time"] == clock_read["server_time"]  # the test's clock stands still
        return ack, clock_read

    code, first = open_items(state)[0]
    ack, clock_read = ack_and_clock(first, 1)
    assert (ack["section_code"], ack["remaining_seconds"]) == (
        code,
        clock_read["remaining_seconds"],
    )
    assert ack["remaining_seconds"] == (120 if clock_kind == "per_section" else 300)
    clock.advance(seconds=40)
    give_extra_time(app, operator, state, seconds=60, now=clock())
    code, last = open_items(get(client, headers, state))[-1]  # free: the other section's
    ack, clock_read = ack_and_clock(last, 2)
    assert (ack["section_code"], ack["remaining_seconds"]) == (
        code,
        clock_read["remaining_seconds"],
    )
    assert ack["remaining_seconds"] == (140 if clock_kind == "per_section" else 320)
    if clock_kind == "per_section":  # the reading section's time runs out; skills opens
        clock.advance(seconds=141)
        _, skills = open_items(get(client, headers, state))[0]
        ack, clock_read = ack_and_clock(skills, 3)
        assert (ack["section_code"], clock_read["current_section"]["code"]) == ("skills", "skills")
        assert ack["remaining_seconds"] == clock_read["remaining_seconds"] == 59  # from 180 s


def give_extra_time(app, staff, state, seconds, now) -> None:
    """An operator's extra time for the attempt, applied at once."""
    with app.app_context():
        attempt = db.session.get(Attempt, state["id"])
        actor = db.session.get(User, staff.id)
        request_extension(db.session, actor, attempt, seconds, "accommodation", now)
        db.session.commit()


def test_extra_time_reaches_every_open_section_of_a_shared_clock(
    app, exam, client, clock, make_staff
):
    """With free navigation every section runs on the attempt's clock: extra time keeps
    them all open past the old deadline, not only the first."""
    headers, state = exam(tour_template("extra-free", "shared", "free"))
    give_extra_time(app, make_staff(Role.OPERATOR), state, seconds=60, now=clock())
    clock.advance(seconds=330)  # past the 300 s the exam had, within the 360 s it has now
    after = get(client, headers, state)
    assert [section["status"] for section in after["sections"]] == ["open", "open"]
    _, last = open_items(after)[-1]
    ack = save(client, headers, state, last)
    assert ack.status_code == 200 and ack.json["accepted"]
    assert ack.json["remaining_seconds"] == 30


def test_break_ends_by_itself(exam, client, clock):
    """A candidate away during the break finds the next section running on return."""
    headers, state = exam(tour_template("breaks2", "per_section", break_seconds=300))
    clock.advance(seconds=120 + 300 + 10)
    later = get(client, headers, state)
    assert [s["status"] for s in later["sections"]] == ["finished", "open"]
    assert later["remaining_seconds"] == 50


def test_all_time_used_finishes_the_attempt(exam, client, clock):
    """When the last section's clock runs out, the attempt is finished and scored."""
    headers, state = exam(tour_template("clocked4", "per_section"))
    clock.advance(seconds=181)
    final = get(client, headers, state)
    assert final["status"] == "finished"
    result = client.get(f"/api/v1/attempts/{state['id']}/result", headers=headers).json
    assert result["finish_reason"] == "deadline"
    assert [s["code"] for s in result["sections"]] == ["reading"]  # both sections score here


def test_shared_clock_free_navigation(exam, client):
    """With one shared clock and free navigation every section is open at once."""
    headers, state = exam(tour_template("shared", "shared"))
    assert [s["status"] for s in state["sections"]] == ["open", "open"]
    assert len(items_of(state)) == 4
    closed = client.post(
        f"/api/v1/attempts/{state['id']}/sections/reading/finish", headers=headers
    ).json
    assert [s["status"] for s in closed["sections"]] == ["finished", "open"]
    assert closed["remaining_seconds"] == 300


def test_shared_clock_sequential(exam, client, clock):
    """Sequential sections on a shared clock open one after another, same deadline."""
    headers, state = exam(tour_template("sharedseq", "shared", navigation="sequential"))
    assert [s["status"] for s in state["sections"]] == ["open", "waiting"]
    clock.advance(seconds=100)
    moved = client.post(
        f"/api/v1/attempts/{state['id']}/sections/reading/finish", headers=headers
    ).json
    assert moved["remaining_seconds"] == 200


def test_per_section_templates_must_be_sequential():
    """A template with section clocks cannot allow free movement."""
    from exam_templates.blueprint import parse_blueprint
    from exam_templates.errors import InvalidTemplate

    with pytest.raises(InvalidTemplate, match="navigation sequential"):
        parse_blueprint(tour_template("bad", "per_section", navigation="free"))


def hidden_item(app, attempt_id, ref):
    """An item of a section the candidate cannot see yet, as the state would show it."""
    from testing_center.attempts.models import AttemptItem
    from testing_center.attempts.presenters import item_view

    with app.app_context():
        attempt_item = db.session.scalar(
            select(AttemptItem).where(AttemptItem.attempt_id == attempt_id, AttemptItem.ref == ref)
        )
        return item_view(attempt_item, {})


def test_a_save_moves_the_sections_on(app, exam, client, clock):
    """A save after section 1's time is up lands in section 2 without reading the state."""
    headers, state = exam(tour_template("movesave", "per_section"))
    answer = first_answer(hidden_item(app, state["id"], "q3"))
    clock.advance(seconds=121)
    response = client.put(
        f"/api/v1/attempts/{state['id']}/responses/q3",
        json={"response": answer, "client_seq": 1},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.json["accepted"] is True


def test_recordings_of_waiting_sections_do_not_play(
    app, client, make_candidate, auth_headers, seeded
):
    """A listening section's recording cannot be played before that section opens."""
    document = tour_template("listenlater", "per_section")
    document["sections"][1]["parts"][0]["select"]["section"] = "tour_listening"
    with app.app_context():
        load_templates(db.session, [document], now=NOW)
        db.session.commit()
    headers = auth_headers(make_candidate())
    state = client.post("/api/v1/attempts", json={"exam_code": "listenlater"}, headers=headers).json
    from testing_center.attempts.models import AttemptPlay

    with app.app_context():
        source = db.session.scalar(
            select(AttemptPlay.source).where(AttemptPlay.attempt_id == state["id"])
        )
    response = client.post(f"/api/v1/attempts/{state['id']}/audio/{source}/plays", headers=headers)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "section_not_open"


def test_weighted_parts(exam, client, app):
    """A part's points weigh its items: 2 items worth 3 each and 2 worth 1 each."""
    document = tour_template("weighted", "shared")
    document["sections"][0]["parts"][0]["points"] = 3
    headers, state = exam(document)
    result = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=headers).json
    assert result["raw_max"] == 8
    assert [s["max_points"] for s in result["sections"]] == [8]
