"""The attempt life cycle through the JSON API: start, state, save, finish, result."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from item_bank.models import ItemVersion
from testing_center.accounts.models import Principal, Role
from testing_center.api.blueprint import Blueprint
from testing_center.api.schemas import SaveResponseSchema
from testing_center.attempts.models import Attempt, AttemptItem, AttemptSection, FinishReason
from testing_center.attempts.services import finish_attempt, owned_attempt_summary
from testing_center.extensions import db

EXAM = "jft-basic-practice"
FORBIDDEN_KEYS = {
    "answer_key",
    "key",
    "correct",
    "is_correct",
    "explanation",
    "points",
    "weight",
    "scoring",
}


@pytest.fixture
def candidate(make_candidate, auth_headers, seeded):
    """A candidate with bearer headers, the sample bank loaded."""
    return auth_headers(make_candidate())


def start(client, headers) -> dict:
    response = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=headers)
    assert response.status_code == 201, response.json
    return response.json


def items_of(state: dict) -> list[dict]:
    return [item for section in state["sections"] for item in section["items"]]


def keys_by_ref(app, attempt_id: str) -> dict[str, str]:
    """The answer keys of an attempt's items, read straight from the bank."""
    with app.app_context():
        rows = db.session.execute(
            select(AttemptItem.ref, ItemVersion.answer_key)
            .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
            .where(AttemptItem.attempt_id == attempt_id)
        )
        return dict(rows.all())


def rows_and_objects_present_alike(app, attempt_id: str, moment) -> bool:
    """Whether the state read as rows (``attempts.player``, what a read without a clock
    step serves) is exactly the state presented from the ORM objects at ``moment``."""
    from testing_center.accounts.models import User
    from testing_center.attempts.models import Attempt
    from testing_center.attempts.player import settled_attempt
    from testing_center.attempts.presenters import attempt_state
    from testing_center.attempts.services import blueprint_of, owned_attempt

    with app.app_context():
        user = db.session.get(User, db.session.get(Attempt, attempt_id).user_id)
        settled = settled_attempt(db.session, attempt_id, user, moment)
        assert settled is not None, "a clock step is due: the rows are not used"
        from_rows = attempt_state(*settled, moment, "en")
        attempt = owned_attempt(db.session, attempt_id, user, player_view=True)
        from_objects = attempt_state(attempt, blueprint_of(attempt), moment, "en")
        db.session.rollback()

    def text(state):
        return json.dumps(state, default=str, sort_keys=True, ensure_ascii=False)

    return text(from_rows) == text(from_objects)


def save(client, headers, attempt_id, ref, response, seq, **extra):
    return client.put(
        f"/api/v1/attempts/{attempt_id}/responses/{ref}",
        json={"response": response, "client_seq": seq, **extra},
        headers=headers,
    )


def test_start_assembles_form_with_deadline(client, candidate):
    """Starting gives 16 items in 4 sections and a 20-minute server deadline."""
    state = start(client, candidate)
    assert state["status"] == "in_progress"
    assert [s["code"] for s in state["sections"]] == [
        "script_vocabulary",
        "conversation_expression",
        "listening_comprehension",
        "reading_comprehension",
    ]
    assert len(items_of(state)) == 16
    assert state["remaining_seconds"] == 1200
    assert state["server_time"].startswith("2026-11-26T09:00:00")
    assert state["deadline_at"].startswith("2026-11-26T09:20:00")


def test_start_again_resumes_open_attempt(client, candidate):
    """Starting the same exam while an attempt is open returns that attempt (200)."""
    first = start(client, candidate)
    again = client.post("/api/v1/attempts", json={"exam_code": EXAM}, headers=candidate)
    assert again.status_code == 200
    assert again.json["id"] == first["id"]


def test_start_answers_with_the_state_a_read_returns(client, candidate):
    """The state a start answers with, built from the rows it just wrote, is the state
    reading the attempt back returns, recordings and their play counters included."""
    state = start(client, candidate)
    assert any(item.get("audio") for item in items_of(state))
    assert client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json == state


def test_start_reads_the_form_versions_once(app, client, candidate):
    """A start loads its form's item versions in one query, not one per item."""
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    statements = []

    def record(_connection, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    state = start(client, candidate)
    event.remove(engine, "before_cursor_execute", record)
    reads = [s for s in statements if s.lstrip().startswith("SELECT item_versions.id")]
    assert len(items_of(state)) == 16
    assert len(reads) == 1


def test_a_read_from_rows_presents_what_the_objects_do(app, client, candidate, clock):
    """Saved, changed, cleared and flagged answers, recordings: the state read as rows
    is the state of the ORM objects, while open and once finished."""
    state = start(client, candidate)
    items = items_of(state)
    for seq, item in enumerate(items[:4], start=1):
        answer = item["options"][0]["id"] if "options" in item else None
        assert save(client, candidate, state["id"], item["ref"], answer, seq).status_code == 200
    save(client, candidate, state["id"], items[1]["ref"], None, 9, flagged=True)
    clock.advance(seconds=30)
    assert rows_and_objects_present_alike(app, state["id"], clock())
    client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate)
    assert rows_and_objects_present_alike(app, state["id"], clock())


def test_a_new_form_is_stored_as_it_was_presented(app, client, candidate):
    """The start writes its rows table by table (``attempts.form_writer``): read back
    from the database the attempt is the one it presented, its empty answers are SQL
    NULL (not JSON null, which scoring would read as an answer), and nothing was left
    for a later flush to write."""
    from sqlalchemy import func

    from testing_center.attempts.models import Attempt, AttemptPlay, Response

    state = start(client, candidate)
    assert client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json == state
    with app.app_context():
        attempt = db.session.get(Attempt, state["id"])
        assert attempt.template.code == EXAM
        assert [s.code for s in attempt.sections] == [s["code"] for s in state["sections"]]
        unanswered = db.session.scalar(
            select(func.count())
            .select_from(Response)
            .join(AttemptItem)
            .where(AttemptItem.attempt_id == state["id"], Response.value.is_(None))
        )
        assert unanswered == state["item_count"] == len(attempt.items)
        plays = db.session.scalars(
            select(AttemptPlay.plays).where(AttemptPlay.attempt_id == state["id"])
        ).all()
        assert plays and set(plays) == {0}


def test_start_unknown_exam(client, candidate):
    """An unknown exam code gets 404 exam_not_found."""
    response = client.post("/api/v1/attempts", json={"exam_code": "nope"}, headers=candidate)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "exam_not_found"


def test_reload_returns_same_form_and_saved_answers(client, candidate, clock):
    """A reload shows the same items, option order and saved answers, with less time."""
    state = start(client, candidate)
    first = items_of(state)[0]
    assert (
        save(
            client, candidate, state["id"], first["ref"], first["options"][2]["id"], 1, flagged=True
        ).status_code
        == 200
    )
    clock.advance(seconds=125)
    reloaded = client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json
    strip = ("response", "flagged", "client_seq")
    assert [{k: v for k, v in i.items() if k not in strip} for i in items_of(reloaded)] == [
        {k: v for k, v in i.items() if k not in strip} for i in items_of(state)
    ]
    again = items_of(reloaded)[0]
    assert again["response"] == first["options"][2]["id"]
    assert again["flagged"] is True
    assert reloaded["answered_count"] == 1
    assert reloaded["remaining_seconds"] == 1200 - 125


def test_stale_client_seq_is_ignored(client, candidate):
    """A save with an older client_seq never overwrites a newer one."""
    state = start(client, candidate)
    item = items_of(state)[0]
    a, b = item["options"][0]["id"], item["options"][1]["id"]
    assert save(client, candidate, state["id"], item["ref"], b, 5).json["accepted"] is True
    late = save(client, candidate, state["id"], item["ref"], a, 4)
    assert late.status_code == 200
    assert late.json["accepted"] is False
    assert late.json["response"] == b
    assert late.json["client_seq"] == 5
    reloaded = items_of(client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json)
    assert reloaded[0]["response"] == b


def test_repeated_save_is_idempotent(client, candidate):
    """Sending the same save twice (a retry after a lost ack) is accepted both times."""
    state = start(client, candidate)
    item = items_of(state)[0]
    option = item["options"][0]["id"]
    first = save(client, candidate, state["id"], item["ref"], option, 3).json
    second = save(client, candidate, state["id"], item["ref"], option, 3).json
    assert first["accepted"] and second["accepted"]
    assert second["response"] == option


def test_save_after_deadline_refused(client, candidate, clock):
    """A save after the deadline is refused and the stored answer stays as it was."""
    state = start(client, candidate)
    item = items_of(state)[0]
    save(client, candidate, state["id"], item["ref"], item["options"][0]["id"], 1)
    clock.advance(seconds=1200)
    late = save(client, candidate, state["id"], item["ref"], item["options"][1]["id"], 2)
    assert late.status_code == 409
    assert late.json["error"]["code"] == "deadline_passed"
    result = client.get(f"/api/v1/attempts/{state['id']}/result", headers=candidate).json
    assert result["finish_reason"] == "deadline"
    reloaded = client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json
    assert reloaded["status"] == "finished"
    assert items_of(reloaded)[0]["response"] == item["options"][0]["id"]


def test_save_with_invalid_response_refused(client, candidate):
    """A response that is not one of the item's options is refused and nothing is stored."""
    state = start(client, candidate)
    item = items_of(state)[0]
    for bad in ("Z", ["A"], 3, {"1": "a"}):
        response = save(client, candidate, state["id"], item["ref"], bad, 1)
        assert response.status_code == 422
        assert response.json["error"]["code"] == "invalid_response"
    reloaded = items_of(client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json)
    assert reloaded[0]["response"] is None
    assert reloaded[0]["client_seq"] == 0


@pytest.mark.parametrize(
    "body",
    [
        {"response": "A"},
        {"response": "A", "client_seq": "x"},
        {"response": "A", "client_seq": 0},
        {"response": "A", "client_seq": 1, "extra": 1},
    ],
)
def test_save_with_malformed_body_refused(client, candidate, body):
    """A save without a valid positive client_seq, or with unknown fields, gets 422."""
    state = start(client, candidate)
    ref = items_of(state)[0]["ref"]
    response = client.put(
        f"/api/v1/attempts/{state['id']}/responses/{ref}", json=body, headers=candidate
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"


def test_request_schema_shared_across_requests(client, candidate):
    """The parser builds each request schema once; a refused body leaves nothing behind
    in it, so the next save on the same instance is judged on its own."""
    parser = Blueprint.ARGUMENTS_PARSER
    assert parser._get_schema(SaveResponseSchema, None) is parser._get_schema(
        SaveResponseSchema, None
    )
    state = start(client, candidate)
    item = items_of(state)[0]
    answer = item["options"][0]["id"]
    url = f"/api/v1/attempts/{state['id']}/responses/{item['ref']}"
    refused = client.put(url, json={"response": answer, "client_seq": 1, "x": 1}, headers=candidate)
    assert refused.status_code == 422
    assert "x" in refused.json["error"]["details"]["json"]
    saved = client.put(url, json={"response": answer, "client_seq": 2}, headers=candidate)
    assert saved.status_code == 200
    assert (saved.json["client_seq"], saved.json["flagged"]) == (2, False)


def test_save_to_unknown_item_ref(client, candidate):
    """A save for an item ref that is not in the attempt gets 404 item_not_found."""
    state = start(client, candidate)
    response = save(client, candidate, state["id"], "q999", "A", 1)
    assert response.status_code == 404
    assert response.json["error"]["code"] == "item_not_found"


def test_null_clears_an_answer(client, candidate):
    """Saving null removes a chosen answer."""
    state = start(client, candidate)
    item = items_of(state)[0]
    save(client, candidate, state["id"], item["ref"], item["options"][0]["id"], 1)
    cleared = save(client, candidate, state["id"], item["ref"], None, 2)
    assert cleared.json["response"] is None


def test_finish_scores_exactly_what_was_saved(client, candidate, app):
    """Finishing scores the saved answers: here 5 right, 1 wrong, 6 unanswered."""
    state = start(client, candidate)
    keys = keys_by_ref(app, state["id"])
    items = items_of(state)
    seq = 0
    for item in items[:5]:
        seq += 1
        save(client, candidate, state["id"], item["ref"], keys[item["ref"]], seq)
    wrong = next(o["id"] for o in items[5]["options"] if o["id"] != keys[items[5]["ref"]])
    save(client, candidate, state["id"], items[5]["ref"], wrong, seq + 1)
    finished = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate)
    assert finished.status_code == 200
    result = finished.json
    assert result["raw_points"] == 5
    assert result["raw_max"] == 16
    assert result["percent"] == pytest.approx(31.2)
    assert result["total"] == 10 + 240 * 5 // 16  # 5 of 16 on the 10-250 scale: 85
    assert result["passed"] is False
    assert sum(s["points"] for s in result["sections"]) == 5
    assert result["certificate_number"] is None
    again = client.get(f"/api/v1/attempts/{state['id']}/result", headers=candidate).json
    assert again == result


def test_all_correct_passes(client, candidate, app):
    """A candidate who answers every item correctly passes with 100%."""
    state = start(client, candidate)
    keys = keys_by_ref(app, state["id"])
    for seq, item in enumerate(items_of(state), start=1):
        save(client, candidate, state["id"], item["ref"], keys[item["ref"]], seq)
    result = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate).json
    assert result["percent"] == 100
    assert result["passed"] is True


def test_finish_twice_changes_nothing(client, candidate):
    """A second finish returns the same result; later saves are refused."""
    state = start(client, candidate)
    first = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate).json
    second = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate).json
    assert first == second
    item = items_of(state)[0]
    late = save(client, candidate, state["id"], item["ref"], item["options"][0]["id"], 1)
    assert late.status_code == 409
    assert late.json["error"]["code"] == "attempt_closed"


def test_result_of_open_attempt_is_conflict(client, candidate):
    """Asking for the result before finishing gets 409 attempt_in_progress."""
    state = start(client, candidate)
    response = client.get(f"/api/v1/attempts/{state['id']}/result", headers=candidate)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "attempt_in_progress"


def test_other_candidate_sees_nothing(client, candidate, make_candidate, auth_headers):
    """Another candidate gets the same 404 for this attempt as for one that does not exist."""
    state = start(client, candidate)
    intruder = auth_headers(make_candidate())
    ref = items_of(state)[0]["ref"]
    missing = client.get("/api/v1/attempts/0123456789abcdef0123456789abcdef", headers=intruder)
    calls = [
        client.get(f"/api/v1/attempts/{state['id']}", headers=intruder),
        client.get(f"/api/v1/attempts/{state['id']}/clock", headers=intruder),
        client.put(
            f"/api/v1/attempts/{state['id']}/responses/{ref}",
            json={"response": "A", "client_seq": 1},
            headers=intruder,
        ),
        client.post(f"/api/v1/attempts/{state['id']}/finish", headers=intruder),
        client.get(f"/api/v1/attempts/{state['id']}/result", headers=intruder),
    ]
    for response in calls:
        assert response.status_code == 404
        assert response.json == missing.json
    owner_view = client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json
    assert owner_view["status"] == "in_progress"
    assert items_of(owner_view)[0]["response"] is None


def _walk_keys(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _walk_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _walk_keys(inner)


def test_no_answer_keys_in_candidate_payloads(client, candidate, app):
    """State, save acks and the player page carry no key, no explanation, no scoring data."""
    state = start(client, candidate)
    item = items_of(state)[0]
    ack = save(client, candidate, state["id"], item["ref"], item["options"][0]["id"], 1).json
    reloaded = client.get(f"/api/v1/attempts/{state['id']}", headers=candidate).json
    with app.app_context():
        explanations = [
            text
            for (explanation,) in db.session.execute(select(ItemVersion.explanation))
            for text in explanation.values()
        ]
    for payload in (state, ack, reloaded):
        assert not FORBIDDEN_KEYS & set(_walk_keys(payload))
        text = json.dumps(payload, ensure_ascii=False)
        assert not any(explanation in text for explanation in explanations)
    for item in items_of(reloaded):
        assert set(item) - {"audio", "stimulus"} == {
            "ref",
            "position",
            "type",
            "stem",
            "options",
            "response",
            "flagged",
            "client_seq",
        }
        assert set(item.get("audio") or {}) <= {"play_limit", "plays_used"}
        assert all(set(option) == {"id", "html"} for option in item["options"])


def test_same_seq_with_other_value_is_not_accepted(client, candidate):
    """A different answer reusing a stored sequence number is not acknowledged as saved."""
    state = start(client, candidate)
    item = items_of(state)[0]
    a, b = item["options"][0]["id"], item["options"][1]["id"]
    save(client, candidate, state["id"], item["ref"], a, 5)
    clash = save(client, candidate, state["id"], item["ref"], b, 5).json
    assert clash["accepted"] is False
    assert clash["response"] == a


def test_finish_after_deadline_is_recorded_as_deadline(client, candidate, clock):
    """A finish request arriving after the deadline records the deadline as the reason."""
    state = start(client, candidate)
    clock.advance(seconds=1201)
    result = client.post(f"/api/v1/attempts/{state['id']}/finish", headers=candidate).json
    assert result["finish_reason"] == "deadline"
    assert result["finished_at"].startswith("2026-11-26T09:20:00")


def test_finish_uses_the_clocks_as_they_are_when_it_claims(client, candidate, app):
    """Extra time granted after a finish loaded the attempt and before it claimed it
    counts: the candidate finished with time left, so the finish is theirs, at their
    moment, and the section is closed then, not at its old deadline."""
    state = start(client, candidate)
    with app.app_context():
        user_id = db.session.scalar(select(Attempt.user_id).where(Attempt.id == state["id"]))
        owner = Principal(user_id, Role.CANDIDATE)
        loaded = owned_attempt_summary(db.session, state["id"], owner)
        first = loaded.sections[0]
        old_deadline = first.deadline_at
        moment = old_deadline + dt.timedelta(seconds=10)  # past the old deadline
        new_deadline = loaded.deadline_at + dt.timedelta(seconds=300)
        with Session(db.engine) as proctor:  # commits while the finish holds its objects
            proctor.execute(
                update(Attempt)
                .where(Attempt.id == loaded.id)
                .values(deadline_at=new_deadline, extra_seconds=300)
            )
            proctor.execute(
                update(AttemptSection)
                .where(AttemptSection.id == first.id)
                .values(deadline_at=old_deadline + dt.timedelta(seconds=300))
            )
            proctor.commit()
        finish_attempt(db.session, loaded, moment, FinishReason.CANDIDATE)
        db.session.commit()
        assert (loaded.extra_seconds, loaded.deadline_at) == (300, new_deadline)
        assert (loaded.finish_reason, loaded.finished_at) == ("candidate", moment)
        closed = db.session.scalar(select(AttemptSection).where(AttemptSection.id == first.id))
        assert closed.finished_at == moment


def test_client_seq_beyond_column_range_refused(client, candidate):
    """A client_seq above 2**31-1 gets a 422, not a database error."""
    state = start(client, candidate)
    response = save(client, candidate, state["id"], items_of(state)[0]["ref"], None, 2**31)
    assert response.status_code == 422


def test_no_keys_for_any_item_type(client, candidate, app):
    """For every item type (the tour), the state holds no key, accepted answer or scoring."""
    response = client.post(
        "/api/v1/attempts", json={"exam_code": "item-types-tour"}, headers=candidate
    )
    state = response.json
    assert not FORBIDDEN_KEYS & set(_walk_keys(state))
    text = json.dumps(state, ensure_ascii=False)
    with app.app_context():
        keys = dict(
            db.session.execute(
                select(AttemptItem.ref, ItemVersion.answer_key)
                .join(ItemVersion, ItemVersion.id == AttemptItem.item_version_id)
                .where(AttemptItem.attempt_id == state["id"])
            ).all()
        )
    typed_answers = [
        a["value"] for key in keys.values() if isinstance(key, dict) for a in key.get("answers", [])
    ]
    assert typed_answers and not any(answer in text for answer in typed_answers)
    kinds = {item["type"] for item in items_of(state)}
    assert kinds == {
        "single_choice",
        "multiple_response",
        "ordering",
        "text_entry",
        "matching",
        "true_false",
    }


def test_emptied_answer_counts_as_unanswered(client, candidate):
    """Saving an empty answer clears it: it is stored as no answer."""
    state = start(client, candidate)
    item = items_of(state)[0]
    ack = save(client, candidate, state["id"], item["ref"], "", 1).json
    assert ack["response"] is None
